"""Reply values the engine produces; the protocol edge renders them with wechatpy.

They are plain data so they can be stored under a message's dedup key and replayed to a
WeChat retry byte for byte (``to_dict`` / ``reply_from_dict``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

# Characters no XML 1.0 document may hold, so no reply can carry them to WeChat: the edge
# drops them from what it renders, and the knowledge base refuses answers that hold them.
UNSENDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class Reply:
    kind: ClassVar[str] = "none"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Silent(Reply):
    """Answer WeChat with ``success``: no message is shown to the user."""

    kind: ClassVar[str] = "silent"


@dataclass(frozen=True)
class Text(Reply):
    content: str
    kind: ClassVar[str] = "text"


@dataclass(frozen=True)
class Image(Reply):
    media_id: str
    kind: ClassVar[str] = "image"


@dataclass(frozen=True)
class Voice(Reply):
    media_id: str
    kind: ClassVar[str] = "voice"


@dataclass(frozen=True)
class Video(Reply):
    media_id: str
    title: str = ""
    description: str = ""
    kind: ClassVar[str] = "video"


@dataclass(frozen=True)
class Music(Reply):
    title: str
    description: str
    music_url: str
    hq_music_url: str = ""
    thumb_media_id: str = ""
    kind: ClassVar[str] = "music"


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    image: str = ""
    url: str = ""


@dataclass(frozen=True)
class News(Reply):
    articles: tuple[Article, ...] = field(default_factory=tuple)
    kind: ClassVar[str] = "news"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "articles": [asdict(a) for a in self.articles]}


@dataclass(frozen=True)
class TransferToHuman(Reply):
    """transfer_customer_service: the conversation goes to a human agent.

    ``note`` says why (e.g. which flow and step gave up) for the agents: it is kept in the
    user's history and the log; WeChat's passive transfer reply has no room for text."""

    note: str = ""
    kind: ClassVar[str] = "transfer"


@dataclass(frozen=True)
class Withheld(Reply):
    """No answer to this delivery: the edge leaves it unanswered (HTTP 503) so that WeChat
    delivers the message again. Never stored under a dedup key."""

    kind: ClassVar[str] = "withheld"


_KINDS: dict[str, type[Reply]] = {
    cls.kind: cls for cls in (Silent, Text, Image, Voice, Video, Music, News, TransferToHuman)
}


def reply_from_dict(data: dict[str, Any]) -> Reply:
    """Rebuild a reply stored by ``Reply.to_dict``."""
    data = dict(data)
    cls = _KINDS[data.pop("kind")]
    if cls is News:
        return News(articles=tuple(Article(**a) for a in data.get("articles", [])))
    return cls(**data)
