"""Typed SQLAlchemy models shared by the whole app.

Timestamps are epoch seconds (DOUBLE) so the engine's clock can be replaced in tests and
comparisons stay cheap. Strings have explicit lengths for MySQL; MySQL tables are utf8mb4.
JSON data is stored as TEXT holding JSON (portable, and we never query inside it); columns
that grow with a conversation are MEDIUMTEXT on MySQL (LongText), whose TEXT stops at 64 KB.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Double, Index, Integer, String, Text
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

OPENID_LEN = 64
STATE_LEN = 32
# A history window of 50 rounds of long messages is over 100 KB: more than MySQL's TEXT holds
# (the save then fails, and so does every later message of that user). MEDIUMTEXT: 16 MB.
LongText = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")


class Base(DeclarativeBase):
    pass


class Context(Base):
    """One user's conversation context: the row every message of that user locks."""

    __tablename__ = "contexts"

    openid: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    state: Mapped[str] = mapped_column(String(STATE_LEN), default="WAIT_QUERY")
    slots: Mapped[str] = mapped_column(LongText, default="{}")  # JSON object
    history: Mapped[str] = mapped_column(LongText, default="[]")  # JSON list of [role, text, ts]
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class SeenMessage(Base):
    """A processed message's dedup key and the reply it got, so WeChat's retries (which may
    reach any container) get the identical reply and change nothing."""

    __tablename__ = "seen_messages"

    dedup_key: Mapped[str] = mapped_column(String(191), primary_key=True)
    openid: Mapped[str] = mapped_column(String(OPENID_LEN))
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON of Reply.to_dict
    # done | pending | late | to_push (wxbot/dialog/context.py)
    status: Mapped[str] = mapped_column(String(16), default="done")
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # deliveries seen (WeChat retries)
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        # By status first: the slow work still unfinished long after it started (a few rows)
        # is found without reading the day's records; pruning by age reads each status's range.
        Index("ix_seen_messages_status_created_at", "status", "created_at"),
        Index("ix_seen_messages_openid", "openid"),
    )


class UserLanguage(Base):
    """The language a user is answered in. Kept apart from ``contexts`` on purpose: a context
    expires and is evicted after WXBOT_SESSION_TTL, the language must not (a user who said
    「language en」 yesterday still reads English). Deleted with everything else on unsubscribe.
    """

    __tablename__ = "user_languages"

    openid: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    explicit: Mapped[bool] = mapped_column(Boolean, default=False)  # set by 「语言 xx」
    updated_at: Mapped[float] = mapped_column(Double)
