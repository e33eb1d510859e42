"""Upgrading a live bot in place, as operators do it: a database at each earlier revision,
filled through the tables as they were then with what a bot in use holds (knowledge with
several questions, operator synonyms, unanswered questions, users mid-flow, LLM memories,
counters), upgraded to head; then the bot answers from it and the admin API shows it intact.
And what a migration that dies half-way (MariaDB/MySQL DDL is not transactional) leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine

from tests.helpers import content, say
from wxbot.db import make_engine
from wxbot.migrations.guard import SchemaError, schema_status
from wxbot.migrations.schema import code_revision, current_revision, upgrade
from wxbot.qa.text import question_key

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "admin-token-for-upgrades"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# every revision an operator's database may be at, oldest first (branches included)
REVISIONS = [
    "0001_core",
    "0002_knowledge",
    "0003_services",
    "0004_merge",
    "0005_answers",
    "0006_llm",
    "0007_flows",
    "0009_console",
    "0010_merge",
    "0011_answers2",
    "0012_long_text",
    "0013_sms_quotas",
    "0014_count_batches",
    "0015_seen_status_index",
    "0016_unanswered_order",
]
ANSWER = "请拨打 95568 挂失，24 小时有人接听 😀🎉\n第二行：带“引号”和 'quotes' 与 \\ 反斜杠"
QUESTIONS = ["银行卡丢了怎么办", "卡不见了怎么挂失", "信用卡被偷了😱"]
LONG_TURN = "我想问一下营业时间🙂" * 1800  # ~56 KB of utf8mb4 in one turn: near TEXT's limit
NOW = 1_800_000_000.0  # the conftest clock's start


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _fill_as_at(engine: Engine) -> set[str]:
    """What a bot in use holds, written through the tables the revision has (returned)."""
    tables = _tables(engine)
    columns = {t: {c["name"] for c in inspect(engine).get_columns(t)} for t in tables}
    history = json.dumps(
        [["user", LONG_TURN, NOW - 60], ["bot", "周一至周五 9:00-17:00", NOW - 59]],
        ensure_ascii=False,
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contexts (openid, state, slots, history, rounds, attempts,"
                " created_at, updated_at, expires_at, version) VALUES"
                " ('o_waiting', 'WAIT_WEATHER_CITY', :slots, '[]', 1, 0, :t, :t, :exp, 3),"
                " ('o_talker', 'WAIT_QUERY', '{}', :history, 1, 0, :t, :t, :exp, 7)"
            ),
            {
                "slots": json.dumps({"备注": "北京 😀"}, ensure_ascii=False),
                "history": history,
                "t": NOW - 60,
                "exp": NOW + 500,
            },
        )
        conn.execute(
            text(
                "INSERT INTO seen_messages (dedup_key, openid, reply, status, attempts, created_at)"
                " VALUES ('o_talker:1', 'o_talker', :reply, 'done', 1, :t),"
                " ('o_talker:2', 'o_talker', NULL, 'pending', 1, :t)"
            ),
            {"reply": "<xml>回答😀</xml>", "t": NOW - 30},
        )
        if "kb_entries" in tables:
            conn.execute(
                text(
                    "INSERT INTO kb_entries (id, answer, source, source_ref, taught_by,"
                    " created_at, updated_at, hits, last_hit_at)"
                    " VALUES (1, :a, 'api', NULL, 'o_admin', :t, :t, 4, NULL)"
                ),
                {"a": ANSWER, "t": NOW - 3600},
            )
            for position, question in enumerate(QUESTIONS):
                conn.execute(
                    text(
                        "INSERT INTO kb_questions (entry_id, question, qkey, position)"
                        " VALUES (1, :q, :k, :p)"
                    ),
                    {"q": question, "k": question_key(question), "p": position},
                )
            conn.execute(
                text(
                    "INSERT INTO kb_unanswered (qkey, question, count, first_asked_at,"
                    " last_asked_at) VALUES (:k, :q, 5, :t, :t)"
                ),
                {"k": question_key("公积金怎么提取🏠"), "q": "公积金怎么提取🏠", "t": NOW - 100},
            )
            conn.execute(text("UPDATE kb_meta SET version = version + 1 WHERE id = 1"))
        if "phone_bindings" in tables:
            conn.execute(
                text("INSERT INTO phone_bindings VALUES ('o_talker', '13800138000', :t)"),
                {"t": NOW - 10},
            )
        if "kb_synonyms" in tables:
            conn.execute(
                text(
                    "INSERT INTO kb_synonyms (words, source, created_at, updated_at)"
                    " VALUES ('挂失|冻结卡片', 'api', :t, :t)"
                ),
                {"t": NOW - 50},
            )
            assert "language" in columns["kb_entries"]
        if "memories" in tables:
            conn.execute(
                text(
                    "INSERT INTO memories (openid, history, history_rounds, recent_calls,"
                    " created_at, updated_at) VALUES ('o_talker', :h, 3, '[]', :t, :t)"
                ),
                {
                    "h": json.dumps(
                        [["user", LONG_TURN], ["assistant", "好的👌"]], ensure_ascii=False
                    ),
                    "t": NOW - 60,
                },
            )
            conn.execute(
                text(
                    "INSERT INTO llm_answers (openid, question, answer, model, created_at,"
                    " entry_id) VALUES ('o_talker', '天为什么是蓝的？', :a, 'qwen-plus', :t, NULL)"
                ),
                {"a": "因为瑞利散射🌤", "t": NOW - 60},
            )
        if "user_languages" in tables:
            conn.execute(
                text("INSERT INTO user_languages VALUES ('o_english', 'en', :x, :t)"),
                {"x": True, "t": NOW - 60},
            )
        if "daily_counts" in tables:
            conn.execute(text("INSERT INTO daily_counts VALUES ('2027-01-15', 'messages', 42)"))
    return tables


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_bot_upgraded_from_every_revision_answers_from_its_data(
    make_app, db_url: str, revision: str
) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine, revision)
    had = _fill_as_at(engine)
    engine.dispose()
    app = make_app(admin_token=TOKEN)  # upgrades to head
    engine = app.extensions["wxbot.engine"]
    assert current_revision(engine) == code_revision()
    bot = app.extensions["wxbot.bot"]
    client = app.test_client()

    # the user waiting for a city when the upgrade came can still leave the flow
    assert "取消" in content(say(bot, "o_waiting", "取消"))
    if "kb_entries" not in had:
        return
    for question in QUESTIONS:
        assert content(say(bot, f"o_new_{question_key(question)[:8]}", question)) == ANSWER
    entry = client.get("/admin/api/knowledge/1", headers=AUTH).get_json()
    assert entry["answer"] == ANSWER
    assert [q["question"] if isinstance(q, dict) else q for q in entry["questions"]] == QUESTIONS
    unanswered = client.get("/admin/api/unanswered", headers=AUTH).get_json()
    assert [u["question"] for u in unanswered["items"]] == ["公积金怎么提取🏠"]
    assert unanswered["items"][0]["count"] == 5
    if "kb_synonyms" in had:  # the operator's group still widens the questions
        assert content(say(bot, "o_synonym", "卡不见了怎么冻结卡片")) == ANSWER
    if "memories" in had:
        history = client.get("/admin/api/sessions/o_talker/history", headers=AUTH).get_json()
        assert history["messages"][0]["content"] == LONG_TURN
    stats = client.get("/admin/api/stats", headers=AUTH)
    assert stats.status_code == 200, stats.get_data(as_text=True)
    assert schema_status(engine).state == "current"


# --- a migration that dies half-way -----------------------------------------------------------


class Died(BaseException):
    """The process was killed (OOM, a deploy's deadline, Ctrl-C) right after a statement."""


def _snapshot(engine: Engine) -> dict[str, Any]:
    """Every table's columns, keys, indexes and options, its row count, and the version:
    what two upgrades are compared by."""
    found: dict[str, Any] = {}
    with engine.connect() as conn:
        schema = inspect(conn)
        for name in schema.get_table_names():
            found[name] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in schema.get_columns(name)
                ],
                "primary key": schema.get_pk_constraint(name)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                    for i in schema.get_indexes(name)
                ),
                "foreign keys": sorted(
                    (f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                    for f in schema.get_foreign_keys(name)
                ),
                "options": schema.get_table_options(name),
            }
            if name != "kb_changes":  # a log: each run of 0005 and 0011 adds to it
                count = conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar()
                found[name]["rows"] = count
    if "alembic_version" in found:
        if found["alembic_version"]["rows"]:
            with engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version"))
                found["version"] = sorted(versions.scalars())
        else:  # left empty by a downgrade to base
            del found["alembic_version"]
    return found


