"""The bot's message vocabulary, shared by the protocol edge, the engine and the services:
what arrives (``Inbound``) and what the bot answers (the ``Reply`` types)."""

from wxbot.messages.inbound import Inbound
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
    reply_from_dict,
)

__all__ = [
    "Article",
    "Image",
    "Inbound",
    "Music",
    "News",
    "Reply",
    "Silent",
    "Text",
    "TransferToHuman",
    "Video",
    "Voice",
    "reply_from_dict",
]
