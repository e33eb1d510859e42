"""The per-user memory: the history window answers see, kept beyond the context's life.

Where it lives, and why there:
- The **context row's** ``history`` column holds the live window. The engine appends every
  exchange (knowledge-base answers, flows, LLM answers) in the UPDATE that saves the context,
  so remembering costs a plain question no statement of its own.
- The **memories row** holds the durable copy, the user's window setting and usage. It is
  written only on the LLM path (when an answer arrives) and by the admin API. It outlives the
  context: expiry keeps the history, and a context created after eviction starts from this
  copy (the INSERT that creates the context reads it: no extra statement either).
- The per-user window (``history_rounds``) is read by a scalar subquery riding along the
  engine's context lock, so trimming to it costs nothing extra.

Query helpers take a Core connection inside the caller's transaction and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import delete_some, is_mysql
from wxbot.dialog.context import contexts
from wxbot.dialog.flow import WINDOW_COLUMN
from wxbot.llm.models import LlmAnswer, Memory

memories = Memory.__table__
answers = LlmAnswer.__table__

CHINA_OFFSET = 8 * 3600  # daily caps roll over at midnight in China (UTC+8), where users live
RATE_WINDOW = 60.0  # seconds: WXBOT_LLM_RATE counts calls in the last minute


@dataclass(frozen=True)
class CallCost:
    """One finished call: its tokens, estimated cost, and whether it failed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    failed: bool = False


def day_number(now: float) -> int:
    return int((now + CHINA_OFFSET) // 86_400)


def trim(history: list[list[Any]], rounds: int) -> list[list[Any]]:
    """The last ``rounds`` exchanges (two entries each: the user's, the bot's)."""
    return history[-2 * rounds :] if rounds > 0 else []


@dataclass
class UserMemory:
    openid: str
    history: list[list[Any]]  # the live window: the context's, or the stored copy without one
    rounds: int | None = None  # per-user window; None = WXBOT_HISTORY_ROUNDS
    recent_calls: list[float] = field(default_factory=list)
    day: int = 0
    day_tokens: int = 0
    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    stored: bool = False  # a memories row exists
    has_context: bool = False
    last_active: float = 0.0

    def window(self, default: int) -> int:
        return self.rounds or default

    def tokens_today(self, now: float) -> int:
        return self.day_tokens if self.day == day_number(now) else 0

    def calls_last_minute(self, now: float) -> list[float]:
        return [t for t in self.recent_calls if now - RATE_WINDOW < t <= now]

    def usage(self, now: float) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost, 6),
            "tokens_today": self.tokens_today(now),
        }


