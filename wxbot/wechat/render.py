"""Render the engine's reply values as wechatpy passive replies (XML)."""

from __future__ import annotations

from wechatpy.replies import (
    ArticlesReply,
    BaseReply,
    ImageReply,
    MusicReply,
    TextReply,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
)

from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import (
    UNSENDABLE,
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

SUCCESS = "success"  # WeChat's "no reply": nothing is shown and nothing is retried
MAX_ARTICLES_FOR_MESSAGES = 1  # WeChat shows one article in reply to a user message ...
MAX_ARTICLES_FOR_EVENTS = 8  # ... and up to eight in reply to an event

MAX_TEXT_BYTES = 2048  # WeChat refuses a longer passive text reply outright
ELLIPSIS = "…"


def clean(value: str) -> str:
    """Make a string safe inside wechatpy's ``<![CDATA[...]]>``: a ``]]>`` in user-supplied
    text would otherwise end the section and let the text inject XML into our reply."""
    value = UNSENDABLE.sub("", value or "")  # WeChat would reject the whole reply
    return value.replace("]]>", "]]]]><![CDATA[>")


def fit_text(value: str, limit: int = MAX_TEXT_BYTES) -> str:
    """``value`` cut to ``limit`` UTF-8 bytes (on a character boundary, marked with an
    ellipsis). The engine pages long answers; this is the edge's last guard for a text that
    reached it unpaged, which WeChat would refuse, leaving the user with nothing at all."""
    data = value.encode("utf-8")
    if len(data) <= limit:
        return value
    room = limit - len(ELLIPSIS.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + ELLIPSIS


def to_wechat(reply: Reply, inbound: Inbound, now: int) -> BaseReply | None:
    """The wechatpy reply for ``reply``, or None when WeChat should just get ``success``."""
    base = {"source": clean(inbound.account), "target": clean(inbound.openid), "time": now}
    if isinstance(reply, Text):
        if not reply.content:
            return None
        return TextReply(content=clean(fit_text(reply.content)), **base)
    if isinstance(reply, Image):
        return ImageReply(image=clean(reply.media_id), **base)
    if isinstance(reply, Voice):
        return VoiceReply(voice=clean(reply.media_id), **base)
    if isinstance(reply, Video):
        video = {"media_id": reply.media_id, "title": reply.title, "description": reply.description}
        return VideoReply(video={k: clean(v) for k, v in video.items()}, **base)
    if isinstance(reply, Music):
        music = {
            "title": reply.title,
            "description": reply.description,
            "music_url": reply.music_url,
            "hq_music_url": reply.hq_music_url or reply.music_url,
            "thumb_media_id": reply.thumb_media_id,
        }
        return MusicReply(music={k: clean(v) for k, v in music.items()}, **base)
    if isinstance(reply, News):
        limit = MAX_ARTICLES_FOR_EVENTS if inbound.is_event else MAX_ARTICLES_FOR_MESSAGES
        articles = [
            {
                "title": clean(a.title),
                "description": clean(a.description),
                "image": clean(a.image),
                "url": clean(a.url),
            }
            for a in reply.articles[:limit]
        ]
        return ArticlesReply(articles=articles, **base) if articles else None
    if isinstance(reply, TransferToHuman):
        return TransferCustomerServiceReply(**base)
    if isinstance(reply, Silent):
        return None
    raise TypeError(f"cannot render {type(reply).__name__}")


def render(reply: Reply, inbound: Inbound, now: int) -> str:
    """The passive reply's XML, or ``success`` for a silent (or empty) reply."""
    wechat = to_wechat(reply, inbound, now)
    return SUCCESS if wechat is None else wechat.render()
