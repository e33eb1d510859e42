"""The database engine and its connection hooks, transactions, retries of transient errors."""

from __future__ import annotations

import logging
import os
import random
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

MULTI_STATEMENTS = 1 << 16  # CLIENT.MULTI_STATEMENTS in the MySQL protocol


def default_sqlite_url(instance_path: str) -> str:
    os.makedirs(instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(instance_path, "wxbot.sqlite3")


def make_engine(url: str) -> Engine:
    """An engine whose transactions take the locks the dialogue engine relies on.

    SQLite: pysqlite starts transactions lazily and would let two processes read the same
    context before either writes; SQLAlchemy's documented recipe turns that off and we emit
    ``BEGIN IMMEDIATE`` ourselves, which takes the database's write lock up front. WAL and a
    busy timeout let several processes share one file.
    MySQL: utf8mb4 so emoji survive; multi-statement queries, so the message path can send
    its lock and the reads after it in one round trip (every statement binds its parameters:
    nothing is spliced into SQL); a short connect timeout, so a database that is down fails
    fast and the message is retried within its deadline.
    """
    # HIDE: a failed statement's parameters (users' messages, phone numbers, the stored
    # access_token) stay out of its error's text, wherever that error is shown or shipped
    # (wxbot.redaction does the same for log records of errors from any other engine).
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        # A pool of file connections (SQLAlchemy's default) saves reopening the file and
        # re-running the PRAGMAs for every message.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,  # see HIDE below
        )
        _enable_sqlite_locking(engine, wal=not memory)
        return engine
    if parsed.get_backend_name() == "mysql":
        query = dict(parsed.query)
        query["charset"] = _connection_charset(query.get("charset"))
        query.setdefault("connect_timeout", "2")
        # The dialect ORs in FOUND_ROWS; both DBAPIs (PyMySQL, mysqlclient) use this value.
        query["client_flag"] = str(int(query.get("client_flag", 0)) | MULTI_STATEMENTS)
        parsed = parsed.set(query=query)
        # READ COMMITTED: a locking read of a missing row takes no gap lock, so two first
        # messages of new users cannot deadlock on their inserts.
        # No pre-ping and no reset-on-return: each costs a round trip per message, every
        # transaction ends in an explicit COMMIT/ROLLBACK anyway (only a connection that sat
        # idle is pinged: _ping_after_idle). Instead, a connection error
        # invalidates the whole pool (SQLAlchemy does so for its statements, raw_cursor for
        # the hot path's), so no dead connection is handed out twice, and the message is
        # retried (with_retries). pool_timeout: waiting longer would miss the reply deadline.
        engine = create_engine(
            parsed,
            isolation_level="READ COMMITTED",
            pool_pre_ping=False,
            pool_reset_on_return=None,
            pool_recycle=3600,
            pool_size=10,
            max_overflow=20,
            pool_timeout=3,
            hide_parameters=True,
        )
        _skip_needless_commit(engine)
        _ping_after_idle(engine)
        _read_only_is_a_disconnect(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)


def _connection_charset(asked: str | None) -> str:
    """utf8mb4, whatever the URL asks for. Every wxbot table is utf8mb4 and the driver hands
    us Python strings, so the connection's character set is only how text travels: with
    ``charset=utf8`` (MySQL's 3-byte utf8mb3, in many a tutorial's URL) every message with an
    emoji or a rare CJK character failed ("Incorrect string value", so the user got the
    apology), and with latin1 or gbk Chinese would be stored as '?'."""
    if asked is not None and asked.lower() != "utf8mb4":
        log.warning(
            "WXBOT_DATABASE_URL asks for charset=%s; connecting with utf8mb4 instead, so that "
            "emoji and every Chinese character survive",
            asked,
        )
    return "utf8mb4"


# Seconds a pooled connection may sit unused before it is pinged on checkout: less than the
# shortest idle timeout seen on hosted MySQL (wait_timeout 60 s) and proxies in front of it.
IDLE_PING_AFTER = 30.0
_IDLE_SINCE = "wxbot_idle_since"  # key in a pool record's info (cleared on reconnect)


