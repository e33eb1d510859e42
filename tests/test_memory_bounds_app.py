"""Bounds that need a database or a network failure: statistics kept while their writes
fail, the knowledge index under endless edits, the admin lockout's table under guesses from
ever-new addresses, and failed calls that must not leave reference cycles holding a
message's frames (see also test_memory_bounds.py)."""

from __future__ import annotations

import gc
import logging
import socket
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import pytest
from sqlalchemy import func, select

from tests.test_memory_bounds import _Resumer, message
from wxbot.admin.throttle import MAX_FAILURES, failures
from wxbot.config import Settings
from wxbot.db import make_engine, transaction
from wxbot.dialog.flow import Deferred
from wxbot.dialog.slow import SlowPath
from wxbot.migrations.schema import upgrade
from wxbot.qa import freshness, writer
from wxbot.qa.kb import KnowledgeBase
from wxbot.services.http import ServiceError, make_session, request_json
from wxbot.stats.counters import MAX_UNSENT, DailyCounters, read_counts, zone

NOW = 1_800_000_000.0


# --- daily statistics whose writes fail -------------------------------------------------------


def test_statistics_kept_while_their_writes_fail_are_bounded_and_then_written(db_url) -> None:  # type: ignore[no-untyped-def]
    """Each flush that failed kept one more batch: a table the database refuses for a day
    was a batch per 200 messages, all day. Now the sums stay summed, and are all written
    once the database takes them."""
    engine = make_engine(db_url)  # no schema yet: every write fails
    counters = DailyCounters(engine, lambda: NOW, zone("Asia/Shanghai"), 10**9, 10**9)
    try:
        for _ in range(300):
            counters.add(["messages", "answered"])
            counters.flush()
        assert len(counters._unsent) <= MAX_UNSENT
        assert len(counters._pending) <= 2  # (day, name) pairs, not messages
        upgrade(engine)
        for _ in range(3):
            counters.flush()
        assert not counters.waiting()
        day = date.fromtimestamp(NOW)
        with engine.connect() as conn:
            counts = read_counts(conn, date.fromordinal(day.toordinal() - 1), day)
        assert sum(c["messages"] for c in counts.values()) == 300
        assert sum(c["answered"] for c in counts.values()) == 300
    finally:
        engine.dispose()


# --- the knowledge index under endless edits -----------------------------------------------


def test_a_small_base_edited_endlessly_keeps_a_bounded_index(db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every edit leaves the entry's old questions in the index as dead documents; only
    bases over 1,000 entries were ever compacted, so a small one grew with every edit."""
    limit = 64
    monkeypatch.setattr(freshness, "COMPACT_OVER_DOCUMENTS", limit)
    engine = make_engine(db_url)
    upgrade(engine)
    try:
        kb = KnowledgeBase(engine)
        with transaction(engine) as conn:
            ids = [
                writer.create_entry(
                    conn, [f"问题{i}甲", f"问题{i}乙"], f"答案{i}", now=NOW, source="test"
                )
                for i in range(3)
            ]
        largest = 0
        for n in range(300):
            with transaction(engine) as conn:
                questions = [f"新问法{n}之一", f"新问法{n}之二"]
                writer.update_entry(conn, ids[0], now=NOW + n, questions=questions)
            with engine.connect() as conn:
                kb.refresh_if_stale(conn)
            largest = max(largest, kb._index.documents)
        assert largest <= 2 * limit
        assert kb.lookup("新问法299之一").best.entry_id == ids[0]  # type: ignore[union-attr]
    finally:
        engine.dispose()


# --- the admin lockout under ever-new addresses --------------------------------------------


def failure_rows(app) -> int:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].connect() as conn:
        return int(conn.execute(select(func.count()).select_from(failures)).scalar_one())


def test_guesses_from_one_ipv6_network_share_one_budget_and_one_row(make_app) -> None:  # type: ignore[no-untyped-def]
    """A host holds a whole /64: counted per address, each guess came from a fresh one, the
    lockout never bit, and the table kept a row per guess for the window."""
    app = make_app(admin_token="right-admin-token-for-tests")
    client = app.test_client()
    wrong = {"Authorization": "Bearer wrong-token"}
    statuses = [
        client.get(
            "/admin/api/stats", headers=wrong, environ_base={"REMOTE_ADDR": f"2001:db8:7:9::{i:x}"}
        ).status_code
        for i in range(1, 41)
    ]
    assert statuses[:MAX_FAILURES] == [403] * MAX_FAILURES
    assert set(statuses[MAX_FAILURES:]) == {429}
    assert failure_rows(app) == 1
    # another network is another client; an IPv4-mapped address is its IPv4 address
    other = client.get(
        "/admin/api/stats", headers=wrong, environ_base={"REMOTE_ADDR": "2001:db8:7:a::1"}
    )
    assert other.status_code == 403
    for _ in range(MAX_FAILURES):
        client.get("/admin/api/stats", headers=wrong, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    mapped = client.get(
        "/admin/api/stats", headers=wrong, environ_base={"REMOTE_ADDR": "::ffff:203.0.113.9"}
    )
    assert mapped.status_code == 429
    assert failure_rows(app) == 3


# --- reference cycles -------------------------------------------------------------------------


@contextmanager
def cyclic_garbage() -> Iterator[list[object]]:
    """The objects that only the cycle collector could free, made inside the block."""
    found: list[object] = []
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def frames_of(garbage: list[object], *files: str) -> list[str]:
    return [
        f"{o.f_code.co_filename}:{o.f_code.co_name}"
        for o in garbage
        if isinstance(o, types.FrameType) and any(f in o.f_code.co_filename for f in files)
    ]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_call_leaves_no_reference_cycle(closed_port: int) -> None:
    """urllib3 keeps a failed connection's exception in the locals of a frame its traceback
    holds: a cycle per failed call, holding (through f_back) every caller's frame."""
    session = make_session()
    with cyclic_garbage() as garbage:
        for _ in range(3):
            with pytest.raises(ServiceError):
                request_json(session, "test", "GET", f"http://127.0.0.1:{closed_port}/", (1, 1))
    assert frames_of(garbage, "urllib3", "requests", "wxbot") == []


def test_failed_slow_work_leaves_no_reference_cycle(caplog) -> None:  # type: ignore[no-untyped-def]
    """The slow path kept the work's exception in a local of the frame its traceback (by
    f_back) led to: the job, its message and every frame down to the failure lingered until
    a collection found them, for each message while a service was down."""
    # its warning is not recorded: pytest keeps records, and one holding the exception (its
    # argument) would keep the frames alive rather than leave them to the collector
    caplog.set_level(logging.ERROR, logger="wxbot.dialog.slow")

    def work() -> object:
        def deep() -> object:
            raise ValueError("the service answered nonsense")

        try:
            return deep()
        except ValueError:
            raise ServiceError("test", "failed") from None

    slow = SlowPath(None, Settings(), _Resumer(), workers=1)  # type: ignore[arg-type]
    done = threading.Event()
    with cyclic_garbage() as garbage:
        for i in range(3):
            pending = slow.start(message(i), Deferred(work=work, resume=lambda t, r: r), 1)
            assert pending.future.result(timeout=10).content == "ServiceError"  # type: ignore[union-attr]
        slow._pool.submit(done.set)  # one thread, in order: the jobs' frames have ended
        assert done.wait(10)
    assert frames_of(garbage, "wxbot", "tests") == []
    slow.close(0)