class MemoryStore:
    """The engine's view of the memory (``Deps.memory``): SQL pieces that ride along its own
    statements, and forgetting a user."""

    def window_column(self) -> Any:
        """The user's window (NULL = default) as a labelled scalar subquery for the lock."""
        return (
            select(memories.c.history_rounds)
            .where(memories.c.openid == bindparam("openid"))
            .scalar_subquery()
            .label(WINDOW_COLUMN)
        )

    def initial_history(self, openid: Any, now: Any = None, keep_days: int = 0) -> Any:
        """A new context's history: the stored copy, or empty (a subquery inside the INSERT).
        ``keep_days`` > 0: a copy not written for that long (before ``now``) counts as empty,
        as WXBOT_MEMORY_DAYS promises, even if no clean-up has emptied it yet."""
        stored = select(memories.c.history).where(memories.c.openid == openid)
        if keep_days > 0 and now is not None:
            stored = stored.where(memories.c.updated_at >= now - keep_days * 86_400)
        return func.coalesce(stored.scalar_subquery(), literal("[]"))

    def clear_history(self, conn: Connection, openid: str, now: float) -> None:
        """The user asked to be forgotten (「清除记忆」): both copies of the history and their
        kept LLM answers go, as with the admin API's DELETE …/history; their window, usage
        and language stay."""
        clear_history(conn, openid, now)

    def forget_user(self, conn: Connection, openid: str) -> None:
        conn.execute(delete(memories).where(memories.c.openid == openid))
        conn.execute(delete(answers).where(answers.c.openid == openid))

    def forget_old_histories(self, conn: Connection, older_than: float, limit: int) -> int:
        """Empty up to ``limit`` stored histories last written before ``older_than`` (the
        user's window and usage stay); how many were emptied. A live context keeps its own
        copy until it is evicted, which takes minutes."""
        stale = (memories.c.updated_at < older_than) & (memories.c.history != "[]")
        victims = conn.execute(select(memories.c.openid).where(stale).limit(limit)).scalars().all()
        if victims:
            conn.execute(
                update(memories).where(memories.c.openid.in_(victims), stale).values(history="[]")
            )
        return len(victims)

    def forget_old_answers(self, conn: Connection, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` kept LLM answers given before ``older_than`` (promoted or
        not: a promoted one's entry lives on in the knowledge base); how many went."""
        return delete_some(conn, answers.c.id, answers.c.created_at < older_than, limit)


# --- reading ----------------------------------------------------------------------------------


def load(conn: Connection, openid: str) -> UserMemory | None:
    """The user's memory: the context's live history if there is a context (one statement),
    else the stored copy; None when nothing is stored about the user."""
    joined = conn.execute(
        select(
            contexts.c.history.label("live_history"),
            contexts.c.updated_at.label("live_updated_at"),
            memories,
        )
        .select_from(contexts.outerjoin(memories, memories.c.openid == contexts.c.openid))
        .where(contexts.c.openid == openid)
    ).first()
    if joined is not None:
        return _memory(openid, joined, joined.live_history, joined.live_updated_at)
    row = conn.execute(select(memories).where(memories.c.openid == openid)).first()
    return _memory(openid, row, None, 0.0) if row is not None else None


def _memory(openid: str, row: Any, live_history: str | None, live_at: float) -> UserMemory:
    stored = row.created_at is not None
    history = live_history if live_history is not None else (row.history if stored else "[]")
    memory = UserMemory(
        openid=openid,
        history=json.loads(history or "[]"),
        has_context=live_history is not None,
        stored=stored,
        last_active=max(live_at or 0.0, row.updated_at or 0.0),
    )
    if stored:
        memory.rounds = row.history_rounds
        memory.recent_calls = json.loads(row.recent_calls or "[]")
        memory.day, memory.day_tokens = row.day, row.day_tokens
        memory.calls, memory.failures = row.calls, row.failures
        memory.prompt_tokens, memory.completion_tokens = row.prompt_tokens, row.completion_tokens
        memory.cost = row.cost
    return memory


# --- writing ----------------------------------------------------------------------------------


def upsert(
    conn: Connection, table: Any, key: dict[str, Any], new: dict[str, Any], changes: dict[str, Any]
) -> None:
    """Insert ``key + new``, or apply ``changes`` to the existing row (one statement)."""
    values = {**key, **new}
    if is_mysql(conn):
        stmt = mysql_insert(table).values(values).on_duplicate_key_update(**changes)
    else:
        stmt = (
            sqlite_insert(table)
            .values(values)
            .on_conflict_do_update(index_elements=list(key), set_=changes)
        )
    conn.execute(stmt)


def _new_row(now: float, history: list[list[Any]] | None = None) -> dict[str, Any]:
    return {
        "history": json.dumps(history or [], ensure_ascii=False),
        "recent_calls": "[]",
        "created_at": now,
        "updated_at": now,
    }


def reserve_call(conn: Connection, memory: UserMemory, now: float, tokens: int = 0) -> None:
    """Count a call about to be made against the user's per-minute rate; ``tokens``: what it
    may spend, held against today's tokens until record_call settles it (a call whose answer
    never comes back, its process gone, keeps its hold until midnight: on the safe side)."""
    recent = json.dumps([*memory.calls_last_minute(now), now])
    new: dict[str, Any] = {**_new_row(now, memory.history), "recent_calls": recent}
    changes: dict[str, Any] = {"recent_calls": recent, "updated_at": now}
    if tokens:
        # A call in flight has reported no usage yet: without this hold, the questions asked
        # meanwhile (in a row, or through another process) all passed the daily check.
        held = {"day": day_number(now), "day_tokens": memory.tokens_today(now) + tokens}
        new, changes = {**new, **held}, {**changes, **held}
    upsert(conn, memories, {"openid": memory.openid}, new, changes)
    memory.stored = True


def record_call(
    conn: Connection,
    memory: UserMemory,
    now: float,
    call: CallCost,
    history: list[list[Any]] | None = None,
    held: int = 0,
) -> None:
    """Add a finished call's usage; ``history``: the new durable window (None: unchanged);
    ``held``: the tokens reserve_call held for it today, replaced by what it spent."""
    day = day_number(now)
    tokens = call.prompt_tokens + call.completion_tokens
    failed = 1 if call.failed else 0
    changes: dict[str, Any] = {
        "calls": memories.c.calls + 1,
        "failures": memories.c.failures + failed,
        "prompt_tokens": memories.c.prompt_tokens + call.prompt_tokens,
        "completion_tokens": memories.c.completion_tokens + call.completion_tokens,
        "cost": memories.c.cost + call.cost,
        "day": day,
        "day_tokens": max(0, memory.tokens_today(now) - held) + tokens,
        "updated_at": now,
    }
    if history is not None:
        changes["history"] = json.dumps(history, ensure_ascii=False)
    new = {
        **_new_row(now, history if history is not None else memory.history),
        "calls": 1,
        "failures": failed,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "cost": call.cost,
        "day": day,
        "day_tokens": tokens,
    }
    upsert(conn, memories, {"openid": memory.openid}, new, changes)


def clear_history(conn: Connection, openid: str, now: float) -> None:
    """Empty the live and the stored history and delete the user's kept LLM answers (their
    questions, word for word); the user, window and usage stay."""
    conn.execute(update(contexts).where(contexts.c.openid == openid).values(history="[]"))
    conn.execute(
        update(memories).where(memories.c.openid == openid).values(history="[]", updated_at=now)
    )
    conn.execute(delete(answers).where(answers.c.openid == openid))


def set_window(
    conn: Connection, memory: UserMemory, rounds: int | None, default: int, now: float
) -> list[list[Any]]:
    """Set (None: reset to the default) the user's window and trim both copies to it."""
    kept = trim(memory.history, rounds or default)
    upsert(
        conn,
        memories,
        {"openid": memory.openid},
        {**_new_row(now, kept), "history_rounds": rounds},
        {"history_rounds": rounds, "history": json.dumps(kept, ensure_ascii=False)},
    )
    if memory.has_context:
        conn.execute(
            update(contexts)
            .where(contexts.c.openid == memory.openid)
            .values(history=json.dumps(kept, ensure_ascii=False))
        )
    return kept


# --- the user list ----------------------------------------------------------------------------


def _users() -> Any:
    """Everyone we keep something for, with their last activity (context or memory)."""
    both = (
        select(contexts.c.openid, contexts.c.updated_at.label("at"))
        .union_all(select(memories.c.openid, memories.c.updated_at.label("at")))
        .subquery()
    )
    return select(both.c.openid, func.max(both.c.at).label("last_active")).group_by(both.c.openid)


def count_users(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(_users().subquery())).scalar_one())


def list_users(conn: Connection, offset: int, limit: int) -> list[tuple[str, float]]:
    users = _users().subquery()
    rows = conn.execute(
        select(users.c.openid, users.c.last_active)
        .order_by(users.c.last_active.desc(), users.c.openid)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(r.openid, r.last_active) for r in rows]
