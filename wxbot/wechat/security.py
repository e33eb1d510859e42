"""Request authentication for the WeChat callback: signatures, the replay window, and AES.

wechatpy does the AES (``PrpCrypto``) but compares signatures with ``!=`` and trusts the
padding and length fields of whatever it decrypts; here signatures are compared in constant
time and every decrypted field is validated before use, so a forged body gets a clean 4xx.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from wechatpy.crypto import PrpCrypto

_BLOCK = 32  # WeChat pads with PKCS#7 to 32 bytes, not AES's 16


class RequestRejected(Exception):
    """A request that must not reach the bot; ``status`` is the HTTP answer, the message the reason."""

    status = 400

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        if status is not None:
            self.status = status

    @property
    def reason(self) -> str:
        return str(self)


class Forbidden(RequestRejected):
    status = 403


class DecryptError(RequestRejected):
    status = 400


class WrongAppId(Forbidden):
    pass


def signature(token: str, *parts: str) -> str:
    """WeChat's signature: sha1 of the sorted, concatenated token, timestamp, nonce (, Encrypt)."""
    return hashlib.sha1("".join(sorted((token, *parts))).encode("utf-8")).hexdigest()


def signature_ok(given: str | None, token: str, *parts: str) -> bool:
    if not given:
        return False
    expected = signature(token, *parts).encode("ascii")
    # compare bytes: compare_digest refuses non-ASCII str, and an attacker may send any text
    return hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape"))


def check_timestamp(raw: str | None, now: float | Sequence[float], skew: int) -> int:
    """Parse the ``timestamp`` query argument and reject it outside ``now ± skew`` (replays);
    ``now`` may be several readings (of different clocks): inside any one window will do."""
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise RequestRejected("missing or malformed timestamp")
    ts = int(raw)
    nows = [now] if isinstance(now, (int, float)) else list(now)
    if all(abs(ts - one) > skew for one in nows):
        ours = ", ".join(str(int(one)) for one in nows)
        raise Forbidden(
            f"timestamp {ts} is outside the allowed window of ±{skew}s (our clock: {ours})"
        )
    return ts


class _Prp(PrpCrypto):
    """wechatpy's cipher with a CSPRNG prefix (wechatpy uses ``random``) or a fixed one for tests."""

    def __init__(self, key: bytes, random_prefix: str | None = None) -> None:
        super().__init__(key)
        self._prefix = random_prefix

    def get_random_string(self) -> str:
        return self._prefix if self._prefix is not None else secrets.token_hex(8)


@lru_cache(maxsize=16)
def _prp(key: bytes) -> _Prp:
    # building the cipher costs about as much as using it; the object is immutable and each
    # encrypt/decrypt opens its own context, so one per key is safe to share between threads
    return _Prp(key)


def aes_key(encoding_aes_key: str) -> bytes:
    key = base64.b64decode(encoding_aes_key + "=")
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


def encrypt(key: bytes, xml: str, appid: str, random_prefix: str | None = None) -> str:
    """Base64 ciphertext of ``16 random bytes + length + xml + appid``."""
    prp = _prp(key) if random_prefix is None else _Prp(key, random_prefix)
    return prp.encrypt(xml, appid).decode("ascii")


def decrypt(key: bytes, encrypted: str, appid: str) -> str:
    """Decrypt an ``Encrypt`` value, validating base64, padding, the length field and the AppID."""
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptError("Encrypt is not valid base64") from None
    if not raw or len(raw) % 16:
        raise DecryptError("Encrypt has a length that is not a whole number of AES blocks")
    plain = _prp(key).cipher.decrypt(raw)
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise DecryptError("bad padding (wrong EncodingAESKey or corrupted Encrypt)")
    content = plain[16:-pad]
    if len(content) < 4:
        raise DecryptError("decrypted message is too short")
    (length,) = struct.unpack(">I", content[:4])
    if length > len(content) - 4:
        raise DecryptError("decrypted length field is larger than the message")
    from_appid = content[4 + length :]
    if not hmac.compare_digest(from_appid, appid.encode("utf-8")):
        raise WrongAppId("message is addressed to another AppID")
    try:
        return content[4 : 4 + length].decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptError("decrypted message is not UTF-8") from None


@dataclass(frozen=True)
class Keyring:
    """The current EncodingAESKey and, during a rotation, the previous one.

    ``decrypt`` says which key worked so the reply can be encrypted with the same key: WeChat
    switches keys on its side at one moment, and a reply in the other key would be unreadable.
    """

    token: str
    appid: str
    keys: tuple[bytes, ...]

    @classmethod
    def from_settings(cls, settings: object) -> Keyring:
        names = (
            getattr(settings, "encoding_aes_key", None),
            getattr(settings, "previous_aes_key", None),
        )
        return cls(
            token=settings.token,  # type: ignore[attr-defined]
            appid=settings.appid,  # type: ignore[attr-defined]
            keys=tuple(aes_key(k) for k in names if k),
        )

    def decrypt(self, encrypted: str) -> tuple[str, int]:
        if not self.keys:
            raise RequestRejected("encrypted request but WXBOT_ENCODING_AES_KEY is not configured")
        first_error: RequestRejected | None = None
        for index, key in enumerate(self.keys):
            try:
                return decrypt(key, encrypted, self.appid), index
            except RequestRejected as exc:
                # a wrong AppID under a key that decrypts cleanly says more than a padding error
                if first_error is None or isinstance(exc, WrongAppId):
                    first_error = exc
        assert first_error is not None
        raise first_error

    def seal(self, xml: str, key_index: int, nonce: str, timestamp: int) -> str:
        """The encrypted reply envelope, signed with ``msg_signature``."""
        encrypted = encrypt(self.keys[key_index], xml, self.appid)
        ts = str(timestamp)
        sig = signature(self.token, ts, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{ts}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
