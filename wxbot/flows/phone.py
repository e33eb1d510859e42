"""Mainland mobile numbers, SMS verification codes (only a salted HMAC is stored), the limits
on texting them, and the user's verified number: what the ``phone`` and ``sms_code`` slot
types and the ``bind_phone`` action need from the database."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, delete, insert, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql
from wxbot.i18n.numerals import spoken_digits
from wxbot.models import Context
from wxbot.services.models import PhoneBinding, SmsCode, SmsQuota

CODE_TTL = 300.0
RESEND_AFTER = 60.0
MAX_TRIES = 3  # wrong codes per binding attempt (a resend does not reset it)
CODE_LENGTH = 6

# Limits on texting codes, counted in the database (sms_quotas) so that every process and
# container shares them. Without them a loop of 「绑定手机 <someone's number>」 and three wrong
# codes texts a victim at our cost (SMS bombing). A day is the operator's (WXBOT_TIMEZONE).
USER_DAILY = 10  # codes one WeChat user may have texted per day, to any numbers (>= 1)
NUMBER_DAILY = 5  # codes one number may receive per day, from all users together (>= 1)
# Codes one number may receive within RESEND_AFTER from all users together (1 or 2). Two: two
# accounts linking one shared number at the same moment both get their code, a third waits;
# 1 would be a strict interval. One user gets at most one code per RESEND_AFTER, always.
NUMBER_BURST = 2
USER, NUMBER = "openid", "phone"  # sms_quotas.scope

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# 「13800138000」, 「138 0013 8000」, 「+86 138-0013-8000」 inside a sentence
_MOBILE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d(?:[ -]?\d{4}){2})(?![\d])")
_PUNCT = " \t\r\n。.!！?？,，、~～"

_bindings = PhoneBinding.__table__
_codes = SmsCode.__table__
_quotas = SmsQuota.__table__
_contexts = Context.__table__


def normalise_phone(text: str) -> str | None:
    """「+86 138-0013-8000」 → 「13800138000」; None unless it is a mainland mobile number. Read
    as spoken too (a voice message's recognition): 「幺三八，零零幺三，八零零零。」."""
    text = spoken_digits(unicodedata.normalize("NFKC", text)).strip(_PUNCT)
    digits = re.sub(r"[\s\-()（）,，、]", "", text)
    digits = re.sub(r"^(?:\+?86)(?=1\d{10}$)", "", digits)
    return digits if _MOBILE.match(digits) else None


def find_phone(text: str) -> str | None:
    """A mobile number written (or said) inside a sentence: 「把手机号改成13800138000」."""
    text = spoken_digits(unicodedata.normalize("NFKC", text))
    found = {re.sub(r"[ -]", "", m.group(1)) for m in _MOBILE_IN_TEXT.finditer(text)}
    return found.pop() if len(found) == 1 else None


def mask(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 7 else phone


def code_hash(salt: str, openid: str, phone: str, code: str) -> str:
    message = f"{openid}|{phone}|{code}".encode()
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()


def bound_phone(conn: Connection, openid: str) -> str | None:
    """The user's verified number, if any."""
    return conn.execute(
        select(_bindings.c.phone).where(_bindings.c.openid == openid)
    ).scalar_one_or_none()


def bind(conn: Connection, openid: str, phone: str, now: float) -> None:
    conn.execute(delete(_bindings).where(_bindings.c.openid == openid))
    conn.execute(insert(_bindings).values(openid=openid, phone=phone, verified_at=now))


def pending_code(conn: Connection, openid: str):  # type: ignore[no-untyped-def]
    return conn.execute(select(_codes).where(_codes.c.openid == openid)).first()


def fresh_code(conn: Connection, openid: str, phone: str, now: float, resend: bool) -> str:
    """A new code for the user's pending verification; only its salted HMAC is written."""
    code = f"{secrets.randbelow(10**CODE_LENGTH):0{CODE_LENGTH}d}"
    salt = secrets.token_hex(16)
    values = {
        "phone": phone,
        "code_hash": code_hash(salt, openid, phone, code),
        "salt": salt,
        "sent_at": now,
        "expires_at": now + CODE_TTL,
    }
    if resend:  # wrong tries carry over: a resend must not buy more guesses
        conn.execute(
            update(_codes)
            .where(_codes.c.openid == openid)
            .values(**values, sends=_codes.c.sends + 1)
        )
    else:
        drop_code(conn, openid)
        conn.execute(insert(_codes).values(openid=openid, tries=0, sends=1, **values))
    return code


def hold_code(conn: Connection, openid: str, phone: str, sent_at: float) -> None:
    """A pending verification for ``phone`` whose code a limit held back: 「重发」 asks again
    once ``sent_at + RESEND_AFTER`` is past; a code typed meanwhile is told it expired."""
    drop_code(conn, openid)
    conn.execute(
        insert(_codes).values(
            openid=openid,
            phone=phone,
            code_hash="",
            salt="",
            sent_at=sent_at,
            expires_at=0.0,
            tries=0,
            sends=0,
        )
    )


def readdress_code(conn: Connection, openid: str, phone: str) -> None:
    """The pending verification is now for ``phone``: no code matches until one is sent."""
    conn.execute(update(_codes).where(_codes.c.openid == openid).values(phone=phone, code_hash=""))


def allow_resend_now(conn: Connection, openid: str) -> None:
    """The SMS never left: let 「重发」 through at once."""
    conn.execute(update(_codes).where(_codes.c.openid == openid).values(sent_at=0.0))


def count_wrong(conn: Connection, openid: str, tries: int) -> None:
    conn.execute(update(_codes).where(_codes.c.openid == openid).values(tries=tries))


def drop_code(conn: Connection, openid: str) -> None:
    conn.execute(delete(_codes).where(_codes.c.openid == openid))


def forget_user(conn: Connection, openid: str) -> None:
    drop_code(conn, openid)
    conn.execute(delete(_bindings).where(_bindings.c.openid == openid))


def prune_codes(conn: Connection, now: float, limit: int) -> int:
    """Delete up to ``limit`` pending verifications that ended without a right code (「取消」,
    a step that timed out, a user who walked away): the code expired, its resend interval is
    over and its user has no live context, so no step can ask for it again. Each held the
    number typed, for ever (until the user bound a number or unsubscribed). How many went.

    The keys are picked first; the delete checks only this table's columns again (a user
    who starts over meanwhile has a new code, sent now), so it waits on no user's context."""
    c = _codes.c
    over = and_(c.expires_at <= now, c.sent_at <= now - RESEND_AFTER)
    live = select(_contexts.c.openid).where(
        _contexts.c.openid == c.openid, _contexts.c.expires_at > now
    )
    keys = conn.execute(select(c.openid).where(over, ~live.exists()).limit(limit)).scalars().all()
    if not keys:
        return 0
    return int(conn.execute(delete(_codes).where(c.openid.in_(keys), over)).rowcount)


# --- limits on texting codes ----------------------------------------------------------------
#
# Atomic without a lock of its own: whether a send may go is decided by one conditional UPDATE
# of the subject's row (its WHERE holds the limits), so two users texting one number at once
# are serialised by the row lock and the second sees the first's count (MySQL and MariaDB run
# at READ COMMITTED: the UPDATE reads the newest committed row; SQLite has one writer). A
# missing row is first created empty (an upsert that changes nothing if the row exists), and
# the same UPDATE decides. Every transaction takes the user's row, then the number's (and
# gives a failed send back in that order): no deadlock among them. The clean-up deletes one
# row per transaction, so it never waits while holding another.


@dataclass(frozen=True)
class _Limit:
    scope: str
    daily: int
    burst: int  # sends within RESEND_AFTER: 1 or 2 (a row remembers its last two sends)


_LIMITS = {USER: _Limit(USER, USER_DAILY, 1), NUMBER: _Limit(NUMBER, NUMBER_DAILY, NUMBER_BURST)}


@dataclass(frozen=True)
class Claim:
    """One send counted against both limits; ``release`` gives it back."""

    openid: str
    phone: str
    day: int
    at: float


@dataclass(frozen=True)
class Refusal:
    """Which limit held a send back: the day's cap (``daily``), or an interval still
    ``wait`` seconds long."""

    scope: str  # USER or NUMBER
    daily: bool
    wait: float = 0.0


def day_number(now: float, timezone: str) -> int:
    """The calendar day of ``now`` where the operator is (caps reset at its midnight)."""
    return datetime.fromtimestamp(now, ZoneInfo(timezone)).date().toordinal()


def claim_send(conn: Connection, openid: str, phone: str, now: float, day: int) -> Claim | Refusal:
    """Count one code to ``phone`` for ``openid`` (in the caller's transaction, which sends
    it only once committed), or say which limit refuses it; a refused send counts nowhere."""
    refused = _claim(conn, _LIMITS[USER], openid, now, day)
    if refused is not None:
        return refused
    refused = _claim(conn, _LIMITS[NUMBER], phone, now, day)
    if refused is not None:
        _release(conn, USER, openid, day, now)
        return refused
    return Claim(openid, phone, day, now)


def release(conn: Connection, claim: Claim) -> None:
    """The SMS never left: it costs neither the day's budget nor the interval."""
    _release(conn, USER, claim.openid, claim.day, claim.at)
    _release(conn, NUMBER, claim.phone, claim.day, claim.at)


def code_verified(conn: Connection, openid: str) -> None:
    """The user typed the right code: their next one may go at once (binding another number
    straight after). The interval holds back codes nobody confirmed; the day's count stays."""
    conn.execute(update(_quotas).where(_subject(USER, openid)).values(sent_at=0.0))


def prune_one(conn: Connection, now: float, day: int) -> int:
    """Delete one row no limit needs any more (an earlier day's, its interval over). Run
    twice per send (each in its own transaction), it keeps the table at about the rows of
    the last day: a send adds at most two."""
    q = _quotas.c
    stale = and_(q.day < day, q.sent_at <= now - RESEND_AFTER)
    key = conn.execute(select(q.scope, q.subject).where(stale).limit(1)).first()
    if key is None:
        return 0
    gone = conn.execute(delete(_quotas).where(_subject(key.scope, key.subject), stale))
    return int(gone.rowcount)


def _subject(scope: str, subject: str):  # type: ignore[no-untyped-def]
    return and_(_quotas.c.scope == scope, _quotas.c.subject == subject)


def _claim(conn: Connection, limit: _Limit, subject: str, now: float, day: int) -> Refusal | None:
    if _take(conn, limit, subject, now, day):
        return None
    _ensure_row(conn, limit.scope, subject, day)  # the first send to it (or since a prune)
    if _take(conn, limit, subject, now, day):
        return None
    return _refusal(conn, limit, subject, now, day)


def _take(conn: Connection, limit: _Limit, subject: str, now: float, day: int) -> bool:
    """The conditional UPDATE that decides: it matches only while both limits allow."""
    q = _quotas.c
    gate = q.sent_at if limit.burst == 1 else q.earlier_at
    result = conn.execute(
        update(_quotas)
        .where(
            _subject(limit.scope, subject),
            gate <= now - RESEND_AFTER,
            or_(q.day != day, q.sends < limit.daily),
        )
        # MySQL assigns left to right, each seeing the ones before: read day and sent_at
        # before they change (SQLite reads the old row throughout, the same result)
        .ordered_values(
            (q.sends, case((q.day == day, q.sends + 1), else_=1)),
            (q.day, day),
            (q.earlier_at, q.sent_at),
            (q.sent_at, now),
        )
    )
    return result.rowcount == 1


def _ensure_row(conn: Connection, scope: str, subject: str, day: int) -> None:
    """A row that allows a send (no sends, none recent), unless the subject has one."""
    values = {"scope": scope, "subject": subject, "day": day, "sends": 0}
    values |= {"sent_at": 0.0, "earlier_at": 0.0}
    if is_mysql(conn):
        # ON DUPLICATE KEY, not IGNORE: it locks an existing row exclusively. IGNORE takes a
        # shared lock, and two of those each waiting to UPDATE the row would deadlock.
        stmt = mysql_insert(_quotas).values(values)
        stmt = stmt.on_duplicate_key_update(scope=stmt.inserted.scope)
    else:
        stmt = sqlite_insert(_quotas).values(values).on_conflict_do_nothing()
    conn.execute(stmt)


def _refusal(conn: Connection, limit: _Limit, subject: str, now: float, day: int) -> Refusal:
    row = conn.execute(select(_quotas).where(_subject(limit.scope, subject))).first()
    if row is not None and row.day == day and row.sends >= limit.daily:
        return Refusal(limit.scope, daily=True)
    gate = 0.0 if row is None else row.sent_at if limit.burst == 1 else row.earlier_at
    return Refusal(limit.scope, daily=False, wait=max(gate + RESEND_AFTER - now, 1.0))


def _release(conn: Connection, scope: str, subject: str, day: int, at: float) -> None:
    q = _quotas.c
    conn.execute(
        update(_quotas)
        .where(_subject(scope, subject), q.day == day, q.sends > 0)
        .values(sends=q.sends - 1)
    )
    # The interval goes back to the send before, unless another send was counted since (its
    # interval stands). The one before that is not kept: a number may get one code more
    # within the interval after a failed send (never more than the day's cap).
    conn.execute(
        update(_quotas)
        .where(_subject(scope, subject), q.sent_at == at)
        .ordered_values((q.sent_at, q.earlier_at), (q.earlier_at, 0.0))
    )
