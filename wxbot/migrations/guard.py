"""What a schema upgrade and a server's start check before touching the database, for
operators who upgrade in place and restart many containers at once.

- ``upgrade_lock``: one process migrates at a time. On MySQL/MariaDB DDL is not
  transactional: two processes running the same migrations together each apply part of
  them, one dies on "table already exists", and the schema can be left where Alembic cannot
  continue. A server-side named lock (GET_LOCK, named after the database, since many
  databases may share one server) serialises them; it dies with its connection, so a
  process killed mid-upgrade does not block the next one. On SQLite the whole upgrade runs
  in one ``BEGIN IMMEDIATE`` transaction (wxbot.db.make_engine), which serialises it already.
- ``schema_status``: where the database stands against this code, in one line for the
  operator: missing, behind, current, newer (a later release migrated it: migrations only
  add, so this release keeps working), or not wxbot's at all.
- ``schema_drift``: differences between the tables and this release's models (an index
  dropped by hand), reported by ``wxbot init-db``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.exc import DBAPIError

from wxbot.redaction import display_url, hide_sql_parameters, redact

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent
# Every module that puts tables on wxbot.models.Base: the tables wxbot owns.
MODEL_MODULES = (
    "wxbot.models",
    "wxbot.qa.models",
    "wxbot.llm.models",
    "wxbot.services.models",
    "wxbot.stats.models",
    "wxbot.flows.models",
    "wxbot.console.models",
    "wxbot.admin.throttle",
)
# Created by the first revision and kept ever since: a database holding them and a revision
# this code does not know was migrated by a later wxbot, not by another application.
CORE_TABLES = frozenset({"contexts", "seen_messages"})
LOCK_POLL = 5  # seconds per GET_LOCK call: the wait is logged between calls
MISSING, BEHIND, CURRENT, NEWER, FOREIGN = "missing", "behind", "current", "newer", "foreign"
INCOMPLETE = "incomplete"  # at this release's revision, but some of its tables are gone


class SchemaError(Exception):
    """A schema problem the operator must act on, said in one line (no traceback)."""


@dataclass(frozen=True)
class SchemaStatus:
    state: str  # MISSING, BEHIND, CURRENT, NEWER, FOREIGN or INCOMPLETE
    revision: str | None  # the database's revision(s), comma-separated
    message: str  # one line for the operator


@functools.cache  # read once per process: /healthz asks on every probe
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def code_heads() -> set[str]:
    return set(_script().get_heads())


def metadata() -> MetaData:
    """wxbot's whole schema as this release's models describe it."""
    for name in MODEL_MODULES:
        importlib.import_module(name)
    from wxbot.models import Base

    return Base.metadata


def owned_tables() -> frozenset[str]:
    return frozenset(metadata().tables)


def _is_known(script: Any, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:  # alembic raises ResolutionError (a CommandError) for unknown ids
        return False


def _names(names: set[str] | list[str], limit: int = 5) -> str:
    ordered = sorted(names)
    more = f" and {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(ordered[:limit]) + more


def schema_status(engine: Engine) -> SchemaStatus:
    """Compare the database's Alembic revision(s) with this code's. Raises the driver's
    error when the database cannot be read (the caller says so in one line)."""
    script = _script()
    need = set(script.get_heads())
    wanted = ",".join(sorted(need))
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        heads: set[str] = set()
        if "alembic_version" in tables:
            heads = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    revision = ",".join(sorted(heads)) or None
    if not heads:
        clash = tables & owned_tables()
        if clash:
            return SchemaStatus(
                FOREIGN,
                None,
                f"the database has tables named like wxbot's ({_names(clash)}) but no wxbot"
                " schema version: it belongs to another application, or a first `wxbot"
                " init-db` was interrupted (then drop those tables and run it again)",
            )
        return SchemaStatus(MISSING, None, "the database has no wxbot schema: run `wxbot init-db`")
    unknown = {h for h in heads if not _is_known(script, h)}
    if unknown and tables >= CORE_TABLES:
        return SchemaStatus(
            NEWER,
            revision,
            f"the schema is at {revision}, newer than this release ({wanted}): a later"
            " release migrated it; this one keeps working on it (migrations only add)",
        )
    if unknown:
        return SchemaStatus(
            FOREIGN,
            revision,
            f"the database's alembic_version holds {_names(unknown)}, which is no wxbot"
            " revision: it belongs to another application; give wxbot a database of its own",
        )
    if heads == need:
        gone = owned_tables() - tables
        if gone:  # served, every message touching them got the apology ("no such table")
            return SchemaStatus(
                INCOMPLETE,
                revision,
                f"the schema is at {revision} but tables {_names(gone)} are missing (dropped"
                " by hand, or a partial restore): restore them from a backup; migrations"
                " do not make again what their version says is there",
            )
        return SchemaStatus(CURRENT, revision, f"the schema is at {revision}")
    return SchemaStatus(
        BEHIND,
        revision,
        f"the schema is at {revision}, this release needs {wanted}: run `wxbot init-db`",
    )


def _lock_name(conn: Any) -> str:
    """GET_LOCK names are server-wide and at most 64 characters: one per database."""
    database = conn.execute(text("SELECT DATABASE()")).scalar() or ""
    name = f"wxbot.upgrade.{database}"
    if len(name) > 64:
        name = "wxbot.upgrade." + hashlib.sha1(database.encode()).hexdigest()
    return name


@contextmanager
def upgrade_lock(engine: Engine, wait: float) -> Iterator[Connection | None]:
    """Hold the database's upgrade lock (MySQL/MariaDB) for the block; wait up to ``wait``
    seconds for another process's upgrade to finish, then give up with a SchemaError.

    Yields the connection holding the lock, for the migrations to run on (None on SQLite):
    a statement whose process was killed keeps running on the server (a long ALTER does not
    notice the closed socket until it answers), and the lock must last as long. Held by an
    idle connection of its own, it died with the process, and the next container migrated
    alongside the dead one's ALTER ("Duplicate key name")."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        yield None  # SQLite: BEGIN IMMEDIATE serialises the whole upgrade
        return
    with engine.connect() as conn:
        name = _lock_name(conn)
        deadline = time.monotonic() + wait
        while True:
            step = max(0, min(LOCK_POLL, int(deadline - time.monotonic())))
            got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": name, "wait": step})
            got = got.scalar()
            conn.rollback()  # no snapshot may outlive the wait (READ COMMITTED anyway)
            if got == 1:
                break
            if got is None:
                raise SchemaError(f"could not take the upgrade lock {name!r}")
            if time.monotonic() >= deadline:
                raise SchemaError(
                    f"another process has held the upgrade lock {name!r} for over {wait:.0f}s;"
                    " let its upgrade finish, then run `wxbot init-db` again"
                )
            log.info("waiting for another process's schema upgrade (lock %r)", name)
        try:
            yield conn
        finally:
            try:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": name})
                conn.rollback()
            except DBAPIError:  # a connection that cannot release dies, and its lock with it
                conn.invalidate()


