"""Schema upgrades and start-up as operators live them: upgrading in place from any earlier
revision with real data, downgrading, N containers migrating at once, old code on a newer
schema, databases that are not wxbot's, unreachable or read-only, and schemas edited by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, insert, inspect, select, text
from sqlalchemy.engine import Engine, make_url

from tests.conftest import MYSQL_SERVER_URL
from tests.helpers import content, say
from wxbot import create_app
from wxbot.cli import cli, init_db
from wxbot.db import make_engine
from wxbot.migrations.guard import SchemaError, schema_status
from wxbot.migrations.schema import alembic_config, code_revision, current_revision, upgrade

ROOT = Path(__file__).resolve().parents[1]
# every revision an operator's database may be at (branches included), oldest first
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
]
# tables whose rows a migration rightly changes (synonym fixes, the knowledge version)
CHANGED_BY_MIGRATIONS = {"kb_meta", "kb_changes", "kb_synonyms", "alembic_version"}
LONG = "银行卡丢了怎么办😀🎉 " * 1800  # ~54 KB in utf8mb4: near TEXT's limit before 0012


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


# --- realistic rows in every table a revision has ---------------------------------------------


def _value(column: sa.Column, i: int) -> Any:
    """A value for ``column`` of row ``i``: Chinese and emoji, long texts, NULL in row 2."""
    kind = column.type
    if column.nullable and i == 2:
        return None
    if column.foreign_keys:
        return 1  # the first row of the referenced table
    if isinstance(kind, sa.Boolean):
        return i % 2 == 1
    if isinstance(kind, sa.Integer):
        return i + 1
    if isinstance(kind, sa.Float | sa.Numeric):
        return 1_800_000_000.25 + i
    if isinstance(kind, sa.types._Binary):
        return bytes(range(256)) * 4
    if isinstance(kind, sa.String) and kind.length:
        return f"用户{i}😀o_{column.name}"[: kind.length]
    if column.name in ("history", "slots"):
        if i == 0:  # a long conversation, as JSON with its characters as they are
            return json.dumps([["user", LONG, 1.0]], ensure_ascii=False)
        return json.dumps({"city": "北京 😀", "nested": {"n": i}}, ensure_ascii=False)
    if column.name == "answer":
        return LONG if i == 0 else "周末 10:00-18:00 有同事值班。🎉\n第二行\t缩进"
    return f"问题{i}：卡不见了怎么办？😀 'quoted' \"double\" \\ back"


def _fill(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Three rows in every table of the current schema; returns what was written."""
    tables = sa.MetaData()
    tables.reflect(engine)
    written: dict[str, list[dict[str, Any]]] = {}
    with engine.begin() as conn:
        for table in tables.sorted_tables:
            if table.name in CHANGED_BY_MIGRATIONS:
                continue
            rows = []
            for i in range(3):
                row = {
                    c.name: _value(c, i)
                    for c in table.columns
                    if not (c.primary_key and c.name == "id" and isinstance(c.type, sa.Integer))
                }
                conn.execute(insert(table), row)
                rows.append(row)
            written[table.name] = rows
    return written


def _rows(engine: Engine, name: str) -> list[dict[str, Any]]:
    table = sa.Table(name, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        ordered = select(table).order_by(*table.primary_key.columns)
        return [dict(r._mapping) for r in conn.execute(ordered)]


def _assert_kept(engine: Engine, written: dict[str, list[dict[str, Any]]]) -> None:
    for name, rows in written.items():
        stored = _rows(engine, name)
        assert len(stored) == len(rows), name
        for row, now in zip(rows, stored, strict=True):
            assert {k: now[k] for k in row} == row, name


@pytest.mark.parametrize("revision", REVISIONS)
def test_upgrading_from_every_revision_keeps_every_row(engine: Engine, revision: str) -> None:
    upgrade(engine, revision)
    written = _fill(engine)
    status = upgrade(engine)
    assert status.state == "current" and current_revision(engine) == code_revision()
    _assert_kept(engine, written)


def test_upgraded_data_still_works_for_the_bot(make_app, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """An entry taught and a user mid-flow at 0004 (before languages, synonyms, LLM memory):
    after the upgrade the bot answers the entry and the waiting user can still cancel."""
    engine = make_engine(db_url)
    upgrade(engine, "0004_merge")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO kb_entries (id, answer, source, created_at, updated_at, hits)"
                " VALUES (1, '请拨打 95568 挂失 😀', 'api', 1, 1, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO kb_questions (entry_id, question, qkey, position)"
                " VALUES (1, '银行卡丢了怎么办', :k1, 0), (1, '卡不见了怎么挂失', :k2, 1)"
            ),
            {"k1": "k" * 40, "k2": "j" * 40},
        )
        conn.execute(
            text(
                "INSERT INTO contexts (openid, state, slots, history, rounds, attempts,"
                " created_at, updated_at, expires_at, version) VALUES ('o_waiting',"
                " 'WAIT_WEATHER_CITY', '{}', '[]', 1, 0, 1799999990, 1799999990, 1800000500, 3)"
            )
        )
    engine.dispose()
    app = make_app()  # upgrades to head
    bot = app.extensions["wxbot.bot"]
    assert "95568" in content(say(bot, "o_asker", "银行卡丢了怎么办"))
    assert "取消" in content(say(bot, "o_waiting", "取消"))


