"""A fake WeChat server: builds, signs and encrypts callback requests, checks and decrypts replies.

Used by ``wxbot chat``, by tests and by benchmarks to drive the bot exactly as WeChat does::

    sim = WeChatSimulator(token, appid, aes_key, mode="safe")
    reply = sim.send(client_or_url, "你好", openid="user-1")   # -> wxbot.messages.replies.Text
    reply = sim.post(client_or_url, sim.location(39.9, 116.4))

``target`` is a Flask test client (in-process, path ``/wechat``) or an ``http://`` URL
(requests, one keep-alive session). Any non-200 answer or a reply whose signature, AppID or
addressing is wrong raises ``SimulatorError``.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from wxbot.messages.replies import (
    Article,
    Image,
    Music,
    News,
    Reply,
    Silent,
    Text,
    TransferToHuman,
    Video,
    Voice,
)
from wxbot.wechat.parse import parse_xml
from wxbot.wechat.render import clean
from wxbot.wechat.security import (
    RequestRejected,
    decrypt,
    encrypt,
    signature,
    signature_ok,
)
from wxbot.wechat.security import aes_key as decode_aes_key

MODES = ("plain", "compat", "safe")
DEFAULT_OPENID = "o_chat_user"
DEFAULT_ACCOUNT = "gh_wxbot_sim"
_AES_KEY_RE = re.compile(r"^[A-Za-z0-9]{43}$")  # as the settings check WXBOT_ENCODING_AES_KEY


class SimulatorError(Exception):
    """The server answered with an error status or a reply that does not verify."""

    def __init__(self, message: str, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class RawResponse:
    status: int
    text: str


class WeChatSimulator:
    def __init__(
        self,
        token: str,
        appid: str,
        aes_key: str | None = None,
        mode: str | None = None,
        *,
        account: str = DEFAULT_ACCOUNT,
        clock: Callable[[], float] = time.time,
        path: str = "/wechat",
        timeout: float = 10.0,
    ) -> None:
        # Said here, not as a TypeError deep in signing or binascii.Error from base64
        for name, value in (("token", token), ("appid", appid)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        if aes_key and not _AES_KEY_RE.match(str(aes_key)):  # (empty: none, as before)
            raise ValueError(
                "aes_key must be the 43-character EncodingAESKey (letters and digits), or None"
            )
        if not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        mode = mode or ("safe" if aes_key else "plain")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode != "plain" and not aes_key:
            raise ValueError(f"{mode} mode needs an EncodingAESKey")
        self.token, self.appid, self.mode = token, appid, mode
        self.key = decode_aes_key(aes_key) if aes_key else None
        self.account, self.clock, self.path, self.timeout = account, clock, path, timeout
        # MsgIds unique per simulator: a random base so two simulators do not collide
        self._msg_ids = itertools.count(secrets.randbelow(10**12) * 10**6)
        self._session: Any = None

    @classmethod
    def from_settings(
        cls, settings: Any, mode: str | None = None, **kwargs: Any
    ) -> WeChatSimulator:
        return cls(settings.token, settings.appid, settings.encoding_aes_key, mode, **kwargs)

    # --- building messages (dicts of WeChat's XML field names) -------------------------------

    def message(self, msg_type: str, openid: str = DEFAULT_OPENID, **fields: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "ToUserName": self.account,
            "FromUserName": openid,
            "CreateTime": int(self.clock()),
            "MsgType": msg_type,
        }
        msg.update(fields)
        if msg_type != "event" and "MsgId" not in msg:
            msg["MsgId"] = next(self._msg_ids)
        return msg

    def text(self, content: str, openid: str = DEFAULT_OPENID, **extra: Any) -> dict[str, Any]:
        if not isinstance(content, str):  # None went out as the text "None"
            raise TypeError(f"content must be a str, not {type(content).__name__}")
        return self.message("text", openid, Content=content, **extra)

    def image(self, openid: str = DEFAULT_OPENID, media_id: str = "sim-image") -> dict[str, Any]:
        return self.message("image", openid, PicUrl="http://127.0.0.1/sim.jpg", MediaId=media_id)

    def voice(self, recognition: str = "", openid: str = DEFAULT_OPENID) -> dict[str, Any]:
        return self.message(
            "voice", openid, MediaId="sim-voice", Format="amr", Recognition=recognition
        )

    def video(self, openid: str = DEFAULT_OPENID, short: bool = False) -> dict[str, Any]:
        kind = "shortvideo" if short else "video"
        return self.message(kind, openid, MediaId="sim-video", ThumbMediaId="sim-thumb")

    def location(
        self, lat: float, lon: float, label: str = "", openid: str = DEFAULT_OPENID
    ) -> dict[str, Any]:
        # WeChat sends a place on Earth: nan went out and met a 400, "39.9" and True as text
        for name, value, limit in (("lat", lat, 90), ("lon", lon, 180)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if not -limit <= value <= limit:
                raise ValueError(f"{name} must be within ±{limit}, not {value!r}")
        return self.message(
            "location", openid, Location_X=lat, Location_Y=lon, Scale=15, Label=label
        )

    def link(self, title: str, url: str, openid: str = DEFAULT_OPENID) -> dict[str, Any]:
        return self.message("link", openid, Title=title, Description="", Url=url)

    def event(
        self, name: str, key: str = "", openid: str = DEFAULT_OPENID, **extra: Any
    ) -> dict[str, Any]:
        return self.message("event", openid, Event=name, EventKey=key, **extra)

    @staticmethod
    def build_xml(fields: Mapping[str, Any]) -> str:
        parts = ["<xml>"]
        for name, value in fields.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"<{name}>{value}</{name}>")
            else:
                parts.append(f"<{name}><![CDATA[{clean(str(value))}]]></{name}>")
        parts.append("</xml>")
        return "".join(parts)

    # --- signing and sending -----------------------------------------------------------------

    def sign(self, fields: Mapping[str, Any]) -> tuple[dict[str, str], str]:
        """Query parameters and body for one callback POST, as WeChat would send them."""
        timestamp, nonce = str(int(self.clock())), str(secrets.randbelow(10**10))
        params = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": str(fields.get("FromUserName", "")),
        }
        xml = self.build_xml(fields)
        if self.mode == "plain":
            return params, xml
        assert self.key is not None
        encrypted = encrypt(self.key, xml, self.appid)
        params["encrypt_type"] = "aes"
        params["msg_signature"] = signature(self.token, timestamp, nonce, encrypted)
        enc = f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        if self.mode == "compat":  # plaintext fields and the ciphertext side by side
            return params, xml.replace("</xml>", enc + "</xml>")
        to_user = clean(str(fields.get("ToUserName", self.account)))
        return params, f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>{enc}</xml>"

    def post(self, target: Any, message: Mapping[str, Any]) -> Reply:
        """Send one message and return the verified, decrypted reply as a reply value."""
        if not isinstance(message, Mapping):  # post(client, "你好"): an AttributeError before
            raise TypeError(
                "post() takes a message such as sim.text('你好'); send() takes text,"
                f" not {type(message).__name__}"
            )
        params, body = self.sign(message)
        raw = self.request(target, "POST", params, body)
        if raw.status != 200:
            raise SimulatorError(f"HTTP {raw.status}: {raw.text.strip()}", raw.status, raw.text)
        return self.read_reply(raw.text, message)

    def send(self, target: Any, content: str, openid: str = DEFAULT_OPENID) -> Reply:
        return self.post(target, self.text(content, openid))

    def verify_url(self, target: Any, echostr: str = "wxbot-echo") -> str:
        timestamp, nonce = str(int(self.clock())), str(secrets.randbelow(10**10))
        params = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": echostr,
        }
        raw = self.request(target, "GET", params, None)
        if raw.status != 200:
            raise SimulatorError(f"HTTP {raw.status}: {raw.text.strip()}", raw.status, raw.text)
        return raw.text

    def request(
        self, target: Any, method: str, params: Mapping[str, str], body: str | bytes | None
    ) -> RawResponse:
        """One raw HTTP exchange (also for tests that send deliberately broken requests)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        if isinstance(target, str) and not target.lower().startswith(("http://", "https://")):
            raise ValueError(f"target must be an http:// or https:// URL, not {target!r}")
        if not isinstance(target, str) and not hasattr(target, "open"):
            if not hasattr(target, "test_client"):  # the Flask app itself is fine too
                raise TypeError(
                    "target must be an http:// URL or a Flask test client,"
                    f" not {type(target).__name__}"
                )
            target = target.test_client()
        if isinstance(target, str):
            import requests

            if self._session is None:
                self._session = requests.Session()
            resp = self._session.request(
                method,
                target,
                params=params,
                data=data,
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=self.timeout,
            )
            # WeChat reads replies as UTF-8; requests guesses ISO-8859-1 for a text/xml
            # without charset (a proxy's), which garbled every Chinese reply
            return RawResponse(resp.status_code, resp.content.decode("utf-8", "replace"))
        resp = target.open(
            self.path, method=method, query_string=dict(params), data=data, content_type="text/xml"
        )
        return RawResponse(resp.status_code, resp.get_data(as_text=True))

    # --- reading replies ---------------------------------------------------------------------

    def read_reply(self, text: str, message: Mapping[str, Any] | None = None) -> Reply:
        if text.strip() in ("", "success"):
            return Silent()
        try:
            fields = parse_xml(text.encode("utf-8"))
            if self.mode != "plain":
                fields = self._open_envelope(fields)
        except RequestRejected as exc:
            raise SimulatorError(f"unreadable reply: {exc.reason}", 200, text) from None
        if message is not None:
            to, frm = fields.get("ToUserName"), fields.get("FromUserName")
            if to != str(message.get("FromUserName")) or frm != str(message.get("ToUserName")):
                raise SimulatorError(f"reply addressed {frm!r} -> {to!r}", 200, text)
        return reply_from_fields(fields)

    def _open_envelope(self, fields: dict[str, Any]) -> dict[str, Any]:
        encrypted = fields.get("Encrypt")
        if not isinstance(encrypted, str):
            raise SimulatorError("request was encrypted but the reply is not")
        ts, nonce = str(fields.get("TimeStamp", "")), str(fields.get("Nonce", ""))
        if not signature_ok(str(fields.get("MsgSignature", "")), self.token, ts, nonce, encrypted):
            raise SimulatorError("reply MsgSignature does not verify")
        assert self.key is not None
        return parse_xml(decrypt(self.key, encrypted, self.appid).encode("utf-8"))


