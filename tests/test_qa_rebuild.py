"""Knowledge changes while the bot is serving: a large change is re-indexed in the background
while messages are answered from the previous index; nothing rebuilds needlessly.

No timings here: a rebuild is held at a gate (an Event) and the tests look at what messages
do meanwhile. benchmarks/kb_rebuild_bench.py measures the seconds and megabytes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.helpers import content, say
from wxbot.qa import freshness, importer, writer

GATE_TIMEOUT = 10  # seconds a held rebuild waits at most (a test failing must not hang)


class HeldBuilds:
    """Replaces ``kb._build``: each build waits at a gate; records which thread built."""

    def __init__(self, kb: Any) -> None:
        self.kb = kb
        self.original = kb._build
        self.started = threading.Event()
        self.gate = threading.Event()
        self.threads: list[str] = []
        self.collector: list[bool] = []  # was automatic garbage collection on, per build

    def __call__(self, snap: Any) -> Any:
        self.threads.append(threading.current_thread().name)
        self.collector.append(gc.isenabled())
        self.started.set()
        self.gate.wait(GATE_TIMEOUT)
        return self.original(snap)


@pytest.fixture
def held(bot, monkeypatch) -> Iterator[HeldBuilds]:  # type: ignore[no-untyped-def]
    kb = bot.deps.kb
    builds = HeldBuilds(kb)
    monkeypatch.setattr(kb, "_build", builds)
    monkeypatch.setattr(freshness, "BACKGROUND_REBUILD_OVER", 3)
    monkeypatch.setattr(importer, "LOG_EACH_LIMIT", 1)  # an import says "reload everything"
    yield builds
    builds.gate.set()
    kb.wait_until_rebuilt(GATE_TIMEOUT)


def import_rows(bot: Any, tmp_path: Any, rows: list[tuple[str, str]], name: str) -> None:
    path = tmp_path / name
    path.write_text("".join(f"{q},{a}\n" for q, a in rows), encoding="utf-8")
    assert importer.import_files(bot.engine, [str(path)], now=1.0).written


def test_a_big_import_into_a_small_base_is_indexed_in_the_background(
    app, bot, held, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Before: the index being small (the starter FAQ), the first message after an import of
    100k rows rebuilt it in the request: 20 s at 100k, and every thread of every worker
    waited for it. The size that counts is the new one."""
    kb = bot.deps.kb
    import_rows(bot, tmp_path, [("小库问题", "小库答案")], "small.csv")
    held.gate.set()
    assert content(say(bot, "o_u", "小库问题")) == "小库答案"  # a small change: in the request
    held.gate.clear()
    held.started.clear()
    held.threads.clear()

    import_rows(bot, tmp_path, [(f"大导入问题{i}", f"大导入答案{i}") for i in range(6)], "big.csv")
    reply = content(say(bot, "o_u", "大导入问题3"))  # answered now, from the previous index
    assert reply != "大导入答案3"
    assert held.started.wait(GATE_TIMEOUT)
    assert held.threads and held.threads[0] != threading.current_thread().name
    held.gate.set()
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    assert content(say(bot, "o_u", "大导入问题3")) == "大导入答案3"


