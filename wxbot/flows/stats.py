"""Funnel counters per flow and step, and the funnel read back for /admin/api/stats.

Writes are one upsert per event, run in ``turn.after_commit`` (these rows are shared by every
user of a flow: holding them in a user's locked transaction would serialise those users).
"Timed out" is not written: a user who walks away is never seen again, so it is derived as
those who entered minus those who left any other way minus those still in the flow.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql
from wxbot.flows.models import FlowStat
from wxbot.flows.spec import Flow
from wxbot.models import Context

stats = FlowStat.__table__
contexts = Context.__table__

FLOW = ""  # the step of whole-flow events
EXITS = ("cancelled", "handed_off", "failed")
Event = tuple[str, str, str, int]  # flow, step ("" = the flow), event, failed attempts


def bump(conn: Connection, events: list[Event]) -> None:
    for flow, step, event, attempts in events:
        values = {"flow": flow, "step": step, "event": event, "attempts": attempts, "count": 1}
        if is_mysql(conn):
            stmt = mysql_insert(stats).values(**values)
            stmt = stmt.on_duplicate_key_update(count=stats.c.count + 1)
        else:
            stmt = sqlite_insert(stats).values(**values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["flow", "step", "event", "attempts"],
                set_={"count": stats.c.count + 1},
            )
        conn.execute(stmt)


def _median(histogram: dict[int, int]) -> float | None:
    total = sum(histogram.values())
    if total == 0:
        return None
    ordered = sorted(histogram.items())
    values: list[int] = []
    for wanted in ((total - 1) // 2, total // 2):
        seen = 0
        for attempts, count in ordered:
            seen += count
            if seen > wanted:
                values.append(attempts)
                break
    return sum(values) / 2


def funnel(conn: Connection, flows: list[Flow], now: float) -> dict[str, Any]:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for row in conn.execute(select(stats)):
        counts[(row.flow, row.step, row.event)] += int(row.count)
        if row.step and row.event != "entered":
            histograms[(row.flow, row.step)][row.attempts] += int(row.count)
    states = {step.state: (flow.name, step.slot) for flow in flows for step in flow.steps}
    live: dict[tuple[str, str], int] = defaultdict(int)
    if states:
        rows = conn.execute(
            select(contexts.c.state, func.count())
            .where(contexts.c.state.in_(list(states)), contexts.c.expires_at > now)
            .group_by(contexts.c.state)
        )
        for state, n in rows:
            live[states[state]] += int(n)
    result: dict[str, Any] = {}
    for flow in flows:
        steps = []
        for step in flow.steps:
            key = (flow.name, step.slot)
            entry = _events(counts, flow.name, step.slot, ("entered", "filled", *EXITS))
            entry["in_progress"] = live[key]
            entry["timed_out"] = max(
                0, entry["entered"] - entry["filled"] - _left(entry) - live[key]
            )
            entry["median_attempts"] = _median(histograms[key])
            steps.append({"step": step.slot, **entry})
        total = _events(counts, flow.name, FLOW, ("entered", "completed", *EXITS))
        in_flow = sum(live[(flow.name, s.slot)] for s in flow.steps)
        total["in_progress"] = in_flow
        total["timed_out"] = max(0, total["entered"] - total["completed"] - _left(total) - in_flow)
        result[flow.name] = {**total, "steps": steps}
    return result


def _events(counts: dict[tuple[str, str, str], int], flow: str, step: str, names: tuple) -> dict:  # type: ignore[type-arg]
    return {name: counts[(flow, step, name)] for name in names}


def _left(entry: dict[str, Any]) -> int:
    return sum(entry[name] for name in EXITS)
