"""Freshness across processes: knowledge changed by another OS process (the `wxbot kb import`
command, a script using the writer) is used by this process on its very next message."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.helpers import content, say
from wxbot.dialog.handlers import query

WRITE = textwrap.dedent(
    """
    import sys, time
    from wxbot.db import make_engine
    from wxbot.qa import store, writer
    engine = make_engine(sys.argv[1])
    with engine.begin() as conn:
        entry = store.find_entry(conn, sys.argv[3])
        if sys.argv[2] == "update":
            writer.update_entry(conn, entry.id, now=time.time(), answer=sys.argv[4])
        else:
            writer.delete_entry(conn, entry.id, now=time.time())
    """
)


def other_process(db_url: str, *args: str) -> str:
    env = {**os.environ, "WXBOT_DATABASE_URL": db_url}
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_changes_from_another_process_are_used_on_the_next_message(
    app, bot, db_url, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    kb = bot.deps.kb
    assert content(say(bot, "o_u", "多进程的暗号是什么")).startswith(query.DONT_KNOW)
    loaded = kb.version

    faq = tmp_path / "secret.csv"
    faq.write_text("多进程的暗号是什么,芝麻开门。\n别的问题,别的答案。\n", encoding="utf-8")
    out = other_process(
        db_url, "-c", "from wxbot.cli import main; main()", "kb", "import", str(faq)
    )
    assert "added 2" in out
    assert content(say(bot, "o_u", "多进程的暗号是什么")) == "芝麻开门。"
    assert kb.version > loaded

    other_process(db_url, "-c", WRITE, db_url, "update", "多进程的暗号是什么", "天王盖地虎。")
    assert content(say(bot, "o_u", "多进程的暗号是什么？")) == "天王盖地虎。"

    other_process(db_url, "-c", WRITE, db_url, "delete", "多进程的暗号是什么")
    assert content(say(bot, "o_u", "多进程的暗号是什么")).startswith(query.DONT_KNOW)
    assert content(say(bot, "o_u", "别的问题")) == "别的答案。"


def test_a_process_started_later_loads_everything_at_start(make_app, bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "x")  # the schema exists now
    with bot.engine.begin() as conn:
        from wxbot.qa import writer

        writer.create_entry(conn, ["启动时加载吗"], "加载。", now=1.0, source="api")
    late = make_app()
    assert len(late.extensions["wxbot.bot"].deps.kb) == 1  # loaded by create_app, not a request


def test_a_large_change_reloads_the_whole_index(app, bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa import freshness, writer

    say(bot, "o_u", "x")
    monkeypatch.setattr(freshness, "INCREMENTAL_LIMIT", 2)
    with bot.engine.begin() as conn:
        for i in range(5):
            writer.create_entry(conn, [f"第{i}个批量问题"], f"批量答案{i}", now=1.0, source="api")
    assert content(say(bot, "o_u", "第3个批量问题")) == "批量答案3"
    assert len(bot.deps.kb) == 5


def test_a_pruned_change_log_means_a_full_reload(app, bot) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import delete

    from wxbot.qa import versions, writer

    say(bot, "o_u", "x")
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["被清理的问题"], "还在。", now=1.0, source="api")
        writer.create_entry(conn, ["第二个问题"], "也在。", now=1.0, source="api")
        conn.execute(delete(versions.changes))  # as if pruned before this process caught up
        writer.create_entry(conn, ["第三个问题"], "在。", now=1.0, source="api")
    assert content(say(bot, "o_u", "被清理的问题")) == "还在。"
    assert content(say(bot, "o_u", "第三个问题")) == "在。"


def test_an_import_that_changes_nothing_makes_no_new_version(app, bot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa import versions
    from wxbot.qa.importer import import_files

    path = tmp_path / "a.csv"
    path.write_text("甲,1\n", encoding="utf-8")
    import_files(bot.engine, [str(path)], now=1.0)
    with bot.engine.connect() as conn:
        version = versions.read_version(conn)
    report = import_files(bot.engine, [str(path)], now=2.0)
    assert report.written and report.unchanged == 1
    with bot.engine.connect() as conn:
        assert versions.read_version(conn) == version


def test_one_version_read_per_transaction(app, bot) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    kb = bot.deps.kb
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "kb_meta" in statement:
            statements.append(statement)

    event.listen(bot.engine, "before_cursor_execute", count)
    try:
        with bot.engine.begin() as conn:
            kb.refresh_if_stale(conn, version=kb.version)  # the engine folded the read in
            kb.refresh_if_stale(conn)  # the handler's call: no second read
        assert statements == []
        with bot.engine.begin() as conn:
            kb.refresh_if_stale(conn)
            kb.refresh_if_stale(conn)
        assert len(statements) == 1
    finally:
        event.remove(bot.engine, "before_cursor_execute", count)


def test_a_large_index_is_rebuilt_in_the_background(app, bot, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.qa import freshness, importer

    kb = bot.deps.kb
    path = tmp_path / "a.csv"
    path.write_text("".join(f"后台问题{i},后台答案{i}\n" for i in range(5)), encoding="utf-8")
    importer.import_files(bot.engine, [str(path)], now=1.0)
    assert content(say(bot, "o_u", "后台问题1")) == "后台答案1"  # small: in the request

    rebuilds: list[int] = []
    original = kb._rebuild_now
    monkeypatch.setattr(kb, "_rebuild_now", lambda: (rebuilds.append(1), original()))
    monkeypatch.setattr(freshness, "BACKGROUND_REBUILD_OVER", 3)
    monkeypatch.setattr(importer, "LOG_EACH_LIMIT", 1)  # the import says "reload everything"
    path.write_text("".join(f"后台问题{i},新答案{i}\n" for i in range(5)), encoding="utf-8")
    importer.import_files(bot.engine, [str(path)], now=2.0)
    say(bot, "o_u", "后台问题2")  # starts the rebuild; the old index may still answer
    assert kb.wait_until_rebuilt(timeout=30) and rebuilds == [1]
    assert content(say(bot, "o_u", "后台问题2")) == "新答案2"
