"""Customer-service message bodies (``/cgi-bin/message/custom/send``) and their JSON.

Each reply type maps to the JSON WeChat accepts; a text longer than WeChat takes in one
message is pushed as several (the dialogue already pages its answers, so this is a safety net
for any other caller), and the JSON is UTF-8 without ``\\uXXXX`` escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from wxbot.messages.replies import Image, Music, News, Reply, Text, Video, Voice

# The longest text content WeChat takes in one customer-service message (longer: 45002).
TEXT_MAX_BYTES = 2048
# WeChat lets an account push a handful of messages per user message (45047 beyond that):
# a text needing more parts than this is cut, with an ellipsis, rather than refused outright.
MAX_PARTS = 5
ELLIPSIS = "…"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def custom_message(openid: str, reply: Reply) -> dict[str, Any] | None:
    """The customer-service message body for a reply, or None when it cannot be pushed.
    A text too long for one message: its first part (see custom_messages for all)."""
    bodies = custom_messages(openid, reply)
    return bodies[0] if bodies else None


def custom_messages(openid: str, reply: Reply) -> list[dict[str, Any]]:
    """The message bodies that push ``reply`` (empty: nothing to push)."""
    base: dict[str, Any] = {"touser": openid}
    if isinstance(reply, Text):
        return [
            {**base, "msgtype": "text", "text": {"content": part}}
            for part in text_parts(reply.content)
        ]
    if isinstance(reply, Music):
        if not reply.thumb_media_id:
            # WeChat requires a thumbnail for pushed music; a link still plays it.
            text = f"🎵 {reply.title}\n{reply.description}\n{reply.music_url}"
            return custom_messages(openid, Text(text))
        return [
            {
                **base,
                "msgtype": "music",
                "music": {
                    "title": reply.title,
                    "description": reply.description,
                    "musicurl": reply.music_url,
                    "hqmusicurl": reply.hq_music_url or reply.music_url,
                    "thumb_media_id": reply.thumb_media_id,
                },
            }
        ]
    if isinstance(reply, News):
        articles = [
            {"title": a.title, "description": a.description, "url": a.url, "picurl": a.image}
            for a in reply.articles[:1]  # WeChat now delivers only one article per push
        ]
        return [{**base, "msgtype": "news", "news": {"articles": articles}}] if articles else []
    if isinstance(reply, Image):
        return [{**base, "msgtype": "image", "image": {"media_id": reply.media_id}}]
    if isinstance(reply, Voice):
        return [{**base, "msgtype": "voice", "voice": {"media_id": reply.media_id}}]
    if isinstance(reply, Video):
        video = {"media_id": reply.media_id, "title": reply.title, "description": reply.description}
        return [{**base, "msgtype": "video", "video": video}]
    return []  # Silent, TransferToHuman: nothing to show


def text_parts(content: str, max_bytes: int = TEXT_MAX_BYTES) -> list[str]:
    """``content`` in parts of at most ``max_bytes`` UTF-8 bytes (at most MAX_PARTS), split
    on character boundaries, at the last line break in a part's second half where there is
    one. Empty text is no message (WeChat refuses it: 44004)."""
    content = clean(content)
    if not content.strip():
        return []
    parts: list[str] = []
    rest = content
    while rest:
        if len(rest.encode("utf-8")) <= max_bytes:
            parts.append(rest)
            break
        if len(parts) == MAX_PARTS - 1:
            parts.append(_prefix(rest, max_bytes - len(ELLIPSIS.encode())) + ELLIPSIS)
            break
        head = _prefix(rest, max_bytes)
        cut = head.rfind("\n")
        if cut > len(head) // 2:
            head = head[: cut + 1]
        parts.append(head.rstrip("\n"))
        rest = rest[len(head) :]
    return parts


def _prefix(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits ``max_bytes``."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def clean(text: str) -> str:
    """A lone surrogate (e.g. a webhook's JSON ``"\\ud83d"`` without its pair) cannot be
    encoded as UTF-8 at all; it becomes U+FFFD instead of failing the whole push."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def encode(body: dict[str, Any]) -> bytes:
    """The request body: UTF-8 JSON with ``ensure_ascii=False``, since WeChat shows ``\\uXXXX``
    escapes in a pushed message literally instead of decoding them."""
    return clean(json.dumps(body, ensure_ascii=False)).encode("utf-8")
