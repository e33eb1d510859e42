"""The daily counters table (migration 0009_console) and its written batches (0014)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import Base

DAY_LEN = 10  # YYYY-MM-DD in the configured time zone
NAME_LEN = 32


class DailyCount(Base):
    """How many times ``name`` happened on ``day`` (messages, answered, unknown, ...)."""

    __tablename__ = "daily_counts"

    day: Mapped[str] = mapped_column(String(DAY_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class DailyCountBatch(Base):
    """A batch of counts a process has written: its retry after a COMMIT lost in transit
    finds its id here and adds nothing (wxbot.stats.counters)."""

    __tablename__ = "daily_count_batches"

    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    written_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_daily_count_batches_written_at", "written_at"),)
