"""Counting per day without a shared-row write per message.

Every message would otherwise update the same few ``daily_counts`` rows, which all users
share: under MySQL that serialises every message on one row lock. So each process sums in
memory and adds its sums with one upsert every ``flush_every`` counts or ``flush_seconds``
(and when the bot closes). The time limit is kept by a thread of each process, not only on
the next message: a worker that gets no more messages would otherwise keep its sums from
every other process's dashboard, and lose them all if killed. A process that dies loses at
most that batch of statistics, never user data. Days are calendar days in the configured
time zone (``WXBOT_TIMEZONE``).

A batch is written under an id of its own (``daily_count_batches``), in the transaction that
adds it: a write whose COMMIT was lost in transit (the connection dropped after the server had
committed) is retried under the same id, which then adds nothing, instead of counting twice.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, insert, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_duplicate_key, is_mysql, transaction, with_retries
from wxbot.stats.models import DailyCount, DailyCountBatch

log = logging.getLogger(__name__)

counts = DailyCount.__table__
batches = DailyCountBatch.__table__

FLUSH_EVERY = 200
FLUSH_SECONDS = 30.0
BATCH_IDS_KEPT = 86_400.0  # seconds a written batch's id is kept: its retries come within minutes
# Batches kept after failed writes. While writes keep failing (the table missing after a bad
# deploy, a row the database refuses, lock timeouts under load) every flush would keep one
# more; beyond this many, new counts stay summed in memory instead (one entry per day and
# statistic, whatever the traffic), to be written once the backlog is.
MAX_UNSENT = 16

Rows = list[dict[str, object]]


def zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def day_of(timestamp: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(timestamp, tz).date().isoformat()


class DailyCounters:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], float],
        tz: tzinfo,
        flush_every: int = FLUSH_EVERY,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.tz = tz
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._pending: Counter[tuple[str, str]] = Counter()
        self._pending_total = 0
        self._unsent: list[tuple[str, Rows]] = []  # (batch id, rows) whose write failed
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._timer_pid = 0  # the process whose timer thread runs (none survives a fork)
        ref = weakref.ref(self)
        atexit.register(lambda: (c := ref()) is not None and c.flush())

    def add(self, names: Iterable[str]) -> None:
        """Count each name once for today (the clock's day)."""
        day = day_of(self.clock(), self.tz)
        with self._lock:
            for name in names:
                self._pending[(day, name)] += 1
                self._pending_total += 1
        if self._timer_pid != os.getpid():
            self._start_timer()

    def _start_timer(self) -> None:
        with self._lock:
            if self._timer_pid == os.getpid():
                return
            self._timer_pid = os.getpid()
        thread = threading.Thread(
            target=_flush_when_due,
            args=(weakref.ref(self),),
            name="wxbot-daily-counts",
            daemon=True,
        )
        thread.start()

    def waiting(self) -> bool:
        """Counts not written yet: summed since the last flush, or a batch that failed."""
        return bool(self._pending or self._unsent)  # (sums kept back while MAX_UNSENT wait)

    def maybe_flush(self) -> None:
        """Write the sums if enough piled up or enough time passed (cheap when not due)."""
        due = self._pending_total >= self.flush_every or (
            self.waiting() and time.monotonic() - self._last_flush >= self.flush_seconds
        )
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what this process counted; on failure a batch stays, with its id, for the
        next try (oldest first)."""
        with self._lock:
            self._last_flush = time.monotonic()
            self._pending_total = 0
            if len(self._unsent) < MAX_UNSENT:
                batch, self._pending = self._pending, Counter()
            else:  # stays summed: it grows by day and statistic only, not by message
                batch = Counter()
            if batch:
                rows: Rows = [
                    {"day": d, "name": n, "count": c} for (d, n), c in sorted(batch.items())
                ]
                self._unsent.append((uuid.uuid4().hex, rows))
            unsent = list(self._unsent)
        for batch_id, rows in unsent:
            try:
                with_retries(lambda: self._write(batch_id, rows))  # noqa: B023 - called at once
            except Exception:
                log.warning(
                    "writing %d daily counters failed; kept for later", len(rows), exc_info=True
                )
                return
            with self._lock:  # another thread may have written and removed it meanwhile
                self._unsent = [b for b in self._unsent if b[0] != batch_id]

    def _write(self, batch_id: str, rows: Rows) -> None:
        with transaction(self.engine) as conn:
            if add_batch(conn, batch_id, rows, self.clock()):
                forget_old_batches(conn, self.clock() - BATCH_IDS_KEPT)


def _flush_when_due(ref: weakref.ReferenceType[DailyCounters]) -> None:
    """Write a process's sums once they are ``flush_seconds`` old, messages or not (holds no
    reference between rounds: it ends once its counters are gone)."""
    while (counters := ref()) is not None:
        waited = time.monotonic() - counters._last_flush
        due_in = counters.flush_seconds - waited if counters.waiting() else None
        pause = counters.flush_seconds if due_in is None else max(0.05, due_in)
        del counters
        time.sleep(pause)
        if (counters := ref()) is not None:
            counters.maybe_flush()  # logs a failure and keeps the sums; never raises
            del counters


def add_batch(conn: Connection, batch_id: str, rows: Rows, now: float) -> bool:
    """Add ``rows`` unless the batch ``batch_id`` was added already (a retry of a write whose
    COMMIT went through unseen); returns whether they were added. The id is inserted first,
    so a concurrent writer of the same batch waits on it and then finds it."""
    try:  # a duplicate fails this statement alone: nothing else was done in the transaction
        conn.execute(insert(batches).values(batch_id=batch_id, written_at=now))
    except Exception as exc:
        if is_duplicate_key(exc):
            return False
        raise
    add_counts(conn, rows)
    return True


def forget_old_batches(conn: Connection, before: float, limit: int = 100) -> None:
    """Drop the ids of batches written before ``before`` (a few per write: the table stays
    at about a day of batches)."""
    old = select(batches.c.batch_id).where(batches.c.written_at < before).limit(limit)
    ids = conn.execute(old).scalars().all()
    if ids:
        conn.execute(delete(batches).where(batches.c.batch_id.in_(ids)))


def add_counts(conn: Connection, rows: Rows) -> None:
    """Upsert ``{"day", "name", "count"}`` rows, adding to what is stored (sorted by key so
    two processes flushing at once take row locks in the same order)."""
    if is_mysql(conn):
        stmt = mysql_insert(counts)
        stmt = stmt.on_duplicate_key_update(count=counts.c.count + stmt.inserted["count"])
    else:
        stmt = sqlite_insert(counts)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "name"], set_={"count": counts.c.count + stmt.excluded["count"]}
        )
    conn.execute(stmt, rows)


def read_counts(conn: Connection, first: date, last: date) -> dict[str, Counter[str]]:
    """day (ISO) -> name -> count, for the days from ``first`` to ``last`` inclusive."""
    rows = conn.execute(
        select(counts.c.day, counts.c.name, counts.c.count).where(
            counts.c.day >= first.isoformat(), counts.c.day <= last.isoformat()
        )
    )
    out: dict[str, Counter[str]] = {}
    for day, name, count in rows:
        out.setdefault(day, Counter())[name] += int(count)
    return out
