"""Tables of the LLM family (migration 0006_llm creates them).

- ``memories``: one row per user who talked to the LLM or whose window an admin set: the
  durable copy of the user's history window, the per-user window, usage and rate counters.
  It outlives the context row (expiry, eviction); only unsubscribing or an admin deletes it.
- ``llm_usage``: calls, tokens and estimated cost of everyone, per day (UTC+8).
- ``llm_answers``: each LLM answer with its question, so an admin can promote a good one into
  the knowledge base.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import OPENID_LEN, Base, LongText

MODEL_LEN = 128


class Memory(Base):
    __tablename__ = "memories"

    openid: Mapped[str] = mapped_column(String(OPENID_LEN), primary_key=True)
    # JSON [[role, text], ...]: the window as of the last LLM answer or admin change (the
    # context row holds the live one; a new context for this user starts from this copy)
    history: Mapped[str] = mapped_column(LongText)
    history_rounds: Mapped[int | None] = mapped_column(Integer, nullable=True)  # NULL: default
    recent_calls: Mapped[str] = mapped_column(Text)  # JSON epoch seconds of the last minute's calls
    day: Mapped[int] = mapped_column(Integer, default=0)  # day number (UTC+8) of day_tokens
    day_tokens: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Double, default=0.0)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class LlmUsage(Base):
    __tablename__ = "llm_usage"

    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Double, default=0.0)


class LlmAnswer(Base):
    __tablename__ = "llm_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    openid: Mapped[str] = mapped_column(String(OPENID_LEN), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(MODEL_LEN))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Double, index=True)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # promoted to this entry
