"""The message path on mysqlclient (``mysql+mysqldb://``), the C driver an operator may pick
where it is installed (scripts/test.sh installs it): the same two round trips as on PyMySQL,
everything committed, no transaction left open on the pooled connection, retries answered
from the dedup record. mysqlclient keeps no server status flags, so the COMMIT that ends the
message's last query is trusted on the strength of its result alone (wxbot/db.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.helpers import content
from wxbot.dialog.words import NOTHING_TO_CANCEL
from wxbot.i18n import translate
from wxbot.messages.inbound import Inbound

try:
    import MySQLdb.connections
except ImportError:  # pragma: no cover - scripts/test.sh installs it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("mysqlclient is not installed", allow_module_level=True)


@pytest.fixture
def c_app(mysql_database_url: str, make_app: Any) -> Any:  # type: ignore[no-untyped-def]
    # make_app upgrades the schema through its first app: build that one on the URL given,
    # then the app under test on the same database through mysqlclient.
    make_app()
    return make_app(database_url=mysql_database_url.replace("+pymysql", "+mysqldb", 1))


@pytest.fixture
def db_url(mysql_database_url: str) -> str:
    return mysql_database_url  # MySQL only: this file is about a MySQL driver


@pytest.fixture
def sent() -> Iterator[list[str]]:
    """Every command the mysqlclient connections send: queries and driver-level COMMITs."""
    commands: list[str] = []
    connection = MySQLdb.connections.Connection
    query, commit = connection.query, connection.commit

    def counted_query(self, sql):  # type: ignore[no-untyped-def]
        commands.append(sql.decode(errors="replace") if isinstance(sql, bytes) else str(sql))
        return query(self, sql)

    def counted_commit(self):  # type: ignore[no-untyped-def]
        commands.append("COMMIT (driver)")
        return commit(self)

    connection.query, connection.commit = counted_query, counted_commit  # type: ignore[method-assign]
    try:
        yield commands
    finally:
        connection.query, connection.commit = query, commit  # type: ignore[method-assign]


def _ask(bot: Any, openid: str, msg_id: str, words: str = "取消") -> Any:
    """(取消 with nothing to cancel: a reply of the dialogue's own, no after-commit writes)"""
    return bot.handle(
        Inbound(
            openid=openid, kind="text", text=words, msg_id=msg_id, dedup_key=f"{openid}:{msg_id}"
        )
    )


def _stored(app: Any, openid: str, dedup_key: str) -> tuple[int, int, str, int]:
    """(no transaction open on the pooled connection: 0 or 1, the context's version, the
    dedup record's status and its deliveries), read on the engine's own pool."""
    with app.extensions["wxbot.engine"].connect() as conn:
        in_transaction = conn.execute(text("SELECT @@in_transaction")).scalar_one()
        version = conn.execute(
            text("SELECT version FROM contexts WHERE openid = :o"), {"o": openid}
        ).scalar_one()
        status, attempts = conn.execute(
            text("SELECT status, attempts FROM seen_messages WHERE dedup_key = :k"),
            {"k": dedup_key},
        ).one()
    return int(in_transaction), int(version), str(status), int(attempts)


def test_the_engine_runs_on_mysqlclient(c_app) -> None:  # type: ignore[no-untyped-def]
    assert c_app.extensions["wxbot.engine"].dialect.driver == "mysqldb"


def test_a_known_users_question_is_two_round_trips_and_committed(c_app, sent) -> None:  # type: ignore[no-untyped-def]
    bot = c_app.extensions["wxbot.bot"]
    _ask(bot, "o_c", "1")
    sent.clear()
    reply = _ask(bot, "o_c", "2")
    assert content(reply) == translate(NOTHING_TO_CANCEL, "zh")
    assert len(sent) == 2, sent  # lock + reads; dedup record + context + COMMIT
    assert sent[-1].rstrip().endswith("COMMIT")
    assert _stored(c_app, "o_c", "o_c:2") == (0, 2, "done", 1)


def test_a_retry_is_answered_from_the_dedup_record(c_app) -> None:  # type: ignore[no-untyped-def]
    bot = c_app.extensions["wxbot.bot"]
    first = content(_ask(bot, "o_r", "1"))
    again = content(_ask(bot, "o_r", "1"))
    assert again == first
    assert _stored(c_app, "o_r", "o_r:1") == (0, 1, "done", 2)  # processed once