def check_before_serving(engine: Engine) -> None:
    """Refuse to serve a schema this release cannot use (missing, behind, not wxbot's) with
    a SchemaError: served anyway, every message touching a table or column it lacks got the
    apology. A newer schema is served (migrations only add). A database that does not
    answer yet is no reason to stop: it may start after us, and /healthz says 503 until it
    answers. Run once per start (gunicorn: in the master before it forks)."""
    where = display_url(engine.url)
    try:
        status = schema_status(engine)
    except DBAPIError as exc:
        log.warning("database at %s unreachable at start-up: %s", where, database_error(exc))
        return
    if status.state == NEWER:
        log.warning("%s", status.message)
    elif status.state != CURRENT:
        raise SchemaError(f"{where}: {status.message}")


def require_schema(engine: Engine) -> None:
    """For commands that read or write wxbot's tables (``wxbot kb``, ``wxbot sessions``): a
    SchemaError in one line when the database cannot be reached or its schema is missing,
    behind or not wxbot's, instead of a traceback ending in "no such table"."""
    where = display_url(engine.url)
    try:
        status = schema_status(engine)
    except DBAPIError as exc:
        raise SchemaError(f"database error at {where}: {database_error(exc)}") from None
    if status.state not in (CURRENT, NEWER):
        raise SchemaError(f"{where}: {status.message}")


def database_error(exc: BaseException) -> str:
    """A driver error in one line: "(2003, \"Can't connect to MySQL server ...\")"."""
    orig = getattr(exc, "orig", None) or exc
    hide_sql_parameters(orig)  # printed by the CLI, not only logged
    return redact(" ".join(str(orig).split()))


def schema_drift(engine: Engine) -> list[str]:
    """What differs between wxbot's tables and this release's models, one line each (an
    index or column dropped or changed by hand). Other applications' tables are ignored."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata())
    return [line for diff in diffs if (line := _describe(diff))]


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column changes come as a list of tuples
        diff = diff[0]
    kind = diff[0]
    if kind == "remove_table":
        return ""  # not wxbot's (alembic_version, another application's)
    if kind == "add_table":
        return f"table {diff[1].name} is missing"
    if kind in ("add_index", "add_constraint"):
        index = diff[1]
        unique = "unique " if getattr(index, "unique", False) else ""
        return f"{unique}index {index.name} on {index.table.name} is missing"
    if kind in ("remove_index", "remove_constraint"):
        return f"index {diff[1].name} on {diff[1].table.name} is not in this release's schema"
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name} is missing"
    if kind == "remove_column":
        return f"column {diff[2]}.{diff[3].name} is not in this release's schema"
    if kind.startswith("modify_"):
        return f"column {diff[2]}.{diff[3]} differs ({kind[7:]}: {diff[5]!r}, expected {diff[6]!r})"
    return f"{kind}: {diff[1:]!r}"
