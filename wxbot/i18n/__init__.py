"""Replies in the user's language: gettext catalogues (Babel .po files) and language detection.

Adopting it for a new reply is one import and a call::

    from wxbot.i18n import N_
    SORRY = N_("抱歉，暂时查不到。")        # mark the Chinese source text (pybabel extracts it)
    ...
    Text(turn.t(SORRY))                    # in a handler: the user's language
    translate(SORRY, "en")                 # anywhere else, with an explicit language

Chinese is the source language (the msgid); ``locales/<lang>/LC_MESSAGES/wxbot.po`` hold the
other four. A text without a translation falls back to Chinese, so nothing breaks while a
translator catches up (``tests/test_i18n.py`` lists what is missing).
"""

from wxbot.i18n.catalog import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    NP_,
    Message,
    Plural,
    has_translation,
    translate,
)
from wxbot.i18n.detect import Detection, detect

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "N_",
    "NP_",
    "Detection",
    "Message",
    "Plural",
    "detect",
    "has_translation",
    "translate",
]
