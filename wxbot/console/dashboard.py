"""/admin/: today's and this week's figures, answer rates, top questions, the unanswered
trend, LLM usage and cost, the flows' funnels."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import render_template

from wxbot.console.web import admin, bp
from wxbot.qa import unanswered
from wxbot.stats import zone

TREND_DAYS = 14
OUTCOMES = ("answered", "llm", "suggested", "unknown")  # llm: handed to the LLM


@dataclass
class Bar:
    """One day of the trend chart (SVG coordinates worked out here, not in the template)."""

    day: str
    unknown: int
    suggested: int
    x: float
    height_unknown: float
    height_suggested: float


def _sum(days: dict[str, Counter[str]], first: date, last: date) -> Counter[str]:
    total: Counter[str] = Counter()
    for day, counts in days.items():
        if first.isoformat() <= day <= last.isoformat():
            total.update(counts)
    return total


def rates(counts: Counter[str]) -> dict[str, float | None]:
    """Share of the questions answered from the knowledge base, handed to the LLM, answered
    with suggestions, not answered."""
    asked = sum(counts[name] for name in OUTCOMES)
    return {name: (counts[name] / asked if asked else None) for name in OUTCOMES}


def trend(days: dict[str, Counter[str]], today: date, height: float = 80.0) -> list[Bar]:
    first = today - timedelta(days=TREND_DAYS - 1)
    series = [(first + timedelta(days=i)).isoformat() for i in range(TREND_DAYS)]
    values = [(d, days.get(d, Counter())) for d in series]
    peak = max((c["unknown"] + c["suggested"] for _, c in values), default=0) or 1
    return [
        Bar(
            day=d[5:],
            unknown=c["unknown"],
            suggested=c["suggested"],
            x=i * 22.0,
            height_unknown=round(c["unknown"] / peak * height, 1),
            height_suggested=round(c["suggested"] / peak * height, 1),
        )
        for i, (d, c) in enumerate(values)
    ]


@bp.get("/")
def dashboard() -> str:
    ops = admin()
    settings = ops.settings
    tz = zone(settings.timezone)
    today = datetime.fromtimestamp(ops.now(), tz).date()
    week_start = today - timedelta(days=today.weekday())  # 本周 starts on Monday
    first = min(week_start, today - timedelta(days=TREND_DAYS - 1))
    days = ops.daily_counts(first, today)
    week = _sum(days, week_start, today)
    stats = ops.stats()
    figures: dict[str, Any] = {
        "today": days.get(today.isoformat(), Counter()),
        "week": week,
        "rates": rates(week),
        "trend": trend(days, today),
        "top": ops.top_entries(10),
        "top_unanswered": ops.read(lambda conn: unanswered.list_unanswered(conn, 0, 5)[1]),
        "stats": stats,
        "llm": stats["llm"],
        "funnels": [(f.name, stats["flows"].get(f.name, {})) for f in ops.loaded_flows()],
        "llm_priced": bool(settings.llm_price_input or settings.llm_price_output),
    }
    return render_template("console/dashboard.html", nav="dashboard", **figures)
