"""What kind of thing a user sent, as far as the dialogue cares: words (typed, or spoken and
recognised), or something a step waiting for words cannot read (a picture, a voice message
WeChat could not recognise, a sticker, a file, a shared link, a location); and which events
the dialogue answers at all.

One place decides, so every waiting state treats them alike (see ``Dialogue.dispatch``): a
message without words never counts as a wrong answer, it is answered with what the step
still needs.
"""

from __future__ import annotations

import re
import unicodedata

from wxbot.messages.inbound import Inbound

# Why a message has no words to read (``non_text``)
VOICE = "voice"  # a voice message WeChat's speech recognition left empty (or switched off)
STICKER = "sticker"  # a sticker sent as text: 「/::)」, 「[Smile]」, 「[微笑]」, or emoji only
OTHER = "other"  # image, video, file, link, location, unknown types
BLANK = "blank"  # a text message of blanks only (WeChat delivers 「\t」 or 「 」): typed, but empty

# Events the dialogue answers. Every other one (LOCATION reports every 5 s, a template or mass
# message delivered, a menu link opened, customer-service sessions, future types) is answered
# with "success" and never reaches the user's context: the user did not say anything. A SCAN
# of a parametric QR code is answered when its scene means something to the bot, which only
# the dialogue table can tell (``Dialogue.answers_event``); else it is a tracking code.
ANSWERED_EVENTS = frozenset({"subscribe", "unsubscribe", "click"})

# WeChat's classic stickers arrive as codes (「/::)」, 「/:rose」, 「/:8-)」); newer ones as a name
# in brackets in the user's language (「[Smile]」, 「[微笑]」, 「[Facepalm]」). A bracketed number
# (「[2]」) is a pick from a numbered list, not a sticker.
_STICKER = re.compile(r"/:[^\s/]{1,10}|\[(?!\s*\d+\s*\])[^\[\]\r\n]{1,14}\]")
_EMOJI_JOINERS = frozenset({"\u200d", "\ufe0f", "\ufe0e", "\u20e3"})


def answers_event(msg: Inbound) -> bool:
    """Whether the dialogue looks at this event at all (a CLICK needs a key to mean anything)."""
    if msg.event == "click":
        return bool(msg.event_key.strip())
    return msg.event in ANSWERED_EVENTS


def is_emoji(ch: str) -> bool:
    # "So": pictographs and symbols; "Sk": skin-tone modifiers; joiners glue sequences together
    return ch in _EMOJI_JOINERS or unicodedata.category(ch) in ("So", "Sk")


def without_stickers(text: str) -> str:
    """``text`` without sticker codes (「好的[Smile]」 → 「好的」): what the user wrote in words."""
    return _STICKER.sub(" ", text)


def without_leading_emoji(text: str) -> str:
    """``text`` without the emoji and sticker codes it starts with (「🌤天气」 → 「天气」,
    「[Smile]点歌」 → 「点歌」): a task's word read as typed, as the engine's own words are."""
    rest = text.lstrip()
    while rest:
        sticker = _STICKER.match(rest)
        if sticker is not None:
            rest = rest[sticker.end() :].lstrip()
        elif is_emoji(rest[0]):
            rest = rest[1:].lstrip()
        else:
            break
    return rest


def is_sticker(text: str) -> bool:
    """A message of stickers and emoji only, with no words: 「/::)」, 「[Smile][Smile]」, 「👍」."""
    rest = without_stickers(text)
    if rest.strip() == text.strip():  # no sticker code: emoji alone may still make a sticker
        return bool(text.strip()) and all(ch.isspace() or is_emoji(ch) for ch in text)
    return all(ch.isspace() or is_emoji(ch) for ch in rest)


def non_text(msg: Inbound) -> str | None:
    """Why ``msg`` has no words a step could read (VOICE, STICKER, BLANK, OTHER), or None when it has:
    a text message, or a voice message with WeChat's recognition (read exactly as if typed)."""
    if msg.kind in ("text", "voice") and msg.text.strip():
        return STICKER if is_sticker(msg.text) else None
    if msg.kind == "text":  # a text of blanks: the user typed, and sent before writing
        return BLANK
    return VOICE if msg.kind == "voice" else OTHER


def typed_text(msg: Inbound) -> str:
    """What the user wrote or said in words ("" for anything else: a link's title, an event's
    key or a sticker code are not the user's words, e.g. for detecting their language)."""
    if msg.is_event or non_text(msg) is not None:
        return ""
    return without_stickers(msg.text).strip()
