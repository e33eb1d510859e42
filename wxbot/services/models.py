"""Tables of the services family: phone bindings, SMS codes (hashes only), the shared token."""

from __future__ import annotations

from sqlalchemy import Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import OPENID_LEN, Base

PHONE_LEN = 20


class PhoneBinding(Base):
    """A user's verified mobile number (one per OpenID; binding again replaces it)."""

    __tablename__ = "phone_bindings"

    openid: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    phone: Mapped[str] = mapped_column(String(PHONE_LEN))
    verified_at: Mapped[float] = mapped_column(Double)


class SmsCode(Base):
    """The one pending verification code of a user.

    Only ``HMAC-SHA256(salt, openid|phone|code)`` is kept, with a fresh random salt per code,
    so a leaked table does not hand out live codes and equal codes do not look equal.
    ``tries`` counts wrong guesses for the whole binding attempt (a resend does not reset it,
    or resending would buy unlimited guesses).
    """

    __tablename__ = "sms_codes"

    openid: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    phone: Mapped[str] = mapped_column(String(PHONE_LEN))
    code_hash: Mapped[str] = mapped_column(String(64))  # hex
    salt: Mapped[str] = mapped_column(String(32))  # hex of 16 random bytes
    sent_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=1)


class SmsQuota(Base):
    """How many codes went to one number, or to one user, today, and when the last two went
    (wxbot.flows.phone's limits on texting codes: SMS bombing is texting a victim's number).

    One row per subject, not per day: a claim resets ``sends`` when ``day`` has moved on, so
    the row that holds the day's count also holds the resend interval across midnight. Rows
    of an earlier day whose interval is over decide nothing and are pruned as sends come.
    The user's row outlives 「取消」, a code's end and an unsubscribe (a fresh start must not
    buy a fresh budget); it goes with its day.
    """

    __tablename__ = "sms_quotas"
    __table_args__ = (Index("ix_sms_quotas_day", "day"),)

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # "openid" or "phone"
    subject: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    day: Mapped[int] = mapped_column(Integer)  # the operator's calendar day (an ordinal)
    sends: Mapped[int] = mapped_column(Integer)  # codes sent on ``day``
    sent_at: Mapped[float] = mapped_column(Double)  # the last send
    earlier_at: Mapped[float] = mapped_column(Double)  # the send before it (0: none known)


class WeChatToken(Base):
    """The access_token every container shares (WeChat invalidates old tokens when any
    process fetches a new one, so there must be exactly one fetcher at a time)."""

    __tablename__ = "wechat_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(String(512), default="")
    expires_at: Mapped[float] = mapped_column(Double, default=0.0)
    updated_at: Mapped[float] = mapped_column(Double, default=0.0)
    refreshes: Mapped[int] = mapped_column(Integer, default=0)  # fetches so far, for stats
