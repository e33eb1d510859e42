"""Signatures, the replay window and AES against Tencent's published vectors."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.wechat_fakes import KEY, OLD_KEY, OTHER_KEY, VECTORS
from wxbot.wechat.security import (
    DecryptError,
    Forbidden,
    Keyring,
    RequestRejected,
    WrongAppId,
    aes_key,
    check_timestamp,
    decrypt,
    encrypt,
    signature,
    signature_ok,
)


def raw_encrypt(key_text: str, plaintext: bytes) -> str:
    """AES-CBC as WeChat does it but without any padding logic: for forging bad messages."""
    key = aes_key(key_text)
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plaintext) + enc.finalize()).decode()


def pkcs7(data: bytes) -> bytes:
    pad = 32 - len(data) % 32
    return data + bytes([pad]) * pad


@pytest.mark.parametrize("name", ["inbound_compatible_mode", "inbound_safe_mode"])
def test_official_vectors_decrypt(name: str) -> None:
    v = VECTORS[name]
    assert signature(v["token"], v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]
    assert signature_ok(v["msg_signature"], v["token"], v["timestamp"], v["nonce"], v["encrypt"])
    xml = decrypt(aes_key(v["encoding_aes_key"]), v["encrypt"], v["appid"])
    for field, value in v["decrypts_to"].items():
        assert (
            f"<{field}><![CDATA[{value}]]></{field}>" in xml or f"<{field}>{value}</{field}>" in xml
        )


def test_compatible_vector_plain_signature() -> None:
    v = VECTORS["inbound_compatible_mode"]
    assert signature_ok(v["signature"], v["token"], v["timestamp"], v["nonce"])


def test_deterministic_ciphertext_is_reproduced() -> None:
    v = VECTORS["deterministic_encrypt"]
    key = aes_key(v["encoding_aes_key"])
    assert encrypt(key, v["plaintext"], v["appid"], v["random_prefix"]) == v["ciphertext"]
    assert decrypt(key, v["ciphertext"], v["appid"]) == v["plaintext"]


def test_url_verification_vector() -> None:
    v = VECTORS["url_verification"]
    assert signature_ok(v["signature"], v["token"], v["timestamp"], v["nonce"])
    assert not signature_ok(v["signature"], v["token"], v["timestamp"], str(int(v["nonce"]) + 1))


@pytest.mark.parametrize(
    "given", [None, "", "0" * 40, "f464b24fc39322e44b38aa78f5edd27bd144169", "签名", "\udcff"]
)
def test_bad_signatures_are_refused_without_errors(given: str | None) -> None:
    v = VECTORS["url_verification"]
    assert not signature_ok(given, v["token"], v["timestamp"], v["nonce"])


def test_random_prefix_is_fresh_each_time() -> None:
    key = aes_key(KEY)
    assert encrypt(key, "<xml/>", "wxapp") != encrypt(key, "<xml/>", "wxapp")


def test_timestamp_window() -> None:
    assert check_timestamp("1000", now=1000, skew=300) == 1000
    assert check_timestamp("700", now=1000, skew=300) == 700
    assert check_timestamp("1300", now=1000, skew=300) == 1300
    with pytest.raises(Forbidden):
        check_timestamp("699", now=1000, skew=300)  # stale: a replay
    with pytest.raises(Forbidden):
        check_timestamp("1301", now=1000, skew=300)  # from the future
    for bad in (None, "", "-5", "12a", "1e3", "１２３", "9" * 13):
        with pytest.raises(RequestRejected) as exc:
            check_timestamp(bad, now=1000, skew=300)
        assert exc.value.status == 400


def test_bad_base64_and_block_length() -> None:
    key = aes_key(KEY)
    for bad in ("not base64!!", "YWJj", "YWJjZA", "=" * 8, ""):
        with pytest.raises(DecryptError):
            decrypt(key, bad, "wxapp")
    with pytest.raises(DecryptError, match="AES blocks"):
        decrypt(key, base64.b64encode(b"x" * 20).decode(), "wxapp")


def test_bad_padding() -> None:
    body = b"r" * 16 + struct.pack(">I", 6) + b"<xml/>" + b"wxapp"
    zero_pad = body + b"\x00" * (64 - len(body))  # padding byte 0: invalid
    with pytest.raises(DecryptError, match="padding"):
        decrypt(aes_key(KEY), raw_encrypt(KEY, zero_pad), "wxapp")
    inconsistent = body + b"\x01" * (63 - len(body)) + b"\x05"  # says 5, bytes disagree
    with pytest.raises(DecryptError, match="padding"):
        decrypt(aes_key(KEY), raw_encrypt(KEY, inconsistent), "wxapp")


def test_lying_length_field_and_non_utf8() -> None:
    key = aes_key(KEY)
    too_long = pkcs7(b"r" * 16 + struct.pack(">I", 10_000) + b"<xml/>wxapp")
    with pytest.raises(DecryptError, match="length"):
        decrypt(key, raw_encrypt(KEY, too_long), "wxapp")
    not_utf8 = pkcs7(b"r" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + b"wxapp")
    with pytest.raises(DecryptError, match="UTF-8"):
        decrypt(key, raw_encrypt(KEY, not_utf8), "wxapp")


def test_wrong_appid_is_forbidden() -> None:
    key = aes_key(KEY)
    with pytest.raises(WrongAppId) as exc:
        decrypt(key, encrypt(key, "<xml/>", "wx-someone-else"), "wxapp")
    assert exc.value.status == 403


def test_wrong_key_is_a_decrypt_error() -> None:
    ciphertext = encrypt(aes_key(OTHER_KEY), "<xml><a>1</a></xml>", "wxapp")
    with pytest.raises(RequestRejected) as exc:
        decrypt(aes_key(KEY), ciphertext, "wxapp")
    assert exc.value.status in (400, 403)


class _Settings:
    token = "t"
    appid = "wxapp"
    encoding_aes_key = KEY
    previous_aes_key = OLD_KEY


def test_keyring_rotation_reports_the_key_that_worked() -> None:
    ring = Keyring.from_settings(_Settings())
    new = encrypt(aes_key(KEY), "<xml>new</xml>", "wxapp")
    old = encrypt(aes_key(OLD_KEY), "<xml>old</xml>", "wxapp")
    assert ring.decrypt(new) == ("<xml>new</xml>", 0)
    assert ring.decrypt(old) == ("<xml>old</xml>", 1)
    with pytest.raises(RequestRejected):
        ring.decrypt(encrypt(aes_key(OTHER_KEY), "<xml>x</xml>", "wxapp"))
    # the reply to an old-key message is sealed with the old key
    envelope = ring.seal("<xml>reply</xml>", 1, "123", 1000)
    enc = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    assert decrypt(aes_key(OLD_KEY), enc, "wxapp") == "<xml>reply</xml>"
    assert signature("t", "1000", "123", enc) in envelope


def test_keyring_without_keys_refuses_encrypted_requests() -> None:
    ring = Keyring(token="t", appid="wxapp", keys=())
    with pytest.raises(RequestRejected, match="ENCODING_AES_KEY"):
        ring.decrypt(encrypt(aes_key(KEY), "<xml/>", "wxapp"))
