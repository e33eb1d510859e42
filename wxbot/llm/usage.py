"""Everyone's LLM usage per day, and the log of LLM answers kept for promotion.

The per-day row is shared by every user, so it is written after the user's transaction
commits (``Turn.after_commit``), never while a user's context row is locked.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from wxbot.llm.memory import CallCost, answers, day_number, upsert
from wxbot.llm.models import LlmUsage

daily = LlmUsage.__table__


def estimate_cost(
    prompt_tokens: int, completion_tokens: int, price_in: float, price_out: float
) -> float:
    """Cost with prices per million tokens (the unit providers publish)."""
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000


def add_daily(conn: Connection, now: float, call: CallCost) -> None:
    failures = 1 if call.failed else 0
    upsert(
        conn,
        daily,
        {"day": day_number(now)},
        {
            "calls": 1,
            "failures": failures,
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": call.completion_tokens,
            "cost": call.cost,
        },
        {
            "calls": daily.c.calls + 1,
            "failures": daily.c.failures + failures,
            "prompt_tokens": daily.c.prompt_tokens + call.prompt_tokens,
            "completion_tokens": daily.c.completion_tokens + call.completion_tokens,
            "cost": daily.c.cost + call.cost,
        },
    )


def day_date(day: int) -> str:
    """The calendar date (in UTC+8) of a day number."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


_COUNTERS = ("calls", "failures", "prompt_tokens", "completion_tokens")


def _figures(values: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {n: int(v or 0) for n, v in zip(_COUNTERS, values, strict=False)}
    figures["cost"] = round(float(values[len(_COUNTERS)] or 0.0), 6)
    return figures


def totals(conn: Connection, now: float) -> dict[str, Any]:
    """All-time and today's usage of everyone (users deleted since still count)."""
    columns = [daily.c[n] for n in (*_COUNTERS, "cost")]
    everything = conn.execute(select(*[func.sum(c) for c in columns])).one()
    today = day_number(now)
    row = conn.execute(select(*columns).where(daily.c.day == today)).first()
    return {
        **_figures(everything),
        "today": {"date": day_date(today), **_figures(row or (0,) * len(columns))},
    }


# --- answers kept for promotion ---------------------------------------------------------------


def keep_answer(
    conn: Connection,
    openid: str,
    question: str,
    answer: str,
    model: str,
    call: CallCost,
    now: float,
) -> None:
    conn.execute(
        insert(answers).values(
            openid=openid,
            question=question,
            answer=answer,
            model=model[:128],
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            created_at=now,
            entry_id=None,
        )
    )


def _answer_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "openid": row.openid,
        "question": row.question,
        "answer": row.answer,
        "model": row.model,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "created_at": row.created_at,
        "entry_id": row.entry_id,
    }


def list_answers(
    conn: Connection, offset: int, limit: int, openid: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    where = [answers.c.openid == openid] if openid else []
    total = conn.execute(select(func.count()).select_from(answers).where(*where)).scalar_one()
    rows = conn.execute(
        select(answers)
        .where(*where)
        .order_by(answers.c.created_at.desc(), answers.c.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return int(total), [_answer_dict(r) for r in rows]


def get_answer(conn: Connection, answer_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(answers).where(answers.c.id == answer_id)).first()
    return _answer_dict(row) if row is not None else None


def mark_promoted(conn: Connection, answer_id: int, entry_id: int) -> None:
    conn.execute(update(answers).where(answers.c.id == answer_id).values(entry_id=entry_id))
