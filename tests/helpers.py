"""Small builders for driving the engine directly with Inbound messages."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply

_ids = itertools.count(10_000_000)


def text(openid: str, content: str, msg_id: str | None = None, create_time: int = 0) -> Inbound:
    msg_id = msg_id or str(next(_ids))
    return Inbound(
        openid=openid,
        kind="text",
        text=content,
        msg_id=msg_id,
        create_time=create_time,
        dedup_key=f"{openid}:{msg_id}",
    )


def event(
    openid: str, name: str, key: str = "", create_time: int | None = None, **extra: Any
) -> Inbound:
    create_time = create_time if create_time is not None else next(_ids)
    return Inbound(
        openid=openid,
        kind="event",
        event=name,
        event_key=key,
        create_time=create_time,
        dedup_key=f"{openid}:{create_time}:{name}:{key}",
        **extra,
    )


def location(openid: str, lat: float, lon: float, label: str = "") -> Inbound:
    msg_id = str(next(_ids))
    return Inbound(
        openid=openid,
        kind="location",
        latitude=lat,
        longitude=lon,
        label=label,
        msg_id=msg_id,
        dedup_key=f"{openid}:{msg_id}",
    )


def say(bot: Any, openid: str, content: str) -> Reply:
    return bot.handle(text(openid, content))


def content(reply: Reply) -> str:
    """The text of a Text reply (fails loudly on other kinds)."""
    assert reply.kind == "text", f"expected a text reply, got {reply!r}"
    return reply.content  # type: ignore[attr-defined]


def state_of(bot: Any, openid: str) -> tuple[str, int]:
    """The user's stored dialogue state and failed attempts at the current step."""
    from sqlalchemy import select

    from wxbot.models import Context

    with bot.engine.connect() as conn:
        row = conn.execute(
            select(Context.state, Context.attempts).where(Context.openid == openid)
        ).one()
    return row.state, row.attempts


class _ThreadFilter:
    """A list's append that keeps only what one thread adds."""

    def __init__(self, into: list[str], thread: int) -> None:
        self.into, self.thread = into, thread

    def append(self, sql: str) -> None:
        if threading.get_ident() == self.thread:
            self.into.append(sql)


@contextmanager
def sql_sent(engine: Any, this_thread: bool = False) -> Iterator[list[str]]:
    """Every command the engine's connections send while inside the block, as text, COMMIT
    included: on MySQL counted at the driver (PyMySQL), so each is one round trip (a
    multi-statement query is one); on SQLite each statement (sqlite3's trace callback: there
    is no network). The message path sends its statements on the DBAPI cursor, which
    SQLAlchemy's cursor events do not see: count here instead. ``this_thread``: only what
    the calling thread sends (not a background flush that happens to run meanwhile)."""
    caller = threading.get_ident()
    counted: list[str] = []
    sent: Any = _ThreadFilter(counted, caller) if this_thread else counted
    if engine.dialect.name == "mysql":
        import pymysql.connections

        original = pymysql.connections.Connection._execute_command

        def counting(self, command, sql):  # type: ignore[no-untyped-def]
            sent.append(sql.decode(errors="replace") if isinstance(sql, bytes) else str(sql))
            return original(self, command, sql)

        pymysql.connections.Connection._execute_command = counting  # type: ignore[method-assign]
        try:
            yield counted
        finally:
            pymysql.connections.Connection._execute_command = original  # type: ignore[method-assign]
        return
    from sqlalchemy import event

    tracing = [True]

    def trace(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(lambda sql: tracing[0] and sent.append(sql))

    event.listen(engine, "connect", trace)
    engine.pool.dispose()  # pooled connections reconnect, traced
    try:
        yield counted
    finally:
        tracing[0] = False
        event.remove(engine, "connect", trace)
        engine.pool.dispose()
