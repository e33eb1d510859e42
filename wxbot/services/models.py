"""Tables of the services family: phone bindings, SMS codes (hashes only), the shared token."""

from __future__ import annotations

from sqlalchemy import Double, Integer, String
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


class WeChatToken(Base):
    """The access_token every container shares (WeChat invalidates old tokens when any
    process fetches a new one, so there must be exactly one fetcher at a time)."""

    __tablename__ = "wechat_tokens"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    access_token: Mapped[str] = mapped_column(String(512), default="")
    expires_at: Mapped[float] = mapped_column(Double, default=0.0)
    updated_at: Mapped[float] = mapped_column(Double, default=0.0)
    refreshes: Mapped[int] = mapped_column(Integer, default=0)  # fetches so far, for stats