def _ping_after_idle(engine: Engine) -> None:
    """Ping a connection that sat idle for IDLE_PING_AFTER before handing it out, and
    replace it if the server closed it meanwhile. The server (wait_timeout) or a proxy closes
    idle connections; the first statement on one then failed: the message path retried it,
    but /healthz said 503 ("database unreachable") and reads without retries (console pages,
    the access_token, the slow path's reads) failed after every quiet spell. A connection in
    steady use is handed out without the round trip pool_pre_ping would cost every time."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < IDLE_PING_AFTER:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - a connection that cannot ping is unusable
            # the pool replaces this connection (only this one) and hands out the new one
            raise sa_exc.DisconnectionError(f"idle connection closed: {exc}") from exc


# A server that turned read-only under us: the old primary during a failover (MySQL/MariaDB
# --read-only or super_read_only: 1290; a read-only transaction or server: 1792, 1836).
_READ_ONLY_MYSQL_ERRORS = {1290, 1792, 1836}


def _is_read_only(exc: BaseException) -> bool:
    args = getattr(exc, "args", ())
    if not args or args[0] not in _READ_ONLY_MYSQL_ERRORS:
        return False
    if args[0] != 1290:
        return True
    message = str(args[1] if len(args) > 1 else "").lower()  # 1290 names other options too
    return "read-only" in message or "read_only" in message


def _read_only_is_a_disconnect(engine: Engine) -> None:
    """Take a read-only error as a lost connection: every pooled connection (all reach the
    demoted primary) is dropped and the transaction retried on a new one, which reaches the
    new primary once the failover's DNS or proxy switched; until then it fails and is
    retried like any transient error. Before, the error was not transient: the user got the
    apology at once, and the same dead-end connections were handed out again. Both the
    statements SQLAlchemy runs and the hot path's (raw_cursor) ask the dialect."""
    dialect = engine.dialect
    is_disconnect = dialect.is_disconnect

    def read_only_or_disconnect(e: Any, connection: Any, cursor: Any) -> bool:
        return _is_read_only(e) or is_disconnect(e, connection, cursor)

    dialect.is_disconnect = read_only_or_disconnect  # type: ignore[method-assign]


SERVER_STATUS_IN_TRANS = 1  # MySQL protocol: a transaction is open on this connection
# DBAPI connections whose last query ended in COMMIT; cleared by the transaction's end. Weak:
# a connection dropped before that end (closed by an error) must not leave a mark that a new
# connection given the same id() would inherit (its real COMMIT would then not be sent).
_committed_in_sql: weakref.WeakSet[Any] = weakref.WeakSet()


def committed_in_sql(conn: Connection) -> None:
    """Tell the transaction of ``conn`` that its statements ended with COMMIT themselves
    (the message path sends COMMIT in its last multi-statement query, saving a round trip):
    the transaction's own commit then sends nothing."""
    _committed_in_sql.add(conn.connection.dbapi_connection)


