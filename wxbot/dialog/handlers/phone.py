"""Phone binding with an SMS code: 「绑定手机」 → WAIT_PHONE_NUMBER (a mainland mobile number) →
a 6-digit code by SMS → WAIT_PHONE_CODE (5 minutes valid, 3 wrong tries end the flow, 「重发」
at most once a minute) → the verified number is stored for the user.

Only an HMAC of the code is stored (see wxbot.services.models.SmsCode). Sending the SMS is a
Deferred: the code row is written in the message's transaction, the gateway is called
outside it, and a failed send makes 「重发」 available at once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from wxbot.dialog.flow import WAIT_QUERY, Deferred, Handler, Outcome, Router, Turn
from wxbot.messages.replies import Silent, Text
from wxbot.services.models import PhoneBinding, SmsCode

WAIT_PHONE_NUMBER = "WAIT_PHONE_NUMBER"
WAIT_PHONE_CODE = "WAIT_PHONE_CODE"

CODE_TTL = 300.0
RESEND_AFTER = 60.0
MAX_TRIES = 3

ASK_NUMBER = "请输入要绑定的手机号（中国大陆 11 位），发「取消」退出。"
ALREADY = "你已绑定 {phone}。如需更换，"
BAD_NUMBER = "手机号格式不对，请输入 11 位中国大陆手机号（如 13800138000），发「取消」退出。"
SENT = "验证码已发送到 {phone}，5 分钟内有效，请回复 6 位验证码。没收到可发「重发」。"
SEND_FAILED = "短信发送失败，请发「重发」再试一次，或发「取消」退出。"
NOT_SENT = "短信服务暂时不可用，请稍后再试。"
ENTER_CODE = "请回复短信中的 6 位数字验证码；没收到可发「重发」，发「取消」退出。"
WRONG = "验证码不正确，还可以再试 {left} 次。"
TOO_MANY = "验证码错误次数过多，本次绑定已结束。如需绑定请重新发送「绑定手机」。"
EXPIRED = "验证码已过期，请发「重发」获取新的验证码。"
WAIT_RESEND = "验证码刚刚发出，请 {seconds} 秒后再发「重发」。"
LOST = "验证码已失效，请重新输入要绑定的手机号。"
BOUND = "绑定成功！你的手机号 {phone} 已完成验证。"

START_WORDS = ("绑定手机号", "绑定手机", "换绑手机", "bind phone")
RESEND_WORDS = frozenset({"重发", "重新发送", "重发验证码", "resend"})
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_CODE = re.compile(r"^\d{6}$")
_PUNCT = " \t\r\n。.!！?？,，、~～"

_bindings = PhoneBinding.__table__
_codes = SmsCode.__table__


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_PUNCT)


def normalise_phone(text: str) -> str | None:
    """「+86 138-0013-8000」 → 「13800138000」; None unless it is a mainland mobile number."""
    digits = re.sub(r"[\s\-()（）]", "", _normal(text))
    digits = re.sub(r"^(?:\+?86)(?=1\d{10}$)", "", digits)
    return digits if _MOBILE.match(digits) else None


def mask(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def code_hash(salt: str, openid: str, phone: str, code: str) -> str:
    message = f"{openid}|{phone}|{code}".encode()
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()


def bound_phone(conn: Connection, openid: str) -> str | None:
    """The user's verified number, if any."""
    return conn.execute(
        select(_bindings.c.phone).where(_bindings.c.openid == openid)
    ).scalar_one_or_none()


def _fresh_code(conn: Connection, openid: str, phone: str, now: float, resend: bool) -> str:
    """A new code for the user's pending binding; only its salted HMAC is written."""
    code = f"{secrets.randbelow(1_000_000):06d}"
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
        conn.execute(delete(_codes).where(_codes.c.openid == openid))
        conn.execute(insert(_codes).values(openid=openid, tries=0, sends=1, **values))
    return code


