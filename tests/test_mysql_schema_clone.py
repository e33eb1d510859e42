"""The suite's shortcut (tests/mysql_schema.py) gives exactly the schema ``upgrade`` gives:
every table, column, index and foreign key, the seeded rows, and a schema the app's own
checks call current and undrifted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_SERVER_URL
from tests.mysql_schema import replay
from wxbot.db import make_engine
from wxbot.migrations.guard import CURRENT, schema_drift, schema_status
from wxbot.migrations.schema import upgrade

SHAPE = {
    "columns": "SELECT table_name, column_name, ordinal_position, column_type, is_nullable,"
    " column_default, extra, character_set_name, collation_name FROM information_schema.columns"
    " WHERE table_schema = :db",
    "indexes": "SELECT table_name, index_name, seq_in_index, column_name, non_unique, sub_part"
    " FROM information_schema.statistics WHERE table_schema = :db",
    "keys": "SELECT table_name, constraint_name, column_name, referenced_table_name,"
    " referenced_column_name FROM information_schema.key_column_usage WHERE table_schema = :db",
    "tables": "SELECT table_name, engine, table_collation FROM information_schema.tables"
    " WHERE table_schema = :db",
}


@pytest.fixture
def two_databases(mysql_database_url: str) -> Iterator[tuple[str, str]]:
    server = create_engine(MYSQL_SERVER_URL)
    other = f"{make_url(mysql_database_url).database}_b"
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {other} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    try:
        yield (
            mysql_database_url,
            make_url(mysql_database_url).set(database=other).render_as_string(False),
        )
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {other}"))
        server.dispose()


def shape(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        db = conn.execute(text("SELECT DATABASE()")).scalar()
        found: dict[str, Any] = {
            k: sorted(map(tuple, conn.execute(text(q), {"db": db}))) for k, q in SHAPE.items()
        }
        for (table,) in conn.execute(text("SHOW TABLES")).all():
            rows = conn.execute(text(f"SELECT * FROM `{table}`"))
            found[f"rows of {table}"] = sorted(repr(tuple(map(_untimed, row))) for row in rows)
    return found


def _untimed(value: Any) -> Any:
    """The migrations stamp their seeded rows with the time they ran."""
    return "<time>" if isinstance(value, float) and value > 1e9 else value


def test_a_replayed_database_is_an_upgraded_one(two_databases: tuple[str, str]) -> None:
    upgraded, replayed = (make_engine(url) for url in two_databases)
    try:
        upgrade(upgraded)
        assert replay(replayed, MYSQL_SERVER_URL)
        assert shape(replayed) == shape(upgraded)
        assert schema_status(replayed).state == CURRENT
        assert not schema_drift(replayed)
        assert not replay(replayed, MYSQL_SERVER_URL)  # not empty: left to upgrade()
        upgrade(replayed)  # and upgrade finds nothing to do
        assert shape(replayed) == shape(upgraded)
    finally:
        upgraded.dispose()
        replayed.dispose()