def reply_from_fields(fields: Mapping[str, Any]) -> Reply:
    """A passive reply's XML fields back into a reply value."""
    kind = fields.get("MsgType")

    def sub(name: str) -> Mapping[str, Any]:
        value = fields.get(name)
        return value if isinstance(value, Mapping) else {}

    if kind == "text":
        return Text(str(fields.get("Content", "")))
    if kind == "image":
        return Image(str(sub("Image").get("MediaId", "")))
    if kind == "voice":
        return Voice(str(sub("Voice").get("MediaId", "")))
    if kind == "video":
        v = sub("Video")
        return Video(v.get("MediaId", ""), v.get("Title", ""), v.get("Description", ""))
    if kind == "music":
        m = sub("Music")
        return Music(
            title=m.get("Title", ""),
            description=m.get("Description", ""),
            music_url=m.get("MusicUrl", ""),
            hq_music_url=m.get("HQMusicUrl", ""),
            thumb_media_id=m.get("ThumbMediaId", ""),
        )
    if kind == "news":
        items = sub("Articles").get("item", [])
        items = items if isinstance(items, list) else [items]
        return News(
            tuple(
                Article(
                    i.get("Title", ""),
                    i.get("Description", ""),
                    i.get("PicUrl", ""),
                    i.get("Url", ""),
                )
                for i in items
            )
        )
    if kind == "transfer_customer_service":
        return TransferToHuman()
    raise SimulatorError(f"unknown reply MsgType {kind!r}")
