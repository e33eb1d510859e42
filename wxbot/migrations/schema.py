"""The schema's migrations: Alembic's configuration, upgrade under the lock, revisions."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from wxbot.migrations.guard import MIGRATIONS_DIR, code_heads

if TYPE_CHECKING:
    from wxbot.migrations.guard import SchemaStatus

log = logging.getLogger(__name__)


def alembic_config(engine: Engine, connection: Connection | None = None):  # type: ignore[no-untyped-def]
    """Alembic's configuration for ``engine``; the migrations run on ``connection`` if given
    (the one holding the upgrade lock), else on a connection of their own."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    cfg.attributes["connection"] = connection
    return cfg


UPGRADE_LOCK_WAIT = 900.0  # seconds to wait for another process's upgrade (a big ALTER)
# MySQL/MariaDB: an ALTER waits for every open transaction that has used its table (the
# metadata lock), and every later statement on that table waits behind the ALTER. With the
# server's lock_wait_timeout (a day by default), one transaction left open (an operator's SQL
# console, a stuck job) stopped every message that touches the table for as long. The
# migrations wait DDL_LOCK_WAIT seconds at a time, DDL_ATTEMPTS times, DDL_PAUSE apart (each
# run resumes where the last gave up: wxbot/migrations/resumable.py), then say why.
DDL_LOCK_WAIT = 3
DDL_ATTEMPTS = 5
DDL_PAUSE = 2.0
LOCK_WAIT_TIMEOUT = 1205  # ER_LOCK_WAIT_TIMEOUT


def upgrade(
    engine: Engine, revision: str = "heads", lock_wait: float = UPGRADE_LOCK_WAIT
) -> SchemaStatus:
    """Create or upgrade the schema to the newest migration (idempotent); returns the
    schema's SchemaStatus after it.

    Safe when many processes run it at once (containers restarting together): one migrates
    under the database's upgrade lock, the others wait and then find nothing to do. A
    database that is not wxbot's is refused, and one a later release migrated is left as it
    is (SchemaError / a warning), instead of Alembic's traceback. A failing migration comes
    out as a one-line SchemaError (the driver's error is its cause)."""
    from alembic import command

    from wxbot.migrations.guard import (
        CURRENT,
        FOREIGN,
        INCOMPLETE,
        NEWER,
        SchemaError,
        database_error,
        schema_status,
        upgrade_lock,
    )

    with upgrade_lock(engine, lock_wait) as locked:
        # read under the lock: another process may have migrated while this one waited
        before = schema_status(engine)
        if before.state in (FOREIGN, INCOMPLETE):
            raise SchemaError(before.message)
        if before.state == NEWER:
            log.warning("%s; nothing to upgrade", before.message)
            return before
        if before.state != CURRENT or revision != "heads":
            attempts = 0
            while True:
                attempts += 1
                try:
                    with _short_lock_waits(locked):
                        command.upgrade(alembic_config(engine, locked), revision)
                    break
                except DBAPIError as exc:
                    busy = getattr(exc.orig, "args", (None,))[:1] == (LOCK_WAIT_TIMEOUT,)
                    if busy and attempts < DDL_ATTEMPTS and locked is not None:
                        log.warning(
                            "a table the schema upgrade alters is in use by another"
                            " transaction; trying again in %.0f s",
                            DDL_PAUSE,
                        )
                        time.sleep(DDL_PAUSE)
                        continue
                    why = f"upgrading the schema from {before.revision or 'nothing'} failed"
                    if busy:
                        why += (
                            f" after {attempts} tries: another session's transaction keeps a"
                            " table it alters in use (waiting longer would hold up every"
                            " message that uses it); end that transaction (SHOW PROCESSLIST"
                            " shows it) and run `wxbot init-db` again"
                        )
                    raise SchemaError(f"{why}: {database_error(exc)}") from exc
    after = schema_status(engine)
    if after.state == INCOMPLETE:  # tables gone before an upgrade that could not make them
        raise SchemaError(after.message)
    return after


@contextmanager
def _short_lock_waits(conn: Connection | None) -> Iterator[None]:
    """The migrations' session waits DDL_LOCK_WAIT seconds for a table's metadata lock; the
    server's default again before the connection goes back to the pool."""
    if conn is None:  # SQLite
        yield
        return
    conn.execute(text("SET SESSION lock_wait_timeout = :wait"), {"wait": DDL_LOCK_WAIT})
    conn.rollback()
    try:
        yield
    finally:
        try:
            conn.rollback()
            conn.execute(text("SET SESSION lock_wait_timeout = DEFAULT"))
            conn.rollback()
        except DBAPIError:  # a connection that cannot say so is not reused
            conn.invalidate()


def current_revision(engine: Engine) -> str | None:
    """The applied revision(s), comma-separated; None when the schema was never created.

    Read from Alembic's version table directly: cheap enough for a health probe every few
    seconds, and silent (Alembic's migration context logs at INFO each time it starts)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(heads)) or None


@functools.cache
def code_revision() -> str:
    """The schema revision(s) this code needs (the migrations' heads), comma-separated."""
    return ",".join(sorted(code_heads()))