# --- downgrades -----------------------------------------------------------------------------


def test_downgrading_past_0005_keeps_the_questions(engine: Engine) -> None:
    """On SQLite 0005's downgrade rebuilt kb_entries (batch mode) and the DROP of the old
    table cascaded to every question and learned alias: all deleted."""
    upgrade(engine, "0005_answers")
    written = _fill(engine)
    command.downgrade(alembic_config(engine), "0004_merge")
    assert len(_rows(engine, "kb_questions")) == 3
    assert "language" not in {c["name"] for c in inspect(engine).get_columns("kb_entries")}
    kept = {k: v for k, v in written.items() if inspect(engine).has_table(k)}
    for name in kept:  # the columns 0004 has are as they were
        columns = {c["name"] for c in inspect(engine).get_columns(name)}
        kept[name] = [{k: v for k, v in row.items() if k in columns} for row in kept[name]]
    _assert_kept(engine, kept)
    upgrade(engine)
    assert schema_status(engine).state == "current"


def test_every_downgrade_runs_and_upgrades_again(engine: Engine) -> None:
    upgrade(engine)
    _fill(engine)
    command.downgrade(alembic_config(engine), "0010_merge")
    assert len(_rows(engine, "contexts")) == 3 and len(_rows(engine, "kb_questions")) == 3
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == code_revision()


def test_downgrading_0012_refuses_a_history_text_cannot_hold(mysql_database_url: str) -> None:
    """TEXT holds 64 KB: strict MySQL failed halfway (slots retyped, history not), a
    non-strict server would cut the histories short. Now nothing is altered."""
    engine = make_engine(mysql_database_url)
    try:
        upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO contexts (openid, state, slots, history, rounds, attempts,"
                    " created_at, updated_at, expires_at, version)"
                    " VALUES ('o_long', 'WAIT_QUERY', '{}', :h, 0, 0, 1, 1, 1, 0)"
                ),
                {"h": "长" * 40_000},  # 120 KB
            )
        with pytest.raises(Exception, match="cannot downgrade 0012_long_text"):
            command.downgrade(alembic_config(engine), "0011_answers2")
        types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("contexts")}
        assert types["slots"] == "MEDIUMTEXT" and types["history"] == "MEDIUMTEXT"
        assert len(_rows(engine, "contexts")[0]["history"]) == 40_000
    finally:
        engine.dispose()


# --- many processes at once -----------------------------------------------------------------

RACER = """
import logging, os, sys, time
logging.basicConfig(level=logging.INFO)  # Alembic's "Running upgrade" lines, counted below
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
engine = make_engine(sys.argv[1])
open(sys.argv[2] + "." + str(os.getpid()), "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.005)
upgrade(engine)
print("upgraded")
"""


