"""Database engine, transactions that lock, and schema migrations (Alembic)."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def default_sqlite_url(instance_path: str) -> str:
    os.makedirs(instance_path, exist_ok=True)
    return "sqlite:///" + os.path.join(instance_path, "wxbot.sqlite3")


def make_engine(url: str) -> Engine:
    """An engine whose transactions take the locks the dialogue engine relies on.

    SQLite: pysqlite starts transactions lazily and would let two processes read the same
    context before either writes; SQLAlchemy's documented recipe turns that off and we emit
    ``BEGIN IMMEDIATE`` ourselves, which takes the database's write lock up front. WAL and a
    busy timeout let several processes share one file.
    MySQL: utf8mb4 so emoji survive, pre-ping so a restarted server does not cost a message.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        # A pool of file connections (SQLAlchemy's default) saves reopening the file and
        # re-running the PRAGMAs for every message.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _enable_sqlite_locking(engine, wal=not memory)
        return engine
    if parsed.get_backend_name() == "mysql":
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
        # READ COMMITTED: a locking read of a missing row takes no gap lock, so two first
        # messages of new users cannot deadlock on their inserts.
        # No pre-ping and no reset-on-return: each costs a round trip per message, every
        # transaction ends in an explicit COMMIT/ROLLBACK anyway, and a connection the server
        # dropped is invalidated on first use and the message retried (with_retries).
        return create_engine(
            parsed,
            isolation_level="READ COMMITTED",
            pool_pre_ping=False,
            pool_reset_on_return=None,
            pool_recycle=3600,
            pool_size=10,
            max_overflow=20,
        )
    return create_engine(parsed, pool_pre_ping=True)


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


def is_mysql(conn: Connection | Engine) -> bool:
    return conn.dialect.name in ("mysql", "mariadb")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commits on success, rolls back on any exception."""
    with engine.begin() as conn:
        yield conn


_RETRYABLE_MYSQL_ERRORS = {1205, 1213}  # lock wait timeout, deadlock
T = TypeVar("T")


def with_retries(work: Callable[[], T], attempts: int = 4) -> T:
    """Run a whole transaction again when MySQL chose it as a deadlock victim, its lock wait
    timed out, or the server had dropped the pooled connection; the transaction was rolled
    back, so running it again is safe."""
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as exc:
            code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
            retryable = code in _RETRYABLE_MYSQL_ERRORS or exc.connection_invalidated
            if not retryable or attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1) + random.random() * 0.02)
    raise AssertionError("unreachable")


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Create or upgrade the schema to the newest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The applied revision(s), comma-separated; None when the schema was never created."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    return ",".join(sorted(heads)) or None