def test_messages_during_a_rebuild_neither_query_the_change_log_nor_queue(
    app, bot, held, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Before: every message during a background rebuild took the index lock and read the
    change log (two more round trips, one thread at a time) only to learn that the rebuild
    was still under way."""
    kb = bot.deps.kb
    rows = [(f"重建中问题{i}", f"重建中答案{i}") for i in range(6)]
    held.gate.set()
    import_rows(bot, tmp_path, rows, "a.csv")
    say(bot, "o_u", "重建中问题1")
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    held.gate.clear()
    held.started.clear()

    import_rows(bot, tmp_path, [(q, "新" + a) for q, a in rows], "b.csv")
    say(bot, "o_u", "重建中问题1")  # starts the rebuild
    assert held.started.wait(GATE_TIMEOUT)
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "kb_changes" in statement:
            statements.append(statement)

    event.listen(bot.engine, "before_cursor_execute", count)
    try:
        for i in range(3):
            assert content(say(bot, f"o_{i}", "重建中问题2")) == "重建中答案2"  # the old index
    finally:
        event.remove(bot.engine, "before_cursor_execute", count)
    assert statements == []
    held.gate.set()
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    assert content(say(bot, "o_u", "重建中问题2")) == "新重建中答案2"


def test_a_message_that_read_an_older_version_rebuilds_nothing(app, bot, held) -> None:  # type: ignore[no-untyped-def]
    """Two threads race: one reads version 11, catches up, then the other, which read 10
    before the last commit, asks. Before: "lower than mine" meant "the database was
    replaced": a full rebuild (seconds of CPU and twice the memory), and the index version
    went back to 10."""
    kb = bot.deps.kb
    held.gate.set()
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["竞争问题一"], "一。", now=1.0, source="api")
        writer.create_entry(conn, ["竞争问题二"], "二。", now=1.0, source="api")
    assert content(say(bot, "o_u", "竞争问题二")) == "二。"
    newest = kb.version
    held.threads.clear()
    with bot.engine.begin() as conn:
        kb.refresh_if_stale(conn, newest - 1)
    assert held.threads == []
    assert kb.version == newest
    assert content(say(bot, "o_u", "竞争问题二")) == "二。"


def test_a_replaced_database_with_a_lower_version_is_still_loaded(
    app, bot, held, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A restored backup has a lower version for good: once lower versions have been seen
    for REPLACED_AFTER seconds with no current one between, the index is rebuilt."""
    kb = bot.deps.kb
    held.gate.set()
    say(bot, "o_u", "x")
    clock = [1000.0]
    monkeypatch.setattr(freshness, "monotonic", lambda: clock[0])
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["备份里的问题"], "备份。", now=1.0, source="api")
    with bot.engine.begin() as conn:
        kb.refresh_if_stale(conn)
    loaded = kb.version
    held.threads.clear()
    monkeypatch.setattr(kb, "version", loaded + 5)  # as if the database moved back 5 versions
    with bot.engine.begin() as conn:
        kb.refresh_if_stale(conn, loaded)
    assert held.threads == []  # perhaps a racing reader: not yet
    clock[0] += freshness.REPLACED_AFTER + 1
    with bot.engine.begin() as conn:
        kb.refresh_if_stale(conn, loaded)
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    assert len(held.threads) == 1
    assert kb.version == loaded
    assert content(say(bot, "o_u", "备份里的问题")) == "备份。"


def test_the_previous_index_is_freed_after_a_rebuild(app, bot, held, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Two indexes live side by side only while the new one is built."""
    import weakref

    kb = bot.deps.kb
    held.gate.set()
    rows = [(f"释放问题{i}", f"释放答案{i}") for i in range(6)]
    import_rows(bot, tmp_path, rows, "a.csv")
    say(bot, "o_u", "释放问题1")
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    old = weakref.ref(kb._index)
    import_rows(bot, tmp_path, [(q, "新" + a) for q, a in rows], "b.csv")
    say(bot, "o_u", "释放问题1")
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    assert content(say(bot, "o_u", "释放问题1")) == "新释放答案1"
    gc.collect()
    assert old() is None


# MySQL's reads take no lock (READ COMMITTED): SQLite only, without a skipped MySQL case
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_background_rebuild_reads_without_the_write_lock(
    app, bot, held, tmp_path, db_url
) -> None:  # type: ignore[no-untyped-def]
    """SQLite: the application's transactions take the write lock (BEGIN IMMEDIATE). Before,
    the rebuild read the whole base in one (0.5 s at 100k entries), and every message of
    every worker waited; a write from elsewhere meanwhile must get through."""
    import sqlite3

    kb = bot.deps.kb
    held.gate.set()
    rows = [(f"读锁问题{i}", f"读锁答案{i}") for i in range(6)]
    import_rows(bot, tmp_path, rows, "a.csv")
    say(bot, "o_u", "读锁问题1")
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)

    written: list[str] = []
    original = kb._read_all

    def read_then_write_elsewhere(conn):  # type: ignore[no-untyped-def]
        snap = original(conn)  # still inside the rebuild's read transaction
        other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0.5)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE kb_meta SET updated_at = updated_at")
            other.execute("COMMIT")
            written.append("ok")
        except sqlite3.OperationalError as exc:
            written.append(str(exc))
        finally:
            other.close()
        return snap

    kb._read_all = read_then_write_elsewhere
    try:
        import_rows(bot, tmp_path, [(q, "新" + a) for q, a in rows], "b.csv")
        say(bot, "o_u", "读锁问题1")
        assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    finally:
        del kb._read_all
    assert written == ["ok"]
    assert content(say(bot, "o_u", "读锁问题1")) == "新读锁答案1"


def test_no_full_garbage_collection_stops_the_worker_during_a_background_build(
    app, bot, held, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Before: the build's millions of new objects set off full collections, each holding
    the GIL, i.e. stopping every thread of the worker, for up to 0.46 s at 100k entries."""
    kb = bot.deps.kb
    held.gate.set()
    say(bot, "o_u", "x")  # loaded (the first load, with nothing to answer from, is in the request)
    held.collector.clear()
    rows = [(f"回收问题{i}", f"回收答案{i}") for i in range(6)]
    import_rows(bot, tmp_path, rows, "a.csv")
    say(bot, "o_u", "回收问题1")
    assert kb.wait_until_rebuilt(GATE_TIMEOUT)
    assert held.collector == [False]
    assert gc.isenabled()
