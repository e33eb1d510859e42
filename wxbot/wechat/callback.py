"""The ``/wechat`` blueprint: verify, decrypt, parse, ask the bot, render, encrypt.

Every rejection is a 4xx with a one-line reason (also logged); nothing a client sends can
produce a 500. The bot is ``app.extensions["wxbot.bot"]`` (anything with ``handle(inbound)``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Text, Withheld
from wxbot.wechat.parse import BadMessage, parse_xml, to_inbound
from wxbot.wechat.render import SUCCESS, render
from wxbot.wechat.security import (
    Forbidden,
    Keyring,
    RequestRejected,
    check_timestamp,
    signature_ok,
)

log = logging.getLogger("wxbot.wechat")
bp = Blueprint("wechat", __name__)

APOLOGY = "抱歉，我这边出了点问题，请稍后再试。"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # echoed into our reply envelope, so keep it plain
MAX_ECHOSTR = 1024


@dataclass(frozen=True)
class _Verified:
    timestamp: int
    nonce: str
    encrypted: bool


def _settings() -> Any:
    return current_app.extensions["wxbot.settings"]


def _now() -> float:
    clock = current_app.extensions.get("wxbot.clock")
    if clock is None:
        import time

        return time.time()
    return float(clock())


def _keyring() -> Keyring:
    settings = _settings()
    cached = current_app.extensions.get("wxbot.wechat.keyring")
    if cached is None or cached[0] is not settings:  # settings are frozen: cache per object
        cached = (settings, Keyring.from_settings(settings))
        current_app.extensions["wxbot.wechat.keyring"] = cached
    return cached[1]


def _reject(exc: RequestRejected) -> Response:
    log.warning(
        "rejected %s /wechat from %s: %s (%d)",
        request.method,
        request.remote_addr,
        exc.reason,
        exc.status,
    )
    return Response(exc.reason + "\n", status=exc.status, mimetype="text/plain")


def _verify_query() -> _Verified:
    """Check the query string: timestamp window, nonce, mode, and the plain ``signature``.

    The plain ``signature`` is required in plaintext mode and checked whenever present; safe
    and compatible mode (``encrypt_type=aes``) also need ``msg_signature`` over the
    ``Encrypt`` value, checked by ``_check_msg_signature`` once the body is parsed.
    """
    settings = _settings()
    args = request.args
    timestamp = check_timestamp(args.get("timestamp"), _now(), settings.timestamp_skew)
    nonce = args.get("nonce", "")
    if not _NONCE.match(nonce):
        raise RequestRejected("missing or malformed nonce")
    encrypt_type = (args.get("encrypt_type") or "raw").lower()
    if encrypt_type not in ("raw", "aes"):
        raise RequestRejected(f"unsupported encrypt_type {encrypt_type[:16]!r}")
    # msg_signature alone (no plain signature) also means an encrypted request
    encrypted = encrypt_type == "aes" or ("signature" not in args and "msg_signature" in args)
    plain_sig = args.get("signature")
    if (plain_sig is not None or not encrypted) and not signature_ok(
        plain_sig, settings.token, args["timestamp"], nonce
    ):
        raise Forbidden("bad signature")
    return _Verified(timestamp, nonce, encrypted)


def _check_msg_signature(encrypt: str) -> None:
    args = request.args
    token = _settings().token
    if not signature_ok(
        args.get("msg_signature"), token, args["timestamp"], args["nonce"], encrypt
    ):
        raise Forbidden("bad msg_signature")


@bp.get("/wechat")
def verify_url() -> Response:
    """URL verification: echo ``echostr`` when the signature is right (decrypting it when
    WeChat sends it encrypted with ``msg_signature``, as in safe mode for some account types)."""
    try:
        echostr = request.args.get("echostr", "")
        if not echostr or len(echostr) > MAX_ECHOSTR:
            raise RequestRejected("missing or oversized echostr")
        verified = _verify_query()
        if verified.encrypted and "signature" not in request.args:
            _check_msg_signature(echostr)
            echostr, _ = _keyring().decrypt(echostr)
        return Response(echostr, mimetype="text/plain")
    except RequestRejected as exc:
        return _reject(exc)


def _read_body() -> bytes:
    limit = _settings().max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise RequestRejected(f"body larger than {limit} bytes", status=413)
    data = request.stream.read(limit + 1)  # also bounds chunked bodies with no Content-Length
    if len(data) > limit:
        raise RequestRejected(f"body larger than {limit} bytes", status=413)
    if not data.strip():
        raise BadMessage("empty body")
    return data


@bp.post("/wechat")
def receive() -> Response:
    try:
        verified = _verify_query()  # cheap checks before reading and parsing the body
        outer = parse_xml(_read_body())
        key_index = 0
        if verified.encrypted:
            encrypt = outer.get("Encrypt")
            if not isinstance(encrypt, str) or not encrypt.strip():
                raise BadMessage("encrypt_type=aes but no <Encrypt> in the body")
            encrypt = encrypt.strip()
            _check_msg_signature(encrypt)
            xml, key_index = _keyring().decrypt(encrypt)
            fields = parse_xml(xml.encode("utf-8"))
        else:
            fields = outer
        inbound = to_inbound(fields)
    except RequestRejected as exc:
        return _reject(exc)
    reply = _ask_bot(inbound)
    return _respond(reply, inbound, verified, key_index)


def _ask_bot(inbound: Inbound) -> Reply:
    try:
        return current_app.extensions["wxbot.bot"].handle(inbound)
    except Exception:  # the engine apologises itself; this guards the edge against its bugs
        log.exception("bot failed on %s", inbound.dedup_key)
        return Text(APOLOGY)


def _respond(reply: Reply, inbound: Inbound, verified: _Verified, key_index: int) -> Response:
    if isinstance(reply, Withheld):  # not answered: WeChat delivers the message again
        return Response("not answered; deliver again\n", status=503, mimetype="text/plain")
    now = int(_now())
    try:
        xml = render(reply, inbound, now)
    except Exception:
        log.exception("could not render %r for %s", reply, inbound.dedup_key)
        xml = render(Text(APOLOGY), inbound, now)
    if xml == SUCCESS:  # "success" is never encrypted: WeChat accepts it as is in every mode
        return Response(SUCCESS, mimetype="text/plain")
    if verified.encrypted:
        xml = _keyring().seal(xml, key_index, verified.nonce, now)
    return Response(xml, mimetype="application/xml")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
