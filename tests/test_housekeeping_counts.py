"""Clean-up counts what it deleted, not what it picked: a context revived by its user's message
between the pick and the delete stays and is not counted (the session cap subtracts the count
from the contexts it counted, so an overcount let a new user in over the cap)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, update

from wxbot.db import transaction
from wxbot.dialog import context as store


def _add(conn: Any, openid: str, expires_at: float) -> None:
    conn.execute(insert(store.contexts).values(**store.fresh_context(openid, 0.0, expires_at)))


def _revive_after_pick(engine: Any, openid: str) -> Any:
    """As a user's message would: right after the victims are picked, one of them is saved
    with a fresh expiry (same transaction here; in production another one that committed)."""

    done: list[bool] = []

    def revive(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            not done
            and statement.lstrip().upper().startswith("SELECT")
            and "expires_at" in statement
        ):
            done.append(True)
            conn.execute(
                update(store.contexts)
                .where(store.contexts.c.openid == openid)
                .values(expires_at=4e9)
            )

    event.listen(engine, "after_cursor_execute", revive)
    return revive


def test_a_revived_context_is_neither_deleted_nor_counted(app) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    with transaction(engine) as conn:
        for openid in ("o_a", "o_b", "o_c"):
            _add(conn, openid, expires_at=100.0)
    _revive_after_pick(engine, "o_b")
    with transaction(engine) as conn:
        deleted = store.delete_expired(conn, now=500.0)
    with engine.connect() as conn:
        left = [c.openid for c in store.list_contexts(conn, 500.0, live_only=False)]
    assert left == ["o_b"]
    assert deleted == 2


def test_clean_up_goes_on_past_a_short_batch(app, clock) -> None:  # type: ignore[no-untyped-def]
    """A batch that deleted fewer than it picked (one revived) is not the last one."""
    engine = app.extensions["wxbot.engine"]
    bot = app.extensions["wxbot.bot"]
    with transaction(engine) as conn:
        for n in range(5):
            _add(conn, f"o_{n}", expires_at=100.0)
    _revive_after_pick(engine, "o_0")
    contexts_deleted, _ = bot.clean_up(batch=2)
    with engine.connect() as conn:
        left = [c.openid for c in store.list_contexts(conn, clock(), live_only=False)]
    assert left == ["o_0"]
    assert contexts_deleted == 4
