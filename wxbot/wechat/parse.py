"""Safe XML parsing and the translation of a WeChat message into the engine's ``Inbound``.

XML goes through defusedxml with DTDs forbidden, so XXE, entity expansion (billion laughs) and
external references are refused before any expansion happens. The resulting dict is typed by
wechatpy's message/event classes (the same dispatch as ``wechatpy.parse_message``, which would
re-parse the text with xmltodict and accept a DOCTYPE).
"""

from __future__ import annotations

import hashlib
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage

from wxbot.messages.inbound import Inbound
from wxbot.models import OPENID_LEN
from wxbot.wechat.security import RequestRejected

MESSAGE_KINDS = frozenset(
    {"text", "image", "voice", "video", "shortvideo", "location", "link", "event"}
)
DEDUP_KEY_LEN = 191  # SeenMessage.dedup_key
QRSCENE = "qrscene_"
MAX_DEPTH = 8


class BadMessage(RequestRejected):
    status = 400


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeChat XML document into a dict of its children (nested elements → dicts)."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadMessage(f"XML with a DTD or entities is refused ({type(exc).__name__})") from None
    except (ParseError, ValueError, TypeError, LookupError):  # LookupError: encoding="bogus"
        raise BadMessage("malformed XML") from None
    if root.tag != "xml":
        raise BadMessage(f"root element must be <xml>, not <{root.tag[:32]}>")
    return _children(root)


def _children(elem: Element, depth: int = 1) -> dict[str, Any]:
    # WeChat's deepest documents (ScanCodeInfo, SendPicsInfo) nest 4 levels; a deliberately
    # deep body would otherwise exhaust Python's recursion limit and end in a 500
    if depth > MAX_DEPTH:
        raise BadMessage(f"XML nested deeper than {MAX_DEPTH} levels")
    out: dict[str, Any] = {}
    for child in elem:
        value: Any = _children(child, depth + 1) if len(child) else (child.text or "")
        if child.tag in out:  # repeated elements (e.g. <item>) become a list, as in xmltodict
            prev = out[child.tag]
            out[child.tag] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[child.tag] = value
    return out


def _text(fields: dict[str, Any], name: str, strip: bool = True) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str):  # e.g. <Content><b>x</b></Content>
        raise BadMessage(f"<{name}> must be text")
    return value.strip() if strip else value


def typed_message(fields: dict[str, Any]) -> BaseMessage:
    """wechatpy's typed message for a parsed dict (``wechatpy.parse_message`` without re-parsing)."""
    msg_type = _text(fields, "MsgType").lower()
    if msg_type != "event":
        return MESSAGE_TYPES.get(msg_type, UnknownMessage)(fields)
    event = _text(fields, "Event").lower()
    key = _text(fields, "EventKey")
    if event == "subscribe" and key.startswith(QRSCENE):
        # scanning a parametric QR code to follow: wechatpy's subscribe_scan with the scene id
        fields = {**fields, "EventKey": key[len(QRSCENE) :]}
        return EVENT_TYPES["subscribe_scan"](fields)
    return EVENT_TYPES.get(event, UnknownMessage)(fields)


def dedup_key(fields: dict[str, Any]) -> str:
    """The key WeChat's retries share: MsgId + FromUserName for messages, and FromUserName +
    CreateTime + Event + EventKey for events (MsgId alone has been seen to collide)."""
    openid = _text(fields, "FromUserName")
    msg_id = _text(fields, "MsgId")
    if msg_id and _text(fields, "MsgType").lower() != "event":
        key = f"m|{openid}|{msg_id}"
    else:
        parts = (_text(fields, n) for n in ("CreateTime", "MsgType", "Event", "EventKey"))
        key = "e|" + "|".join((openid, *parts))
    if (
        len(key) > DEDUP_KEY_LEN
    ):  # long EventKeys (VIEW urls): keep the openid readable, hash the rest
        key = f"h|{openid}|{hashlib.sha256(key.encode('utf-8')).hexdigest()}"
    return key


def _float(value: Any, name: str, limit: float) -> float:
    """A coordinate: a number within ±``limit`` (90 for a latitude, 180 for a longitude)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadMessage(f"<{name}> is not a number") from None
    if not -limit <= number <= limit:  # NaN too: no place on Earth (weather asked for it)
        raise BadMessage(f"<{name}> is out of range (±{limit:g})")
    return number


def to_inbound(fields: dict[str, Any]) -> Inbound:
    """Validate the required fields and build the engine's typed view of the message."""
    for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType"):
        if not _text(fields, name):
            raise BadMessage(f"missing <{name}>")
    openid = _text(fields, "FromUserName")
    if len(openid) > OPENID_LEN:
        raise BadMessage("FromUserName is too long to be an OpenID")
    create_time = _text(fields, "CreateTime")
    if not (create_time.isascii() and create_time.isdigit() and len(create_time) <= 12):
        raise BadMessage("<CreateTime> is not an integer")
    kind = _text(fields, "MsgType").lower()
    if kind == "event" and not _text(fields, "Event"):
        raise BadMessage("event without <Event>")
    if kind in MESSAGE_KINDS - {"event"} and not _text(fields, "MsgId"):
        raise BadMessage("message without <MsgId>")
    msg = typed_message(fields)
    common: dict[str, Any] = {
        "openid": openid,
        "account": _text(fields, "ToUserName"),
        "dedup_key": dedup_key(fields),
        "msg_id": _text(fields, "MsgId"),
        "create_time": int(create_time),
        "media_id": _text(fields, "MediaId"),
    }
    if kind not in MESSAGE_KINDS:
        return Inbound(kind="unknown", **common)
    if kind == "text":
        return Inbound(kind=kind, text=_text(fields, "Content", strip=False), **common)
    if kind == "voice":  # Recognition is often absent or empty: then there is simply no text
        return Inbound(kind=kind, text=_text(fields, "Recognition"), **common)
    if kind == "image":
        return Inbound(kind=kind, url=_text(fields, "PicUrl"), **common)
    if kind == "link":
        return Inbound(kind=kind, text=_text(fields, "Title"), url=_text(fields, "Url"), **common)
    if kind == "location":
        return Inbound(
            kind=kind,
            latitude=_float(fields.get("Location_X"), "Location_X", 90),
            longitude=_float(fields.get("Location_Y"), "Location_Y", 180),
            label=_text(fields, "Label"),
            **common,
        )
    if kind != "event":  # video, shortvideo
        return Inbound(kind=kind, **common)
    return _event(msg, fields, common)


def _event(msg: BaseMessage, fields: dict[str, Any], common: dict[str, Any]) -> Inbound:
    event = _text(fields, "Event").lower()
    key = _text(fields, "EventKey")
    if msg.type == "event" and getattr(msg, "event", "") == "subscribe_scan":
        # followed via a parametric QR code: still a subscribe, the key is the bare scene id
        return Inbound(kind="event", event="subscribe", event_key=msg.scene_id or "", **common)
    if event == "location":
        return Inbound(
            kind="event",
            event=event,
            latitude=_float(fields.get("Latitude"), "Latitude", 90),
            longitude=_float(fields.get("Longitude"), "Longitude", 180),
            **common,
        )
    if event == "view":
        return Inbound(kind="event", event=event, event_key=key, url=key, **common)
    return Inbound(kind="event", event=event, event_key=key, **common)