def _skip_needless_commit(engine: Engine) -> None:
    """Send no second COMMIT after ``committed_in_sql``, provided the server's answer to
    that COMMIT (an OK packet, whose status flags PyMySQL keeps) says no transaction is
    open; otherwise COMMIT is sent as usual. mysqlclient keeps no such flags: there the
    mark alone decides. That is safe because the mark is set only once every result of the
    query that ended in COMMIT was read without an error (a failed COMMIT raises there), and
    the message path commits right after it, sending nothing in between."""
    dialect = engine.dialect
    send_commit, send_rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)  # pool proxy
        marked = raw in _committed_in_sql
        _committed_in_sql.discard(raw)
        status = getattr(dbapi_connection, "server_status", None)
        if marked and (status is None or not status & SERVER_STATUS_IN_TRANS):
            return
        send_commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)  # pool proxy
        _committed_in_sql.discard(raw)
        send_rollback(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _enable_sqlite_locking(engine: Engine, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def run_after_commit(engine: Engine, later: list[Callable[[Connection], None]]) -> None:
    """Run each write in a transaction of its own, retried on a blip; a failure is logged,
    not raised (what runs after a commit is statistics and caches, not the user's data)."""
    for work in later:

        def run(work: Callable[[Connection], None] = work) -> None:
            with transaction(engine) as conn:
                work(conn)

        try:
            with_retries(run)
        except Exception:
            log.warning("after-commit write failed", exc_info=True)


def is_duplicate_key(exc: BaseException) -> bool:
    """A duplicate-key error (MySQL 1062, SQLite's UNIQUE constraint), wrapped or not."""
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", ())
    if args and args[0] == 1062:
        return True
    return "UNIQUE constraint failed" in str(orig)


def is_mysql(conn: Connection | Engine) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


def delete_some(conn: Connection, key: Column[Any], where: ColumnElement[bool], limit: int) -> int:
    """Delete up to ``limit`` rows of ``key``'s table matching ``where``; how many went.

    The keys are picked first and the delete names them, because neither a LIMIT inside
    ``IN (subquery)`` (MariaDB) nor ``DELETE … LIMIT`` (SQLite, as usually built) is portable.
    The delete checks ``where`` again: a row changed between the two statements (a context
    revived by its user's message) stays and is not counted."""
    keys = conn.execute(select(key).where(where).limit(limit)).scalars().all()
    if not keys:
        return 0
    return int(conn.execute(delete(key.table).where(key.in_(keys), where)).rowcount)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commits on success, rolls back on any exception."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def raw_cursor(conn: Connection) -> Iterator[Any]:
    """The DBAPI cursor of ``conn`` (inside its transaction), for hot-path statements sent as
    plain SQL. Errors come out as SQLAlchemy's, handled as SQLAlchemy handles its own: a lost
    connection invalidates it and every pooled connection older than the error."""
    dbapi_connection = conn.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        disconnect = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if disconnect and not conn.invalidated:
            invalidate_pool = getattr(conn.engine.pool, "_invalidate", None)
            if invalidate_pool is not None:
                invalidate_pool(conn.connection, exc, _checkin=False)
            conn.invalidate(exc)
        raise DBAPIError.instance(
            None,
            None,
            exc,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=conn.dialect,
        ) from exc
    finally:
        with suppress(Exception):  # a cursor of a dead connection may not close
            cursor.close()


# MySQL errors after which running the whole transaction again is safe and may succeed:
# it was rolled back (or never started), and a commit that did happen is found by the dedup
# record. Lock wait timeout, deadlock, too many connections (the server's max_connections;
# the account's max_user_connections, which hosted MySQL sets per account: 1203, 1226),
# server shutting down, query interrupted, connection killed, can't connect (socket / TCP),
# server gone away, lost connection, and the client side of a closed connection.
# (A read-only server is taken as a lost connection: see _read_only_is_a_disconnect.)
_RETRYABLE_MYSQL_ERRORS = {
    1205, 1213, 1040, 1203, 1226, 1053, 1317, 1927, 2002, 2003, 2006, 2013, 2055, 4031,
}  # fmt: skip
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """Will the same transaction likely succeed if tried again in a moment?"""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free in time
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = orig.args[0] if orig is not None and orig.args else None
    if code in _RETRYABLE_MYSQL_ERRORS:
        return True
    return "database is locked" in str(orig)  # SQLite's busy timeout ran out


def with_retries(
    work: Callable[[], T],
    deadline: float | None = None,
    attempts: int = 4,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run a whole transaction again after a transient failure (is_transient), with
    exponential backoff. ``deadline`` (time.monotonic()): keep trying until then; without
    it, ``attempts`` tries. The last failure is raised."""
    delay = 0.02
    attempt = 0
    while True:
        attempt += 1
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            now = time.monotonic()
            if deadline is None and attempt >= attempts:
                raise
            pause = delay * (0.5 + random.random())
            if deadline is not None and now + pause >= deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            log.info("transient database error, trying again in %.2fs: %s", pause, exc.args[0])
            time.sleep(pause)
            delay = min(delay * 2, 0.5)
