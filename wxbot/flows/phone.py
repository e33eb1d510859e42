"""Mainland mobile numbers, SMS verification codes (only a salted HMAC is stored) and the
user's verified number: what the ``phone`` and ``sms_code`` slot types and the ``bind_phone``
action need from the database."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata

from sqlalchemy import Connection, delete, insert, select, update

from wxbot.services.models import PhoneBinding, SmsCode

CODE_TTL = 300.0
RESEND_AFTER = 60.0
MAX_TRIES = 3  # wrong codes per binding attempt (a resend does not reset it)
CODE_LENGTH = 6

_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# 「13800138000」, 「138 0013 8000」, 「+86 138-0013-8000」 inside a sentence
_MOBILE_IN_TEXT = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d(?:[ -]?\d{4}){2})(?![\d])")
_PUNCT = " \t\r\n。.!！?？,，、~～"

_bindings = PhoneBinding.__table__
_codes = SmsCode.__table__


def normalise_phone(text: str) -> str | None:
    """「+86 138-0013-8000」 → 「13800138000」; None unless it is a mainland mobile number."""
    digits = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", text).strip(_PUNCT))
    digits = re.sub(r"^(?:\+?86)(?=1\d{10}$)", "", digits)
    return digits if _MOBILE.match(digits) else None


def find_phone(text: str) -> str | None:
    """A mobile number written inside a sentence: 「把手机号改成13800138000」."""
    text = unicodedata.normalize("NFKC", text)
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
