"""The flows' table: funnel counters per flow and step (shared rows, written after commit)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wxbot.models import Base

NAME_LEN = 64


class FlowStat(Base):
    """How many times ``event`` happened at ``step`` of ``flow`` after ``attempts`` failed
    attempts. ``step`` is "" for events of the whole flow (entered, completed, ...).
    Keeping the attempts as part of the key makes the median a read of a small histogram.
    """

    __tablename__ = "flow_stats"

    flow: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    step: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    event: Mapped[str] = mapped_column(String(16), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
