"""Where a background re-index reads the whole knowledge base from, without holding up users.

The application's SQLite engine begins every transaction with ``BEGIN IMMEDIATE`` (db.py):
the database's write lock, which the dialogue engine needs. Reading 100k entries under it
took 0.5 s, during which every message of every worker waited, and each worker re-indexing
after an import took its turn. A re-index only reads: in WAL mode a deferred transaction
reads one consistent snapshot and blocks no writer, so it gets an engine of its own that
begins that way. MySQL/MariaDB (READ COMMITTED, non-locking reads) and in-memory SQLite
(one database per connection pool) read through the application's engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool


def reading_engine(engine: Engine) -> Engine:
    """An engine for long reads that must not take the write lock (see above)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    reader = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, poolclass=NullPool
    )  # used once per re-index: keep nothing open

    @event.listens_for(reader, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(reader, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN DEFERRED")  # a snapshot from the first read on

    return reader
