"""Shared fixtures: every DB test runs on SQLite and on the real MariaDB/MySQL.

MySQL: each test gets a fresh database on WXBOT_TEST_MYSQL_URL (default: root@127.0.0.1:3306)
that is dropped afterwards, so parallel runs and helpers never see each other's rows.
When CI=true an unreachable MySQL is an error, not a skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.mysql_schema import replay
from wxbot import create_app
from wxbot.migrations.schema import upgrade
from wxbot.stats import DailyCounters

MYSQL_SERVER_URL = os.environ.get(
    "WXBOT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
)
# Opt-in: a server default sql_mode for the MySQL test databases, e.g. MySQL 8.0's
# (WXBOT_TEST_MYSQL_SQL_MODE=ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,...): every connection
# starts in it, as on a server configured so. Unset: the server's own default.
MYSQL_SQL_MODE = os.environ.get("WXBOT_TEST_MYSQL_SQL_MODE")


class FakeClock:
    """A controllable clock: tests move time with advance()."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _mysql_reachable() -> str | None:
    try:
        engine = create_engine(MYSQL_SERVER_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc)


_MYSQL_ERROR: list[str | None] = []


def mysql_error() -> str | None:
    if not _MYSQL_ERROR:
        _MYSQL_ERROR.append(_mysql_reachable())
    return _MYSQL_ERROR[0]


@pytest.fixture
def mysql_database_url() -> Iterator[str]:
    """A fresh, empty MySQL database; dropped after the test."""
    error = mysql_error()
    if error is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB/MySQL is required in CI but unreachable: {error}")
        pytest.skip(f"MySQL unreachable: {error}")
    name = f"wxbot_t_{uuid.uuid4().hex[:12]}"
    server = create_engine(MYSQL_SERVER_URL)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    url = make_url(MYSQL_SERVER_URL).set(database=name)
    if MYSQL_SQL_MODE is not None:  # PyMySQL and mysqlclient set it right after connecting
        url = url.update_query_dict({"sql_mode": MYSQL_SQL_MODE})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        server.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"
    return request.getfixturevalue("mysql_database_url")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(db_url: str, clock: FakeClock, tmp_path) -> Iterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    """Build apps on the test database (schema upgraded); several may share it."""
    apps = []

    def build(**overrides: Any):  # type: ignore[no-untyped-def]
        config: dict[str, Any] = {"database_url": db_url, "clock": clock}
        config.update(overrides)
        app = create_app(config)
        app.config["TESTING"] = True
        if not apps:
            engine = app.extensions["wxbot.engine"]
            # MySQL: the upgraded schema replayed, not migrated (tests/mysql_schema.py)
            if MYSQL_SQL_MODE is not None or not replay(engine, MYSQL_SERVER_URL):
                upgrade(engine)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app()


@pytest.fixture
def bot(app):  # type: ignore[no-untyped-def]
    return app.extensions["wxbot.bot"]


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture(autouse=True)
def counts_written_by_the_end() -> Iterator[None]:
    """Every DailyCounters a test makes (each Bot has one) has written its counts once the
    test and its fixtures are done. A Bot a test built and never closed kept its counts for
    the counters' atexit hook, which wrote them when pytest exited, into a database dropped
    long before: "writing N daily counters failed; kept for later" at the end of the suite."""
    made: list[DailyCounters] = []
    real_init = DailyCounters.__init__

    def init(self: DailyCounters, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(self)

    DailyCounters.__init__ = init  # type: ignore[method-assign]
    try:
        yield  # (autouse: set up before, so torn down after, the test's other fixtures)
    finally:
        DailyCounters.__init__ = real_init  # type: ignore[method-assign]
    deadline = time.monotonic() + 2.0  # a write under way in the counters' own thread
    while any(c.waiting() for c in made) and time.monotonic() < deadline:
        time.sleep(0.02)
    left = [c for c in made if c.waiting()]
    made.clear()
    if left:
        pytest.fail(
            f"{len(left)} daily counters still hold counts at the end of the test: close the"
            " Bot it built (bot.close() writes them) before its database goes",
            pytrace=False,
        )
