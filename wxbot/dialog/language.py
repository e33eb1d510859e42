"""The user's reply language: read along with the context lock, detected from what they
write, set with 「语言 xx」 / 「language xx」, kept in ``user_languages`` (outlives the context).

Policy: an explicit choice always wins. Otherwise the first message with letters sets the
language, and only a *strong* detection (one script clearly dominating a message of a few
words) changes it later, so 「OK」 from a Thai user does not flip it; never an answer to a step
that waits for one (a city, a song, an order number: names, typed in whatever script they are
written in); and a switch to a language whose script names and brands borrow (Latin letters,
katakana; kanji from a Japanese user) takes a word of a sentence too (``switches``). Writing costs one statement, only when the language changes (a new
user's first language costs none: it rides with the statement creating their context).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, exists, insert, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql
from wxbot.dialog import kinds
from wxbot.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGE_NAMES,
    LANGUAGES,
    N_,
    Detection,
    detect,
    translate,
)
from wxbot.messages.inbound import Inbound
from wxbot.models import UserLanguage

languages = UserLanguage.__table__

LANGUAGE_COLUMN = "user_language"
EXPLICIT_COLUMN = "user_language_explicit"

SET = N_("好的，以后我用中文回复你。")
AUTO = N_("好的，以后我会按你发消息所用的语言回复。")
CHOICES = N_(
    "可选的语言：{choices}。发送「语言 en」这样的消息即可切换，「语言 auto」恢复自动识别。"
)

COMMAND_WORDS = ("语言", "語言", "language", "lang", "言語", "ภาษา", "wika")
_ALIASES = {
    "zh": "zh", "cn": "zh", "中文": "zh", "汉语": "zh", "chinese": "zh", "简体中文": "zh",
    "en": "en", "english": "en", "英文": "en", "英语": "en",
    "th": "th", "thai": "th", "ไทย": "th", "泰语": "th", "泰文": "th",
    "tl": "tl", "fil": "tl", "tagalog": "tl", "filipino": "tl", "他加禄语": "tl",
    "ja": "ja", "jp": "ja", "japanese": "ja", "日本語": "ja", "日语": "ja", "日文": "ja",
    "auto": "auto", "自动": "auto",
}  # fmt: skip
_COMMAND = re.compile(
    r"^(?:" + "|".join(map(re.escape, COMMAND_WORDS)) + r")(?:[\s:：=]+(\S*))?$", re.IGNORECASE
)


def lock_columns() -> list[Any]:
    """Scalar subqueries that ride along with the context lock (no extra round trip)."""
    openid = bindparam("openid")
    return [
        select(languages.c.language)
        .where(languages.c.openid == openid)
        .scalar_subquery()
        .label(LANGUAGE_COLUMN),
        select(languages.c.explicit)
        .where(languages.c.openid == openid)
        .scalar_subquery()
        .label(EXPLICIT_COLUMN),
    ]


def first_language_statement(engine: Engine) -> Any:
    """Store a language unless the user has one (parameters ``openid``, ``language``,
    ``now``). The engine sends it with the statement that creates a new user's context, with
    the language ``detected`` in their first message: what ``resolve`` would write for it,
    without a statement of its own; a language stored earlier stays (and ``resolve`` then
    judges the message against it, as for any user)."""
    values = {
        "openid": bindparam("openid"),
        "language": bindparam("language"),
        "explicit": False,
        "updated_at": bindparam("now"),
    }
    if is_mysql(engine):
        stmt = mysql_insert(languages).values(values)
        return stmt.on_duplicate_key_update(language=languages.c.language)
    return sqlite_insert(languages).values(values).on_conflict_do_nothing()


def known_statement() -> Any:
    """Whether the user has a language stored (parameter ``openid``): one row, 1 or 0. Every
    user who ever wrote words has one, and it outlives their context (evicted after its
    expiry), so a context created for them is no new user; unsubscribing deletes it."""
    return select(exists().where(languages.c.openid == bindparam("openid")))


def parse_command(text: str) -> str | None:
    """「语言 en」 → "en", 「language auto」 → "auto", 「语言」 or 「语言 xx」 → "" (show the
    choices); None when the message is not a language command."""
    match = _COMMAND.match(unicodedata.normalize("NFKC", text).strip().rstrip("。.!！"))
    if match is None:
        return None
    return _ALIASES.get((match.group(1) or "").lower(), "")


def detected(msg: Inbound) -> Detection | None:
    """The language a user's message is written in (None: an event, no letters, or no words
    of the user's own: a sticker code 「/:rose」 or 「[Smile]」, a shared link's title)."""
    words = kinds.typed_text(msg)
    return detect(words) if words else None


def guess(msg: Inbound, default: str = DEFAULT_LANGUAGE) -> str:
    """The language of one message alone (when nothing is stored, or the database failed)."""
    found = detected(msg)
    return found.language if found else default


def stored(conn: Connection, openid: str) -> tuple[str | None, bool]:
    row = conn.execute(
        select(languages.c.language, languages.c.explicit).where(languages.c.openid == openid)
    ).first()
    return (row.language, bool(row.explicit)) if row else (None, False)


def resolve(
    conn: Connection,
    msg: Inbound,
    extras: dict[str, Any],
    now: float,
    default: str = DEFAULT_LANGUAGE,
    waiting: bool = False,
) -> str:
    """The language to answer ``msg`` in, updating the stored one when the message says so.
    ``extras`` are the lock statement's extra columns (see lock_columns); ``waiting``: the
    message answers a step that asked for something (its state is not WAIT_QUERY)."""
    current = extras.get(LANGUAGE_COLUMN)
    if current is not None and extras.get(EXPLICIT_COLUMN):
        return current
    found = detected(msg)
    if found is None or found.language == current:
        return current or default
    if current is None or (not waiting and switches(found, current)):
        save(conn, msg.openid, found.language, explicit=False, now=now, exists=current is not None)
        extras[LANGUAGE_COLUMN] = found.language  # the row exists now
        return found.language
    return current


def switches(found: Detection, current: str) -> bool:
    """Does ``found`` change a user's language from ``current``? A strong detection does; one
    of English, Tagalog or Japanese, or of Chinese for a Japanese user, only with a word of a
    sentence: 「iPhone 15 Pro Max」, 「New York City」 or 「アトランティス」 from a Chinese user and
    「会員登録」 or 「天気 朝阳」 from a Japanese one are names, and a Chinese user's noun-only
    question (「营业时间」 after a first 「hi」) still brings them back to Chinese."""
    if not found.strong:
        return False
    if found.language in ("en", "tl", "ja") or (found.language == "zh" and current == "ja"):
        return found.sentence
    return True


def save(
    conn: Connection, openid: str, language: str, explicit: bool, now: float, exists: bool
) -> None:
    values = {"language": language, "explicit": explicit, "updated_at": now}
    if exists:
        conn.execute(update(languages).where(languages.c.openid == openid).values(**values))
    else:
        conn.execute(insert(languages).values(openid=openid, **values))


def set_explicit(
    conn: Connection, openid: str, choice: str, extras: dict[str, Any], now: float, fallback: str
) -> tuple[str, str]:
    """Apply 「语言 xx」; returns (the language to answer in, the confirmation text)."""
    exists = extras.get(LANGUAGE_COLUMN) is not None
    if choice == "auto":
        save(conn, openid, fallback, explicit=False, now=now, exists=exists)
        return fallback, translate(AUTO, fallback)
    save(conn, openid, choice, explicit=True, now=now, exists=exists)
    return choice, translate(SET, choice)


def choices_text(language: str) -> str:
    separator = "、" if language in ("zh", "ja") else ", "
    choices = separator.join(f"{code} {LANGUAGE_NAMES[code]}" for code in LANGUAGES)
    return translate(CHOICES, language, choices=choices)


def forget_user(conn: Connection, openid: str) -> None:
    conn.execute(delete(languages).where(languages.c.openid == openid))
