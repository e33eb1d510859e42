"""wxbot on the MySQL servers operators run, not only on this MariaDB's defaults.

Hosted MySQL (self-hosted 5.7/8.0, Alibaba Cloud RDS, Tencent CDB, PolarDB) differs from our
MariaDB 10.11 in its sql_mode, the character set of an old database, its time zone, how soon
it closes idle connections and what a failover looks like. Everything here is session-level
(URL options the driver applies on connect, triggers in a scratch database): nothing of the
shared server's configuration changes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from tests.conftest import MYSQL_SERVER_URL, FakeClock, mysql_error
from tests.helpers import content, say
from wxbot import create_app, db
from wxbot.database_clock import database_time
from wxbot.db import make_engine, transaction
from wxbot.dialog.context import seen
from wxbot.migrations.schema import upgrade
from wxbot.qa import learning

TOKEN = "m" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MYSQL_80_SQL_MODE = (
    "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
)
# ANSI: ANSI_QUOTES (double quotes name identifiers), PIPES_AS_CONCAT, IGNORE_SPACE,
# REAL_AS_FLOAT (and on MySQL, not MariaDB, ONLY_FULL_GROUP_BY); NO_BACKSLASH_ESCAPES: a backslash is an ordinary
# character in string literals, so the driver must escape quotes by doubling them.
ANSI_SQL_MODE = "ANSI,ONLY_FULL_GROUP_BY,NO_BACKSLASH_ESCAPES,STRICT_ALL_TABLES"
SQL_MODES = {"mysql-8.0-default": MYSQL_80_SQL_MODE, "ansi-no-backslash-escapes": ANSI_SQL_MODE}
# a quote, a backslash, double quotes, an emoji and a CJK character outside the BMP
TRICKY = 'it\'s \\ "引号" 😀 𠀀'


def _require_mysql() -> None:
    error = mysql_error()
    if error is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"MariaDB/MySQL is required in CI but unreachable: {error}")
    pytest.skip(f"MySQL unreachable: {error}")


def _with(url: str, **query: str) -> str:
    """``url`` with these driver options (PyMySQL applies sql_mode and init_command right
    after connecting, as a server whose defaults they are would start every session)."""
    return make_url(url).update_query_dict(query).render_as_string(hide_password=False)


def _create_database(charset: str) -> str:
    name = f"wxbot_t_{uuid.uuid4().hex[:12]}"
    server = create_engine(MYSQL_SERVER_URL)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET {charset}"))
    server.dispose()
    return make_url(MYSQL_SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    server = create_engine(MYSQL_SERVER_URL)
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {make_url(url).database}"))
    server.dispose()


@pytest.fixture(scope="module")
def shared_url() -> Iterator[str]:
    """One database for this module's tests, created and migrated on a session in MySQL
    8.0's default sql_mode plus ANSI and NO_BACKSLASH_ESCAPES: wxbot's first start there."""
    _require_mysql()
    url = _create_database("utf8mb4")
    try:
        engine = make_engine(_with(url, sql_mode=f"{MYSQL_80_SQL_MODE},{ANSI_SQL_MODE}"))
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        _drop_database(url)


@pytest.fixture
def scratch() -> Iterator[Callable[[str], str]]:
    """Fresh databases of a given character set, dropped after the test (and after the apps
    on them: ``make`` depends on this fixture, so it is torn down first)."""
    _require_mysql()
    made: list[str] = []

    def create(charset: str) -> str:
        made.append(_create_database(charset))
        return made[-1]

    yield create
    for url in made:
        _drop_database(url)


@pytest.fixture
def make(scratch: Any) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(url: str, **overrides: Any) -> Flask:
        config = {"database_url": url, "clock": FakeClock(), "admin_token": TOKEN, **overrides}
        app = create_app(config)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()


def _teach(app: Flask, question: str, answer: str) -> int:
    resp = app.test_client().post(
        "/admin/api/knowledge", json={"questions": [question], "answer": answer}, headers=AUTH
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return int(resp.get_json()["id"])


def _unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]} {TRICKY}"


def _pooled(engine: Engine, run: Callable[[Any], None]) -> int:
    """Run ``run`` on the DBAPI connection of every connection in the pool (checked out all at
    once, so each is a different one); how many there were."""
    held = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]
    try:
        for conn in held:
            run(conn.connection.dbapi_connection)
    finally:
        for conn in held:
            conn.close()
    return len(held)


def _execute(dbapi_connection: Any, sql: str) -> Any:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


# --- sql_mode -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(SQL_MODES.values()), ids=list(SQL_MODES))
def test_messages_and_reports_under_another_servers_sql_mode(shared_url, make, mode) -> None:  # type: ignore[no-untyped-def]
    """Quotes and backslashes in what users write and admins teach survive, and every
    GROUP BY / aggregate report (users, learned questions, statistics, flow funnels, LLM
    usage) is valid under ONLY_FULL_GROUP_BY."""
    app = make(_with(shared_url, sql_mode=mode))
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    with engine.connect() as conn:
        session_mode = conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
    assert "ONLY_FULL_GROUP_BY" in session_mode

    user_a, user_b = f"o_a{uuid.uuid4().hex[:12]}", f"o_b{uuid.uuid4().hex[:12]}"
    question, answer = _unique("q"), _unique("a")
    entry_id = _teach(app, question, answer)
    assert content(say(bot, user_a, question)) == answer
    unknown = f"毫无关系 {uuid.uuid4().hex} ''zz'' \\ \"x\" 🙂"  # like nothing taught
    say(bot, user_b, unknown)
    wording = _unique("另一种问法")
    with transaction(engine) as conn:
        for openid in (user_a, user_b):
            learning.record_pick(conn, openid, wording, entry_id, now=1.0, min_users=2)

    client = app.test_client()
    unanswered = client.get("/admin/api/unanswered?per_page=100", headers=AUTH).get_json()
    assert unknown in [item["question"] for item in unanswered["items"]]
    learned = client.get("/admin/api/learned?per_page=100", headers=AUTH).get_json()
    assert {"question": wording, "users": 2} in [
        {"question": i["question"], "users": i["users"]} for i in learned["items"]
    ]
    stats = client.get("/admin/api/stats", headers=AUTH)
    assert stats.status_code == 200, stats.get_data(as_text=True)
    assert stats.get_json()["sessions"]["users"] >= 2
    users = client.get("/admin/api/sessions", headers=AUTH)
    assert users.status_code == 200, users.get_data(as_text=True)
    history = client.get(f"/admin/api/sessions/{user_a}/history", headers=AUTH).get_json()
    assert [m["content"] for m in history["messages"]][:2] == [question, answer]


# --- character sets -----------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["utf8", "latin1"])
def test_a_url_asking_for_another_connection_charset_still_carries_emoji(  # type: ignore[no-untyped-def]
    shared_url, make, charset, caplog
) -> None:
    """``?charset=utf8`` (utf8mb3, in many a tutorial's URL): every message with an emoji
    got the apology ("Incorrect string value"); latin1 could not carry Chinese at all."""
    with caplog.at_level(logging.WARNING, logger="wxbot.db"):
        app = make(_with(shared_url, charset=charset))
    assert f"charset={charset}" in caplog.text
    question, answer = _unique("charset q"), _unique("charset a")
    _teach(app, question, answer)
    assert content(say(app.extensions["wxbot.bot"], "o_charset", question)) == answer


@pytest.mark.parametrize("charset", ["latin1", "utf8"])
def test_a_database_created_latin1_or_utf8_gets_utf8mb4_tables(scratch, make, charset) -> None:  # type: ignore[no-untyped-def]
    """The first start and `wxbot init-db` on an old server's database: every table and text
    column (later migrations' too) is utf8mb4 with a primary key (sql_require_primary_key),
    and emoji survive."""
    url = scratch(charset)
    app = make(url)  # the first start: no schema yet
    engine = app.extensions["wxbot.engine"]
    upgrade(engine)
    with engine.connect() as conn:
        schema = make_url(url).database
        tables = conn.execute(
            text(
                "SELECT table_name, table_collation FROM information_schema.tables"
                " WHERE table_schema = :s AND table_name != 'alembic_version'"
            ),
            {"s": schema},
        ).all()
        columns = conn.execute(
            text(
                "SELECT table_name, column_name, character_set_name FROM information_schema.columns"
                " WHERE table_schema = :s AND character_set_name IS NOT NULL"
                " AND table_name != 'alembic_version'"
            ),
            {"s": schema},
        ).all()
        keyless = conn.execute(
            text(
                "SELECT t.table_name FROM information_schema.tables t WHERE t.table_schema = :s"
                " AND NOT EXISTS (SELECT 1 FROM information_schema.table_constraints k"
                " WHERE k.table_schema = t.table_schema AND k.table_name = t.table_name"
                " AND k.constraint_type = 'PRIMARY KEY')"
            ),
            {"s": schema},
        ).all()
    assert len(tables) > 20 and columns
    assert [t for t in tables if not t.table_collation.startswith("utf8mb4")] == []
    assert [c for c in columns if c.character_set_name != "utf8mb4"] == []
    assert keyless == []
    question, answer = _unique("old db q"), _unique("old db a")
    _teach(app, question, answer)
    assert content(say(app.extensions["wxbot.bot"], "o_old_db", question)) == answer


# --- idle connections closed by the server ------------------------------------------------


def _kill_pooled(engine: Engine) -> None:
    ids: list[int] = []
    _pooled(engine, lambda c: ids.append(int(_execute(c, "SELECT CONNECTION_ID()")[0][0])))
    killer = pymysql.connect(**_connect_args())
    try:
        for connection_id in ids:
            _execute(killer, f"KILL CONNECTION {connection_id}")
    finally:
        killer.close()


def _connect_args() -> dict[str, Any]:
    url = make_url(MYSQL_SERVER_URL)
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 3306,
        "user": url.username or "root",
        "password": url.password or "",
    }


@pytest.mark.parametrize("closed_by", ["kill", "wait_timeout"])
def test_connections_closed_while_idle_are_replaced_before_use(  # type: ignore[no-untyped-def]
    shared_url, make, monkeypatch, caplog, closed_by
) -> None:
    """Hosted MySQL closes connections idle for wait_timeout (60-300 s). Before, /healthz
    said 503 "database unreachable" after every quiet spell, and the first message needed a
    retry (reads without retries failed outright)."""
    if closed_by == "wait_timeout":
        monkeypatch.setattr(db, "IDLE_PING_AFTER", 1.0)
        app = make(_with(shared_url, init_command="SET SESSION wait_timeout = 1"))
    else:
        monkeypatch.setattr(db, "IDLE_PING_AFTER", 0.0)
        app = make(shared_url)
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    client = app.test_client()
    question, answer = _unique("idle q"), _unique("idle a")
    _teach(app, question, answer)
    assert content(say(bot, "o_idle", question)) == answer
    assert client.get("/healthz").status_code == 200
    if closed_by == "wait_timeout":
        time.sleep(2.5)  # the server closes every pooled connection meanwhile
    else:
        _kill_pooled(engine)

    with caplog.at_level(logging.INFO, logger="wxbot"):
        health = client.get("/healthz")
        assert health.status_code == 200, health.get_data(as_text=True)
        assert content(say(bot, "o_idle", question)) == answer
        assert client.get("/admin/api/sessions/o_idle", headers=AUTH).status_code == 200
    assert "transient database error" not in caplog.text  # replaced, not failed and retried


def test_a_connection_in_steady_use_is_not_pinged(shared_url, make, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The idle check costs the message path no round trip while messages keep coming."""
    app = make(shared_url)
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    pings: list[float] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(1) or ping(c))
    say(bot, "o_steady", "你好")
    say(bot, "o_steady", "你好")
    assert pings == []
    monkeypatch.setattr(db, "IDLE_PING_AFTER", 0.0)  # every checkout now counts as idle
    say(bot, "o_steady", "你好")
    assert pings


# --- failover and full servers ------------------------------------------------------------

READ_ONLY_1290 = (
    "The MySQL server is running with the --read-only option so it cannot execute this statement"
)


@pytest.fixture
def old_primary(shared_url) -> Iterator[Callable[[Any, str], None]]:  # type: ignore[no-untyped-def]
    """Marks a connection as one to the demoted primary: from then on its writes fail as
    there. ``1290`` / ``1836``: a trigger raises that server error on this session's inserts
    of a dedup record; ``1792``: the session's transactions become READ ONLY (the server's
    own error)."""
    engine = create_engine(shared_url)
    with engine.begin() as conn:
        for code, message in (("1290", READ_ONLY_1290), ("1836", "Running in read-only mode")):
            conn.exec_driver_sql(
                f"CREATE TRIGGER wxbot_t_read_only_{code} BEFORE INSERT ON seen_messages"
                f" FOR EACH ROW IF @wxbot_read_only = {code} THEN"
                f" SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {code}, MESSAGE_TEXT = '{message}';"
                " END IF"
            )

    def mark(dbapi_connection: Any, code: str) -> None:
        if code == "1792":
            _execute(dbapi_connection, "SET SESSION TRANSACTION READ ONLY")
        else:
            _execute(dbapi_connection, f"SET @wxbot_read_only = {code}")

    try:
        yield mark
    finally:
        with engine.begin() as conn:
            for code in ("1290", "1836"):
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS wxbot_t_read_only_{code}")
        engine.dispose()


@pytest.mark.parametrize("code", ["1290", "1792", "1836"])
def test_a_primary_turned_read_only_by_a_failover_is_left_for_a_new_connection(  # type: ignore[no-untyped-def]
    shared_url, make, old_primary, code
) -> None:
    """Before, the read-only error got the user the apology at once, and the same pooled
    connections (to the demoted primary) were handed out again. Now every pooled connection
    is dropped and the message retried on a new one (the new primary)."""
    app = make(shared_url)
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    openid = f"o_failover_{code}"
    question, answer = _unique(f"failover {code} q"), _unique("failover a")
    _teach(app, question, answer)
    assert content(say(bot, openid, question)) == answer
    marked = _pooled(engine, lambda c: old_primary(c, code))
    assert marked >= 1

    reply = say(bot, openid, question)

    assert content(reply) == answer
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT @wxbot_read_only").scalar() is None  # a new one
        stored = conn.execute(
            select(func.count()).select_from(seen).where(seen.c.openid == openid)
        ).scalar_one()
    assert stored == 2  # the warm-up and this message, each once


@pytest.mark.parametrize(
    "code, message",
    [
        (1040, "Too many connections"),
        (1203, "User wxbot already has more than 'max_user_connections' active connections"),
        (1226, "User 'wxbot' has exceeded the 'max_user_connections' resource (current value: 30)"),
    ],
)
def test_a_server_out_of_connections_is_retried(shared_url, make, code, message) -> None:  # type: ignore[no-untyped-def]
    """max_connections (1040) was retried; the account's limit, which hosted MySQL sets per
    account (1203, 1226), got the user the apology."""
    app = make(shared_url)
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    question, answer = _unique(f"full {code} q"), _unique("full a")
    _teach(app, question, answer)
    engine.dispose()  # the message needs a new connection
    this_thread = threading.current_thread()
    refused: list[int] = []

    @event.listens_for(engine, "do_connect")
    def refuse_once(*_args: Any) -> None:
        if threading.current_thread() is this_thread and not refused:
            refused.append(code)
            raise pymysql.err.OperationalError(code, message)

    assert content(say(bot, "o_full", question)) == answer
    assert refused == [code]


# --- time zone and isolation --------------------------------------------------------------


@pytest.mark.parametrize("zone", ["+08:00", "-05:00"])
def test_the_database_clock_ignores_the_servers_time_zone(shared_url, zone) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(_with(shared_url, init_command=f"SET time_zone = '{zone}'"))
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@SESSION.time_zone").scalar() == zone
            assert abs(database_time(conn) - time.time()) < 3600  # off by the zone's hours
    finally:
        engine.dispose()


def test_connections_are_read_committed_on_a_repeatable_read_server(shared_url) -> None:  # type: ignore[no-untyped-def]
    """MySQL's default is REPEATABLE READ: every connection of ours, a replaced one too,
    runs READ COMMITTED (new users' first messages take no gap locks)."""
    repeatable = "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"
    engine = make_engine(_with(shared_url, init_command=repeatable))
    try:
        with engine.connect() as conn:
            assert conn.get_isolation_level() == "READ COMMITTED"
            conn.invalidate()
        with engine.connect() as conn:
            assert conn.get_isolation_level() == "READ COMMITTED"
    finally:
        engine.dispose()