def test_processes_upgrading_at_once_migrate_once_and_all_succeed(
    db_url: str, tmp_path: Path
) -> None:
    """Containers restarting together: on MySQL each ran the migrations, one died with
    'Table ... already exists' (and a half-applied schema was possible)."""
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, db_url, str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < len(racers):  # all started: release them at once
        assert time.monotonic() < deadline and all(r.poll() is None for r in racers)
        time.sleep(0.01)
    go.touch()
    outputs = [r.communicate(timeout=120) for r in racers]
    for racer, (out, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err[-2000:]
        assert out.strip() == "upgraded" and "Traceback" not in err
    migrated = sum("Running upgrade  -> 0001_core" in err for _, err in outputs)
    assert migrated == 1
    engine = make_engine(db_url)
    assert schema_status(engine).state == "current"
    engine.dispose()


def test_a_held_upgrade_lock_is_waited_for_then_given_up_in_one_line(
    mysql_database_url: str,
) -> None:
    engine = make_engine(mysql_database_url)
    holder = create_engine(mysql_database_url)
    try:
        with holder.connect() as conn:
            name = f"wxbot.upgrade.{make_url(mysql_database_url).database}"
            assert conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
            started = time.monotonic()
            with pytest.raises(SchemaError, match="held the upgrade lock"):
                upgrade(engine, lock_wait=1)
            assert time.monotonic() - started < 10
            assert current_revision(engine) is None  # nothing was migrated
        holder.dispose()  # a holder that dies (its connection closes) takes its lock along
        upgrade(engine, lock_wait=10)
        assert schema_status(engine).state == "current"
    finally:
        holder.dispose()
        engine.dispose()


# --- databases that are not as expected -----------------------------------------------------


def _init_db(url: str) -> Any:
    app = create_app({"database_url": url})
    try:
        return app.test_cli_runner().invoke(init_db)
    finally:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()


def _one_line_error(result: Any, needle: str) -> None:
    assert result.exit_code == 1, result.output
    assert needle in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert isinstance(result.exception, SystemExit)  # click's exit, not a crash


def test_another_applications_database_is_refused(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('ae1027a6acf')"))
        conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    _one_line_error(_init_db(db_url), "belongs to another application")
    assert set(inspect(engine).get_table_names()) == {"alembic_version", "customers"}


def test_tables_named_like_wxbots_without_a_version_are_refused(
    engine: Engine, db_url: str
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE contexts (id INTEGER PRIMARY KEY, name VARCHAR(20))"))
        conn.execute(text("INSERT INTO contexts VALUES (1, 'theirs')"))
    _one_line_error(_init_db(db_url), "tables named like wxbot's (contexts)")
    assert set(inspect(engine).get_table_names()) == {"contexts"}


def test_a_database_shared_with_other_tables_is_upgraded(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    result = _init_db(db_url)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # their table is not drift of ours
    assert schema_status(engine).state == "current"


def test_an_unreachable_database_is_one_line() -> None:
    result = _init_db("mysql+pymysql://nobody@127.0.0.1:1/nothing")
    _one_line_error(result, "Can't connect to MySQL server")


def test_a_half_upgraded_schema_is_one_line_and_resumes(engine: Engine, db_url: str) -> None:
    """Someone ran part of 0013 by hand (or a process died inside it, MySQL DDL being
    untransactional): the version says 0012 but sms_quotas exists."""
    upgrade(engine, "0012_long_text")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE sms_quotas (scope VARCHAR(8) PRIMARY KEY)"))
    _one_line_error(_init_db(db_url), "upgrading the schema from 0012_long_text failed")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE sms_quotas"))
    assert _init_db(db_url).exit_code == 0
    assert schema_status(engine).state == "current"


def test_a_missing_index_is_reported_not_a_crash(engine: Engine, db_url: str) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP INDEX ix_contexts_expires_at"))
        else:
            conn.execute(text("DROP INDEX ix_contexts_expires_at ON contexts"))
    result = _init_db(db_url)
    assert result.exit_code == 0, result.output
    assert "warning: index ix_contexts_expires_at on contexts is missing" in result.output
    assert "database ready" in result.output


def test_a_read_only_user_is_one_line(mysql_database_url: str) -> None:
    url = make_url(mysql_database_url)
    user = f"ro_{uuid.uuid4().hex[:8]}"
    root = create_engine(MYSQL_SERVER_URL)
    with root.begin() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'"))
        conn.execute(text(f"GRANT SELECT ON `{url.database}`.* TO '{user}'@'%'"))
    try:
        readonly = url.set(username=user, password="pw").render_as_string(hide_password=False)
        _one_line_error(_init_db(readonly), "command denied")
        owner = make_engine(mysql_database_url)
        upgrade(owner)
        owner.dispose()
        result = _init_db(readonly)  # nothing to do: fine without write rights
        assert result.exit_code == 0 and "database ready" in result.output, result.output
    finally:
        with root.begin() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        root.dispose()


# --- old code, new schema (rolling deploys) -------------------------------------------------


def _as_if_a_later_release_migrated(engine: Engine) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_later_release'"))


def test_init_db_leaves_a_newer_schema_alone(engine: Engine, db_url: str) -> None:
    """An old container restarting mid-deploy runs its `wxbot init-db`: Alembic's
    "Can't locate revision" traceback and exit 1 kept it from ever starting."""
    _as_if_a_later_release_migrated(engine)
    result = _init_db(db_url)
    assert result.exit_code == 0, result.output
    assert "newer than this release" in result.output and "Traceback" not in result.output
    assert current_revision(engine) == "0099_later_release"


# --- start-up: wxbot serve, gunicorn wsgi:app -----------------------------------------------


@pytest.fixture
def serve(monkeypatch) -> Any:  # type: ignore[no-untyped-def]
    """Run `wxbot serve` on a database up to the point gunicorn would start."""

    def run(url: str) -> Any:
        monkeypatch.setenv("WXBOT_DATABASE_URL", url)
        started: list[Any] = []
        monkeypatch.setattr(
            "wxbot.serving.run", lambda load_app, *args: started.append(load_app()), raising=True
        )
        result = CliRunner().invoke(cli, ["serve"])
        result.started = bool(started)
        for app in started:
            app.extensions["wxbot.bot"].close()
            app.extensions["wxbot.engine"].dispose()
        return result

    return run


def test_serve_refuses_a_schema_behind_this_release(engine: Engine, db_url: str, serve) -> None:  # type: ignore[no-untyped-def]
    """Served anyway, every message that touched a newer table got the apology."""
    upgrade(engine, "0010_merge")
    result = serve(db_url)
    assert not result.started and result.exit_code == 1
    assert f"needs {code_revision()}: run `wxbot init-db`" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_database_without_schema(db_url: str, serve) -> None:  # type: ignore[no-untyped-def]
    result = serve(db_url)
    assert not result.started and result.exit_code == 1
    assert "no wxbot schema: run `wxbot init-db`" in result.output


def test_serve_starts_on_a_current_or_newer_schema(engine: Engine, db_url: str, serve) -> None:  # type: ignore[no-untyped-def]
    upgrade(engine)
    assert serve(db_url).started
    _as_if_a_later_release_migrated(engine)
    assert serve(db_url).started


def test_serve_starts_while_the_database_is_down(serve) -> None:  # type: ignore[no-untyped-def]
    """It may come up after us: /healthz says 503 until it answers (documented)."""
    assert serve("mysql+pymysql://nobody@127.0.0.1:1/nothing").started


def test_gunicorn_wsgi_refuses_a_schema_behind_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine, "0012_long_text")
    engine.dispose()
    env = {**os.environ, "WXBOT_DATABASE_URL": url, "WXBOT_TOKEN": "t", "WXBOT_APPID": "a"}
    port = str(_free_port())
    # One worker: when two fail to boot in the same instant, gunicorn's own arbiter raises
    # HaltServer again while halting and prints its traceback after our line (gunicorn 27;
    # seen under load). Its exit is still non-zero and our line still comes first.
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert f"this release needs {code_revision()}: run `wxbot init-db`" in proc.stderr
    assert "Traceback" not in proc.stderr


def _free_port() -> int:
    from tests.processes import free_port

    return free_port()


@pytest.mark.parametrize(
    "args", [["kb", "export", "-"], ["kb", "import", "x.csv"], ["sessions", "cleanup"]]
)
def test_commands_on_a_database_without_schema_are_one_line(  # type: ignore[no-untyped-def]
    db_url: str, monkeypatch, tmp_path, args: list[str]
) -> None:
    """Before 2026-11-24: a traceback wall ending in 'no such table: kb_meta'."""
    (tmp_path / "x.csv").write_text("q,a\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WXBOT_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "no wxbot schema: run `wxbot init-db`" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
