"""The test suite's shortcut to an upgraded MySQL database:
``wxbot.migrations.schema.upgrade`` runs every migration (0.2–0.3 s of DDL on MariaDB), and
about a thousand tests each start from a fresh database. The schema (every table's
``SHOW CREATE TABLE`` and the rows the migrations seed) is taken once per test process from a
really upgraded database, then replayed into each empty one on one raw connection (about a fifth
of the time). tests/test_mysql_schema_clone.py checks that a replayed database is the
upgraded one, column for column and index for index.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade


@dataclass(frozen=True)
class Schema:
    tables: list[str]  # CREATE TABLE statements, as the server shows them
    rows: list[tuple[str, list[str], list[tuple[Any, ...]]]]  # (table, columns, rows) seeded


_schema: Schema | None = None
_lock = threading.Lock()


def _capture(server_url: str) -> Schema:
    name = f"wxbot_tpl_{uuid.uuid4().hex[:12]}"
    server = create_engine(server_url)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    try:
        engine = make_engine(make_url(server_url).set(database=name).render_as_string(False))
        try:
            upgrade(engine)
            with engine.connect() as conn:
                names = conn.execute(text("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'"))
                tables = sorted(row[0] for row in names)
                ddl = [conn.execute(text(f"SHOW CREATE TABLE `{t}`")).one()[1] for t in tables]
                rows = []
                for table in tables:
                    result = conn.execute(text(f"SELECT * FROM `{table}`"))
                    found = [tuple(r) for r in result]
                    if found:
                        rows.append((table, list(result.keys()), found))
        finally:
            engine.dispose()
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        server.dispose()
    return Schema(ddl, rows)


def schema(server_url: str) -> Schema:
    global _schema
    with _lock:
        if _schema is None:
            _schema = _capture(server_url)
        return _schema


def replay(engine: Engine, server_url: str) -> bool:
    """Give an empty MySQL database the upgraded schema; False (nothing done) if it is not
    MySQL or not empty: the caller upgrades it as usual."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return False
    with engine.connect() as conn:
        if conn.execute(text("SHOW TABLES")).first() is not None:
            return False
    wanted = schema(server_url)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
        for ddl in wanted.tables:
            cursor.execute(ddl)
        for table, columns, rows in wanted.rows:
            names = ", ".join(f"`{c}`" for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO `{table}` ({names}) VALUES ({marks})", rows)
        cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        raw.commit()
    finally:
        raw.close()
    return True
