"""What ``/wechat`` does with a request, without a web framework: verify, decrypt, parse, ask
the bot, render, encrypt.

Every rejection is a 4xx with a one-line reason (also logged); nothing a client sends can
produce a 500. The same code serves Flask's ``GET /wechat`` and the plain-WSGI fast path for
``POST /wechat`` (``callback.FastPath``): the message path skips Flask's request machinery,
which cost more per message than verifying and decrypting it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

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

APOLOGY = "抱歉，我这边出了点问题，请稍后再试。"
_NONCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # echoed into our reply envelope, so keep it plain
MAX_ECHOSTR = 1024
TEXT, XML = "text/plain; charset=utf-8", "application/xml; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = TEXT


@dataclass(frozen=True)
class _Verified:
    timestamp: int
    nonce: str
    encrypted: bool


class Endpoint:
    """The callback of one app. Reads ``extensions`` (the Flask app's) on every request, so a
    test that swaps the settings, the bot or the clock is seen at once."""

    def __init__(self, extensions: MutableMapping[str, Any]) -> None:
        self.extensions = extensions

    # --- requests ---------------------------------------------------------------------

    def verify_url(self, args: Mapping[str, str], remote_addr: str | None) -> Answer:
        """URL verification: echo ``echostr`` when the signature is right (decrypting it when
        WeChat sends it encrypted with ``msg_signature``, as in safe mode for some accounts)."""
        try:
            echostr = args.get("echostr", "")
            if not echostr or len(echostr) > MAX_ECHOSTR:
                raise RequestRejected("missing or oversized echostr")
            verified = self._verify_query(args)
            if verified.encrypted and "signature" not in args:
                self._check_msg_signature(args, echostr)
                echostr, _ = self._keyring().decrypt(echostr)
            return Answer(200, echostr)
        except RequestRejected as exc:
            return _reject("GET", remote_addr, exc)

    def receive(
        self,
        args: Mapping[str, str],
        read: Callable[[int], bytes],
        content_length: int | None,
        remote_addr: str | None,
    ) -> Answer:
        """One delivery of a message. ``read(n)`` reads at most n bytes of the body."""
        try:
            verified = self._verify_query(args)  # cheap checks before reading the body
            outer = parse_xml(self._read_body(read, content_length))
            key_index = 0
            if verified.encrypted:
                encrypt = outer.get("Encrypt")
                if not isinstance(encrypt, str) or not encrypt.strip():
                    raise BadMessage("encrypt_type=aes but no <Encrypt> in the body")
                encrypt = encrypt.strip()
                self._check_msg_signature(args, encrypt)
                xml, key_index = self._keyring().decrypt(encrypt)
                fields = parse_xml(xml.encode("utf-8"))
            else:
                fields = outer
            inbound = to_inbound(fields)
        except RequestRejected as exc:
            return _reject("POST", remote_addr, exc)
        reply = self._ask_bot(inbound)
        return self._respond(reply, inbound, verified, key_index)

    # --- steps ------------------------------------------------------------------------

    def _settings(self) -> Any:
        return self.extensions["wxbot.settings"]

    def _now(self) -> float:
        clock = self.extensions.get("wxbot.clock")
        return time.time() if clock is None else float(clock())

    def _clocks(self) -> list[Callable[[], float]]:
        """The clocks a request's timestamp may be judged by: the app's, the bot's (the
        database server's, which every container shares) and the host's own beneath either."""
        found: list[Callable[[], float]] = []
        bot = self.extensions.get("wxbot.bot")
        for clock in (self.extensions.get("wxbot.clock") or time.time, getattr(bot, "clock", None)):
            for one in (clock, getattr(clock, "local", None)):
                if callable(one) and all(one is not seen for seen in found):
                    found.append(one)
        return found

    def _check_timestamp(self, raw: str | None) -> int:
        """The replay window, by any of our clocks: one clock minutes off (this container's,
        or the database server's) must not turn WeChat away. A replay inside the window is
        still answered from its dedup record, never processed twice. A timestamp outside
        every window first has the database's clock measured again (at most once a minute),
        which a container that has answered nothing yet has not done."""
        skew = self._settings().timestamp_skew
        clocks = self._clocks()
        try:
            return check_timestamp(raw, [clock() for clock in clocks], skew)
        except Forbidden:
            resync = [sync for c in clocks if callable(sync := getattr(c, "sync", None))]
            if not resync:
                raise
            for sync in resync:
                sync()
            return check_timestamp(raw, [clock() for clock in clocks], skew)

    def _keyring(self) -> Keyring:
        settings = self._settings()
        cached = self.extensions.get("wxbot.wechat.keyring")
        if cached is None or cached[0] is not settings:  # settings are frozen: cache per object
            cached = (settings, Keyring.from_settings(settings))
            self.extensions["wxbot.wechat.keyring"] = cached
        return cached[1]

    def _verify_query(self, args: Mapping[str, str]) -> _Verified:
        """Check the query string: timestamp window, nonce, mode, and the plain ``signature``.

        The plain ``signature`` is required in plaintext mode and checked whenever present;
        safe and compatible mode (``encrypt_type=aes``) also need ``msg_signature`` over the
        ``Encrypt`` value, checked by ``_check_msg_signature`` once the body is parsed.
        """
        settings = self._settings()
        timestamp = self._check_timestamp(args.get("timestamp"))
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

    def _check_msg_signature(self, args: Mapping[str, str], encrypt: str) -> None:
        token = self._settings().token
        if not signature_ok(
            args.get("msg_signature"), token, args["timestamp"], args["nonce"], encrypt
        ):
            raise Forbidden("bad msg_signature")

    def _read_body(self, read: Callable[[int], bytes], content_length: int | None) -> bytes:
        limit = self._settings().max_body_bytes
        if content_length is not None and content_length > limit:
            raise RequestRejected(f"body larger than {limit} bytes", status=413)
        # also bounds chunked bodies with no Content-Length
        data = read(limit + 1 if content_length is None else content_length)
        if len(data) > limit:
            raise RequestRejected(f"body larger than {limit} bytes", status=413)
        if not data.strip():
            raise BadMessage("empty body")
        return data

    def _ask_bot(self, inbound: Inbound) -> Reply:
        try:
            return self.extensions["wxbot.bot"].handle(inbound)  # type: ignore[no-any-return]
        except Exception:  # the engine apologises itself; this guards the edge against its bugs
            log.exception("bot failed on %s", inbound.dedup_key)
            return Text(APOLOGY)

    def _respond(
        self, reply: Reply, inbound: Inbound, verified: _Verified, key_index: int
    ) -> Answer:
        if isinstance(reply, Withheld):  # not answered: WeChat delivers the message again
            return Answer(503, "not answered; deliver again\n")
        now = int(self._now())
        try:
            xml = render(reply, inbound, now)
        except Exception:
            # the reply's kind, not its text: that may quote the user (a number, a question)
            log.exception(
                "could not render a %s reply for %s", type(reply).__name__, inbound.dedup_key
            )
            xml = render(Text(APOLOGY), inbound, now)
        if xml == SUCCESS:  # "success" is never encrypted: WeChat accepts it as is in every mode
            return Answer(200, SUCCESS)
        if verified.encrypted:
            xml = self._keyring().seal(xml, key_index, verified.nonce, now)
        return Answer(200, xml, XML)


def _reject(method: str, remote_addr: str | None, exc: RequestRejected) -> Answer:
    log.warning("rejected %s /wechat from %s: %s (%d)", method, remote_addr, exc.reason, exc.status)
    return Answer(exc.status, exc.reason + "\n")
