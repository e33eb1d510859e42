"""Knowledge-base tables (on the shared ``Base``; migration 0002_knowledge creates them).

- ``kb_entries``: one answer, where it came from, who taught it, a hit counter.
- ``kb_questions``: the questions (aliases) of an entry; ``qkey`` (sha1 of the normalised
  question) is unique, so one question belongs to at most one entry and imports upsert by it.
- ``kb_unanswered``: questions the bot could not answer, counted, for admins to teach next.
- ``kb_meta``: one row (id=1) whose ``version`` every write bumps — the per-request freshness
  check of every process reads only this row.
- ``kb_changes``: which entries each version touched, so a process catches up incrementally;
  ``entry_id`` NULL means "too many to list: reload everything".
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import OPENID_LEN, Base

KEY_LEN = 40  # sha1 hex
SOURCE_LEN = 16
SOURCE_REF_LEN = 255
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 10_000


class KbEntry(Base):
    __tablename__ = "kb_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(SOURCE_LEN))  # chat | api | import
    source_ref: Mapped[str | None] = mapped_column(String(SOURCE_REF_LEN), nullable=True)
    taught_by: Mapped[str | None] = mapped_column(String(OPENID_LEN), nullable=True, index=True)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class KbQuestion(Base):
    __tablename__ = "kb_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    qkey: Mapped[str] = mapped_column(String(KEY_LEN))
    position: Mapped[int] = mapped_column(Integer, default=0)  # 0 = the main question

    __table_args__ = (Index("uq_kb_questions_qkey", "qkey", unique=True),)


class KbUnanswered(Base):
    __tablename__ = "kb_unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    qkey: Mapped[str] = mapped_column(String(KEY_LEN))
    question: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_asked_at: Mapped[float] = mapped_column(Double)
    last_asked_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        Index("uq_kb_unanswered_qkey", "qkey", unique=True),
        Index("ix_kb_unanswered_count", "count"),
    )


class KbMeta(Base):
    __tablename__ = "kb_meta"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[float] = mapped_column(Double, default=0.0)


class KbChange(Base):
    __tablename__ = "kb_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    changed_at: Mapped[float] = mapped_column(Double)
