"""The engine's view of one inbound WeChat message: plain data, no XML."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Inbound:
    """One message or event from a user, already verified and decrypted by the protocol edge.

    ``kind`` is the WeChat MsgType (``text``, ``image``, ``voice``, ``video``, ``shortvideo``,
    ``location``, ``link``, ``event``) or ``unknown``. For events, ``event`` is the lower-case
    Event (``subscribe``, ``unsubscribe``, ``scan``, ``location``, ``click``, ``view``, ...).
    ``text`` is what the user "said": Content for text, Recognition for voice (often empty),
    the title for links.
    """

    openid: str
    kind: str
    dedup_key: str
    text: str = ""
    event: str = ""
    event_key: str = ""
    latitude: float | None = None
    longitude: float | None = None
    label: str = ""
    media_id: str = ""
    url: str = ""
    msg_id: str = ""
    create_time: int = 0
    account: str = ""

    @property
    def is_event(self) -> bool:
        return self.kind == "event"