def _send(turn: Turn, phone: str, code: str) -> Outcome:
    sms = getattr(turn.deps.services, "sms", None)
    if sms is None:
        return Outcome(Text(NOT_SENT), WAIT_QUERY)
    openid = turn.msg.openid

    def resume(turn: Turn, result: Any) -> Outcome:
        slots = {"phone": phone}
        if isinstance(result, Exception):
            # let 「重发」 through at once: the user never got this code
            turn.db.execute(update(_codes).where(_codes.c.openid == openid).values(sent_at=0.0))
            return Outcome(Text(SEND_FAILED), WAIT_PHONE_CODE, slots=slots, counts=False)
        return Outcome(
            Text(SENT.format(phone=mask(phone))), WAIT_PHONE_CODE, slots=slots, counts=False
        )

    return Outcome(
        None,
        WAIT_PHONE_CODE,
        slots={"phone": phone},
        deferred=Deferred(work=lambda: sms.send(phone, code), resume=resume),
    )


def _start_with(turn: Turn, phone: str) -> Outcome:
    code = _fresh_code(turn.db, turn.msg.openid, phone, turn.now, resend=False)
    return _send(turn, phone, code)


def route(turn: Turn) -> Outcome | None:
    if turn.msg.is_event:
        return None
    text = _normal(turn.text)
    word = next((w for w in START_WORDS if text.lower().startswith(w)), None)
    if word is None:
        return None
    rest = text[len(word) :].strip(_PUNCT + ":：")
    phone = normalise_phone(rest) if rest else None
    if phone is not None:  # 「绑定手机 13800138000」 in one go
        return _start_with(turn, phone)
    current = bound_phone(turn.db, turn.msg.openid)
    ask = (ALREADY.format(phone=mask(current)) if current else "") + ASK_NUMBER
    return Outcome(Text(ask), WAIT_PHONE_NUMBER)


def wait_number(turn: Turn) -> Outcome:
    if turn.msg.is_event:
        return Outcome(Silent(), WAIT_PHONE_NUMBER, slots=turn.slots, counts=False)
    phone = normalise_phone(turn.text)
    if phone is None:
        return Outcome(Text(BAD_NUMBER), WAIT_PHONE_NUMBER, failed=True)
    return _start_with(turn, phone)


def wait_code(turn: Turn) -> Outcome:
    if turn.msg.is_event:
        return Outcome(Silent(), WAIT_PHONE_CODE, slots=turn.slots, counts=False)
    openid, now, conn = turn.msg.openid, turn.now, turn.db
    row = conn.execute(select(_codes).where(_codes.c.openid == openid)).first()
    if row is None:
        return Outcome(Text(LOST), WAIT_PHONE_NUMBER)
    text = _normal(turn.text)
    if text.lower() in RESEND_WORDS:
        wait = row.sent_at + RESEND_AFTER - now
        if wait > 0:
            reply = WAIT_RESEND.format(seconds=math.ceil(wait))
            return Outcome(Text(reply), WAIT_PHONE_CODE, slots=turn.slots)
        return _send(turn, row.phone, _fresh_code(conn, openid, row.phone, now, resend=True))
    if not _CODE.match(text):
        return Outcome(Text(ENTER_CODE), WAIT_PHONE_CODE, slots=turn.slots, failed=True)
    if now > row.expires_at:
        return Outcome(Text(EXPIRED), WAIT_PHONE_CODE, slots=turn.slots)
    if hmac.compare_digest(code_hash(row.salt, openid, row.phone, text), row.code_hash):
        conn.execute(delete(_codes).where(_codes.c.openid == openid))
        conn.execute(delete(_bindings).where(_bindings.c.openid == openid))
        conn.execute(insert(_bindings).values(openid=openid, phone=row.phone, verified_at=now))
        return Outcome(Text(BOUND.format(phone=mask(row.phone))), WAIT_QUERY)
    tries = row.tries + 1
    if tries >= MAX_TRIES:
        conn.execute(delete(_codes).where(_codes.c.openid == openid))
        return Outcome(Text(TOO_MANY), WAIT_QUERY)
    conn.execute(update(_codes).where(_codes.c.openid == openid).values(tries=tries))
    left = MAX_TRIES - tries
    return Outcome(Text(WRONG.format(left=left)), WAIT_PHONE_CODE, slots=turn.slots, failed=True)


def forget_user(conn: Connection, openid: str) -> None:
    conn.execute(delete(_codes).where(_codes.c.openid == openid))
    conn.execute(delete(_bindings).where(_bindings.c.openid == openid))


STATES: dict[str, Handler] = {WAIT_PHONE_NUMBER: wait_number, WAIT_PHONE_CODE: wait_code}
ROUTERS: list[Router] = [route]
