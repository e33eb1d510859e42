"""Loading, locking and saving conversation contexts and seen-message records.

Query helpers take a Core connection inside the caller's transaction and never commit.
The message path's own statements (lock, create, record and save in as few round trips as
the database allows) are in locked.py; it shares the row conversions defined here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from wxbot.db import delete_some
from wxbot.dialog.flow import WAIT_QUERY
from wxbot.models import Context, SeenMessage

contexts = Context.__table__
seen = SeenMessage.__table__


@dataclass
class SeenRecord:
    reply: str | None
    status: str  # done | pending | late | to_push
    attempts: int


@dataclass
class ContextRow:
    openid: str
    state: str = WAIT_QUERY
    slots: dict[str, Any] = field(default_factory=dict)
    history: list[list[Any]] = field(default_factory=list)
    rounds: int = 0
    attempts: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float = 0.0
    version: int = 0
    extras: dict[str, Any] = field(default_factory=dict)  # read along, never saved

    def reset(self) -> None:
        """Back to a fresh WAIT_QUERY context (history is kept)."""
        self.state = WAIT_QUERY
        self.slots = {}
        self.rounds = 0
        self.attempts = 0


def row_to_context(row: Any) -> ContextRow:
    return ContextRow(
        openid=row.openid,
        state=row.state,
        slots=json.loads(row.slots or "{}"),
        history=json.loads(row.history or "[]"),
        rounds=row.rounds,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        version=row.version,
    )


# Hot-path statements are built once: constructing them per message costs more CPU than
# the database spends answering them.
def lock_statement(*extra_columns: Any) -> Select[Any]:
    """The statement that locks a context row and reads its dedup record; ``extra_columns``
    (labelled scalar subqueries, e.g. the knowledge version) ride along in the same round
    trip. Under READ COMMITTED, InnoDB reads such subqueries without locking them."""
    return (
        select(
            contexts,
            seen.c.reply,
            seen.c.status,
            seen.c.attempts.label("seen_attempts"),
            *extra_columns,
        )
        .select_from(contexts.outerjoin(seen, seen.c.dedup_key == bindparam("dedup_key")))
        .where(contexts.c.openid == bindparam("openid"))
        .with_for_update()
    )


_LOCK = lock_statement()
_LOCK_COLUMNS = frozenset(_LOCK.selected_columns.keys())
_SAVE = (
    update(contexts)
    .where(contexts.c.openid == bindparam("key_openid"))
    .values(
        state=bindparam("state"),
        slots=bindparam("slots"),
        history=bindparam("history"),
        rounds=bindparam("rounds"),
        attempts=bindparam("attempts"),
        updated_at=bindparam("updated_at"),
        expires_at=bindparam("expires_at"),
        version=bindparam("version"),
    )
)
_RECORD = insert(seen)


def lock_context(
    conn: Connection,
    openid: str,
    dedup_key: str | None = None,
    statement: Select[Any] = _LOCK,
) -> tuple[ContextRow | None, SeenRecord | None]:
    """Lock the user's context row (FOR UPDATE; on SQLite the transaction's BEGIN IMMEDIATE
    already holds the write lock) and fetch the dedup record in the same round trip.
    Extra columns of ``statement`` land in ``ContextRow.extras``."""
    row = conn.execute(statement, {"openid": openid, "dedup_key": dedup_key or ""}).first()
    if row is None:
        return None, (find_seen(conn, dedup_key) if dedup_key else None)
    record = (
        SeenRecord(row.reply, row.status, row.seen_attempts) if row.status is not None else None
    )
    ctx = row_to_context(row)
    ctx.extras = {k: v for k, v in row._mapping.items() if k not in _LOCK_COLUMNS}
    return ctx, record


def find_seen(conn: Connection, dedup_key: str, lock: bool = False) -> SeenRecord | None:
    stmt = select(seen.c.reply, seen.c.status, seen.c.attempts).where(seen.c.dedup_key == dedup_key)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return SeenRecord(row.reply, row.status, row.attempts) if row else None


def fresh_context(openid: str, now: float, ttl: float, history: Any = "[]") -> dict[str, Any]:
    """The column values of a new user's context row. ``history``: JSON text, or a SQL
    expression evaluated inside the INSERT (a returning user's remembered history)."""
    return {
        "openid": openid,
        "state": WAIT_QUERY,
        "slots": "{}",
        "history": history,
        "rounds": 0,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + ttl,
        "version": 0,
    }


def saved_values(ctx: ContextRow, now: float, ttl: float) -> dict[str, Any]:
    """The column values that saving ``ctx`` writes (call after bumping its version)."""
    return {
        "state": ctx.state,
        "slots": json.dumps(ctx.slots, ensure_ascii=False),
        "history": json.dumps(ctx.history, ensure_ascii=False),
        "rounds": ctx.rounds,
        "attempts": ctx.attempts,
        "updated_at": now,
        "expires_at": now + ttl,
        "version": ctx.version,
    }


def save_context(
    conn: Connection, ctx: ContextRow, now: float, ttl: float, bump: bool = True
) -> None:
    """Save ``ctx``. ``bump=False``: the dialogue did not move (a late result kept or an
    overtaken answer delivered), so slow work of the newest message still finds the version
    its phase one saved, and its outcome is applied (see DialogueResumer.resume_deferred)."""
    if bump:
        ctx.version += 1
    conn.execute(_SAVE, {"key_openid": ctx.openid, **saved_values(ctx, now, ttl)})


def record_seen(
    conn: Connection,
    dedup_key: str,
    openid: str,
    reply_json: str | None,
    now: float,
    status: str = "done",
) -> None:
    conn.execute(
        _RECORD,
        {
            "dedup_key": dedup_key,
            "openid": openid,
            "reply": reply_json,
            "status": status,
            "attempts": 1,
            "created_at": now,
        },
    )


def unfinished_work(
    conn: Connection, started_before: float, started_after: float, limit: int
) -> list[tuple[str, str]]:
    """(dedup key, openid) of messages whose slow work started between the two times and
    never finished (still pending or late), oldest first."""
    rows = conn.execute(
        select(seen.c.dedup_key, seen.c.openid)
        .where(
            seen.c.status.in_((PENDING, LATE)),
            seen.c.created_at < started_before,
            seen.c.created_at >= started_after,
        )
        .order_by(seen.c.created_at)
        .limit(limit)
    )
    return [(row.dedup_key, row.openid) for row in rows]


def save_slots(conn: Connection, ctx: ContextRow) -> None:
    """Save only ``ctx``'s slots: neither its version (the dialogue did not move) nor its
    expiry (nothing the user did)."""
    conn.execute(
        update(contexts)
        .where(contexts.c.openid == ctx.openid)
        .values(slots=json.dumps(ctx.slots, ensure_ascii=False))
    )


def update_seen(conn: Connection, dedup_key: str, **values: Any) -> None:
    conn.execute(update(seen).where(seen.c.dedup_key == dedup_key).values(**values))


def bump_seen_attempts(conn: Connection, dedup_key: str) -> None:
    conn.execute(
        update(seen).where(seen.c.dedup_key == dedup_key).values(attempts=seen.c.attempts + 1)
    )


def count_contexts(conn: Connection) -> int:
    """Stored contexts, live or expired-but-not-yet-evicted."""
    return conn.execute(select(func.count()).select_from(contexts)).scalar_one()


LATE_RESULTS_KEPT = 86_400  # seconds an expired context holding undelivered late results stays
_HOLDS_LATE = contexts.c.slots.contains('"_outbox": ', autoescape=True)  # delivery.OUTBOX


def _evictable(now: float) -> Any:
    """Expired, and not holding late results the user was told to collect with "any message
    later" (those stay up to LATE_RESULTS_KEPT longer)."""
    return and_(
        contexts.c.expires_at <= now,
        or_(~_HOLDS_LATE, contexts.c.expires_at <= now - LATE_RESULTS_KEPT),
    )


def delete_expired(conn: Connection, now: float, limit: int = 1000) -> int:
    """Delete up to ``limit`` expired contexts; returns how many went. A context picked but
    revived by its user's message before the delete stays, and is not counted: the session
    cap subtracts this count from the contexts it counted."""
    return delete_some(conn, contexts.c.openid, _evictable(now), limit)


# A seen record's status: answered (``reply`` holds the answer), its slow work under way,
# or under way and its user told 「还在处理中」 (the result is then pushed or kept).
DONE, PENDING, LATE = "done", "pending", "late"
# Its slow work given up on by a stopping process after its user was told 「还在处理中」:
# ``reply`` holds the apology, which a staying process's lost-work look pushes (slow.py).
TO_PUSH = "to_push"
SEEN_STATUSES = (DONE, PENDING, LATE, TO_PUSH)
ANSWERED = (DONE, TO_PUSH)  # a record whose reply another delivery of its message gets


def prune_seen(conn: Connection, older_than: float, limit: int = 5000) -> int:
    # Every status named: the index is (status, created_at), read one status's range at a time.
    old = and_(seen.c.status.in_(SEEN_STATUSES), seen.c.created_at < older_than)
    return delete_some(conn, seen.c.dedup_key, old, limit)


def forget_user(conn: Connection, openid: str) -> None:
    conn.execute(delete(contexts).where(contexts.c.openid == openid))
    conn.execute(delete(seen).where(seen.c.openid == openid))


def list_contexts(
    conn: Connection, now: float, limit: int = 100, offset: int = 0, live_only: bool = True
) -> list[ContextRow]:
    """Contexts by last activity, newest first; ``live_only=False`` includes expired ones
    not evicted yet (a user's last conversation stays readable until then)."""
    stmt = select(contexts)
    if live_only:
        stmt = stmt.where(contexts.c.expires_at > now)
    rows = conn.execute(
        stmt.order_by(contexts.c.updated_at.desc(), contexts.c.openid).limit(limit).offset(offset)
    ).all()
    return [row_to_context(r) for r in rows]


def count_live(conn: Connection, now: float) -> int:
    return conn.execute(
        select(func.count()).select_from(contexts).where(contexts.c.expires_at > now)
    ).scalar_one()


def get_context(conn: Connection, openid: str) -> ContextRow | None:
    row = conn.execute(select(contexts).where(contexts.c.openid == openid)).first()
    return row_to_context(row) if row else None