def _upgrade_dying_after(engine: Engine, revision: str, statement: int) -> bool:
    """Upgrade to ``revision``, dying right after its ``statement``-th DDL statement (0:
    never); True if it died."""
    seen = [0]

    def after(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
            seen[0] += 1
            if seen[0] == statement:
                raise Died(sql)

    event.listen(engine, "after_cursor_execute", after)
    try:
        upgrade(engine, revision)
    except Died:
        return True
    finally:
        event.remove(engine, "after_cursor_execute", after)
        engine.dispose()  # the dead process's connections go with it
    return False


def _parents(revision: str) -> list[str]:
    from wxbot.migrations.guard import _script

    down = _script().get_revision(revision).down_revision
    return [] if down is None else [down] if isinstance(down, str) else list(down)


@pytest.mark.parametrize("revision", [*REVISIONS, "0017_alias_vote_age"])
def test_an_upgrade_killed_after_any_statement_resumes(engine: Engine, revision: str) -> None:
    """MariaDB/MySQL commit each DDL statement: a process killed inside a migration left its
    first tables or indexes without the version saying so, and every later `wxbot init-db`
    died on "Table 'sms_quotas' already exists" (or "Duplicate key name"): the operator had
    to find and drop what the dead run had made. Now the next run finishes the migration."""
    for parent in _parents(revision):
        upgrade(engine, parent)
    before = _snapshot(engine)
    upgrade(engine, revision)
    clean = _snapshot(engine)
    statement = 1
    while True:
        command_downgrade(engine, before)
        assert _snapshot(engine) == before
        died = _upgrade_dying_after(engine, revision, statement)
        left = _tables(engine) - {"alembic_version"}
        if left and current_revision(engine) is None:
            # a first init-db killed (MySQL): tables without a version are not taken for
            # wxbot's (they may be another application's); the refusal says what to do
            with pytest.raises(SchemaError, match="first `wxbot init-db` was interrupted"):
                upgrade(engine, revision)
            with engine.begin() as conn:
                for name in left:
                    conn.execute(text(f"DROP TABLE {name}"))
        upgrade(engine, revision)  # the next `wxbot init-db`, after the kill
        assert _snapshot(engine) == clean, f"died after DDL statement {statement}"
        if not died:
            break
        statement += 1


def command_downgrade(engine: Engine, before: dict[str, Any]) -> None:
    from alembic import command

    from wxbot.migrations.schema import alembic_config

    versions = before.get("version", [])
    command.downgrade(alembic_config(engine), versions[0] if len(versions) == 1 else "base")
    if len(versions) > 1:  # a branch point: back to the same heads
        for version in versions:
            upgrade(engine, version)


# --- upgrading while the bot serves -----------------------------------------------------------


def test_0012_rewrites_each_table_once(engine: Engine) -> None:
    """MariaDB/MySQL cannot retype TEXT to MEDIUMTEXT in place: each ALTER copies the whole
    table while writes to it wait (about 6 s per 200k contexts on MariaDB 10.11). 0012 took
    contexts through that twice, one column at a time (12 s of every message waiting);
    one ALTER retypes both columns in one copy."""
    upgrade(engine, "0011_answers2")
    altered: list[str] = []

    def record(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith("ALTER TABLE"):
            altered.append(" ".join(sql.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        upgrade(engine, "0012_long_text")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    if engine.dialect.name == "sqlite":
        assert altered == []  # no TEXT limit there: nothing to do
        return
    assert sorted(sql.split()[2].strip("`") for sql in altered) == ["contexts", "memories"]
    types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("contexts")}
    assert types["slots"] == types["history"] == "MEDIUMTEXT"
    types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("memories")}
    assert types["history"] == "MEDIUMTEXT"


KILLED_UPGRADE = """
import sys
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
upgrade(make_engine(sys.argv[1]))
"""


def _queries(conn: Any, database: str) -> list[tuple[Any, ...]]:
    """The statements running on the database (MariaDB/MySQL's process list)."""
    rows = conn.execute(
        text(
            "SELECT id, state, info FROM information_schema.processlist"
            " WHERE db = :db AND command = 'Query' AND id <> CONNECTION_ID()"
        ),
        {"db": database},
    )
    return [tuple(row) for row in rows]


def _wait_for(check: Any, what: str) -> Any:
    import time

    deadline = time.monotonic() + 60
    while not (found := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)
    return found


def test_a_killed_processs_ddl_still_running_keeps_the_upgrade_lock(
    mysql_database_url: str,
) -> None:
    """The server finishes a statement whose client was killed (a long ALTER: it does not
    notice the closed socket until it answers). The upgrade lock was held on a connection of
    its own, idle, which died at once: the next container migrated alongside the dead one's
    ALTER and failed on the index that ALTER then made ("Duplicate key name"). The lock is
    now held by the connection that migrates, so it lasts as long as its last statement."""
    from sqlalchemy.engine import make_url

    database = make_url(mysql_database_url).database
    engine = make_engine(mysql_database_url)
    upgrade(engine, "0015_seen_status_index")
    reader = make_engine(mysql_database_url)
    try:
        with reader.connect() as conn, reader.connect() as watch:
            # a serving process's transaction that read kb_unanswered: 0016's first ALTER
            # waits for it (metadata lock), long enough to kill the process that sent it
            conn.execute(text("SELECT COUNT(*) FROM kb_unanswered"))
            first = subprocess.Popen(
                [sys.executable, "-c", KILLED_UPGRADE, mysql_database_url],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            index = "ix_kb_unanswered_count_last"
            _wait_for(lambda: index in str(_queries(watch, database)), "0016's first statement")
            first.kill()
            first.wait()
            assert index in str(_queries(watch, database))  # still running, orphaned
            result: list[Any] = []

            def next_container() -> None:
                other = make_engine(mysql_database_url)
                try:
                    result.append(upgrade(other, lock_wait=60).state)
                except Exception as exc:  # noqa: BLE001 - reported below
                    result.append(exc)
                finally:
                    other.dispose()

            import threading

            second = threading.Thread(target=next_container)
            second.start()
            # the next container waits: for the lock (now) or behind the orphan's ALTER (before)
            _wait_for(lambda: len(_queries(watch, database)) >= 2, "the next container")
            conn.rollback()  # the serving transaction ends: the orphaned ALTER runs
            second.join(timeout=120)
        assert result == ["current"]
        assert schema_status(engine).state == "current"
    finally:
        reader.dispose()
        engine.dispose()


def _upgrade_in_thread(engine: Engine) -> list[Any]:
    """upgrade(engine) in a thread, its result or error in the list returned; fails the
    test if it has not returned after two minutes (an ALTER waiting for a table lock waited
    up to lock_wait_timeout, a day by default)."""
    import threading

    result: list[Any] = []

    def run() -> None:
        try:
            result.append(upgrade(engine).state)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)
    assert result, "the upgrade is still waiting for the table"
    return result


def test_an_upgrade_behind_a_long_transaction_gives_up_instead_of_stopping_the_bot(
    mysql_database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """An ALTER waits for every transaction that has read its table (metadata lock), and
    every later statement on that table waits behind the ALTER. One transaction left open
    (an operator's SQL console, a stuck job) made 0015's index wait, and with it every
    message's write to seen_messages: the bot answered no one, for up to a day
    (lock_wait_timeout). Now the migration waits a few seconds at a time, tries again a few
    times, then gives up in one line that says why; the next init-db resumes it."""
    from wxbot.migrations import schema

    monkeypatch.setattr(schema, "DDL_LOCK_WAIT", 1, raising=False)
    monkeypatch.setattr(schema, "DDL_PAUSE", 0.1, raising=False)
    engine = make_engine(mysql_database_url)
    served = make_engine(mysql_database_url)
    upgrade(engine, "0014_count_batches")
    try:
        with served.connect() as console:
            console.execute(text("SELECT COUNT(*) FROM seen_messages"))  # left open
            [error] = _upgrade_in_thread(engine)
            assert isinstance(error, SchemaError)
            assert "upgrading the schema from 0014_count_batches failed" in str(error)
            assert "SHOW PROCESSLIST" in str(error)
            with served.begin() as conn:  # messages are served again at once
                conn.execute(
                    text(
                        "INSERT INTO seen_messages (dedup_key, openid, status, attempts,"
                        " created_at) VALUES ('o:1', 'o', 'done', 1, 1)"
                    )
                )
            console.rollback()
        assert _upgrade_in_thread(engine) == ["current"]
        # the migrations' short wait did not go back to the pool with their connection
        with engine.connect() as one, engine.connect() as two:
            for conn in (one, two):
                waits = conn.execute(
                    text("SELECT @@SESSION.lock_wait_timeout, @@GLOBAL.lock_wait_timeout")
                ).one()
                assert waits[0] == waits[1]
    finally:
        served.dispose()
        engine.dispose()


# --- a version that says more than the tables hold ---------------------------------------------


def test_tables_missing_under_a_current_version_are_refused_in_one_line(
    engine: Engine, db_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A partial restore, or tables dropped by hand: the version still says head. init-db
    said "database ready" (exit 0, the missing tables as mere warnings) and serve started,
    and every message got the apology ("no such table: contexts")."""
    from click.testing import CliRunner

    from wxbot.cli import cli

    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE kb_questions"))
        conn.execute(text("DROP TABLE contexts"))
    monkeypatch.setenv("WXBOT_DATABASE_URL", db_url)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)  # `serve` would say it turned debug off
    served: list[Any] = []  # `wxbot serve` up to where gunicorn would start
    monkeypatch.setattr("wxbot.serving.run", lambda load_app, *args: served.append(load_app()))
    for args in (["init-db"], ["serve"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert "tables contexts, kb_questions are missing" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not served
    assert not {"contexts", "kb_questions"} & _tables(engine)  # nothing made up in their place
