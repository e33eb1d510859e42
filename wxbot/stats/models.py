"""The daily counters table (migration 0009_console creates it)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
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
