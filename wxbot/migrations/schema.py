"""The schema's migrations: Alembic's configuration, upgrade under the lock, revisions."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from wxbot.migrations.guard import MIGRATIONS_DIR, code_heads

if TYPE_CHECKING:
    from wxbot.migrations.guard import SchemaStatus

log = logging.getLogger(__name__)


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


UPGRADE_LOCK_WAIT = 900.0  # seconds to wait for another process's upgrade (a big ALTER)


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
        NEWER,
        SchemaError,
        database_error,
        schema_status,
        upgrade_lock,
    )

    with upgrade_lock(engine, lock_wait):
        # read under the lock: another process may have migrated while this one waited
        before = schema_status(engine)
        if before.state == FOREIGN:
            raise SchemaError(before.message)
        if before.state == NEWER:
            log.warning("%s; nothing to upgrade", before.message)
            return before
        if before.state != CURRENT or revision != "heads":
            try:
                command.upgrade(alembic_config(engine), revision)
            except DBAPIError as exc:
                raise SchemaError(
                    f"upgrading the schema from {before.revision or 'nothing'} failed:"
                    f" {database_error(exc)}"
                ) from exc
    return schema_status(engine)


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
