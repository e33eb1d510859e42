"""Knowledge-base tables (on the shared ``Base``; migration 0002_knowledge creates them).

- ``kb_entries``: one answer, where it came from, who taught it, a hit counter.
- ``kb_questions``: the questions (aliases) of an entry; ``qkey`` (sha1 of the normalised
  question) is unique, so one question belongs to at most one entry and imports upsert by it.
- ``kb_unanswered``: questions the bot could not answer, counted, for admins to teach next.
- ``kb_meta``: one row (id=1) whose ``version`` every write bumps — the per-request freshness
  check of every process reads only this row.
- ``kb_changes``: which entries each version touched, so a process catches up incrementally;
  ``entry_id`` NULL means "too many to list: reload everything".
- ``kb_synonyms``: word groups that mean the same thing (migration 0005 seeds the starter
  list); a change bumps the version with a NULL change row (every process re-indexes).
- ``kb_alias_votes``: a user picked entry ``entry_id`` from a did-you-mean list after asking
  ``question``; enough distinct users make that wording a learned similar question.
- ``kb_embeddings``: a question's vector from the optional embedding service, per model,
  keyed by the question's key so it survives the question being re-saved.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import OPENID_LEN, Base

KEY_LEN = 40  # sha1 hex
SOURCE_LEN = 16
SOURCE_REF_LEN = 255
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 10_000
LANGUAGE_LEN = 8
ORIGIN_LEN = 16
MODEL_LEN = 100
LANGUAGES = ("zh", "en", "th", "tl", "ja")
# Rows per IN (...) list and per executemany batch, in every query module of these tables.
CHUNK = 500


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
    # zh / en / th / tl / ja; NULL = any language (the matcher prefers the user's)
    language: Mapped[str | None] = mapped_column(String(LANGUAGE_LEN), nullable=True)


class KbQuestion(Base):
    __tablename__ = "kb_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    qkey: Mapped[str] = mapped_column(String(KEY_LEN))
    position: Mapped[int] = mapped_column(Integer, default=0)  # 0 = the main question
    # how it got there: "" (given by an admin, a file or chat), "learned" (did-you-mean picks),
    # "unanswered" (an admin attached an unanswered question)
    origin: Mapped[str] = mapped_column(String(ORIGIN_LEN), default="", server_default="")

    __table_args__ = (Index("uq_kb_questions_qkey", "qkey", unique=True),)


class KbUnanswered(Base):
    __tablename__ = "kb_unanswered"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    qkey: Mapped[str] = mapped_column(String(KEY_LEN))
    question: Mapped[str] = mapped_column(Text)
    count: Mapped[int] = mapped_column(Integer, default=1)
    first_asked_at: Mapped[float] = mapped_column(Double)
    last_asked_at: Mapped[float] = mapped_column(Double)

    # Both listing orders (most asked, most recent) read an index in order, and the
    # clean-up finds the questions not asked for WXBOT_UNANSWERED_DAYS by the second.
    __table_args__ = (
        Index("uq_kb_unanswered_qkey", "qkey", unique=True),
        Index("ix_kb_unanswered_count_last", "count", "last_asked_at"),
        Index("ix_kb_unanswered_last_count", "last_asked_at", "count"),
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


class KbSynonym(Base):
    __tablename__ = "kb_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    words: Mapped[str] = mapped_column(Text)  # normalised words joined by "|"
    source: Mapped[str] = mapped_column(String(SOURCE_LEN))  # starter | api | import
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class KbAliasVote(Base):
    __tablename__ = "kb_alias_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    qkey: Mapped[str] = mapped_column(String(KEY_LEN))
    entry_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True
    )
    openid: Mapped[str] = mapped_column(String(OPENID_LEN), index=True)
    question: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (
        Index("uq_kb_alias_votes_pick", "qkey", "entry_id", "openid", unique=True),
        # votes older than WXBOT_MEMORY_DAYS are deleted (learning.prune_votes): a range
        Index("ix_kb_alias_votes_created_at", "created_at"),
    )


class KbEmbedding(Base):
    __tablename__ = "kb_embeddings"

    qkey: Mapped[str] = mapped_column(String(KEY_LEN), primary_key=True)
    model: Mapped[str] = mapped_column(String(MODEL_LEN), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    created_at: Mapped[float] = mapped_column(Double)
