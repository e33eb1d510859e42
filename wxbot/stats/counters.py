"""Counting per day without a shared-row write per message.

Every message would otherwise update the same few ``daily_counts`` rows, which all users
share: under MySQL that serialises every message on one row lock. So each process sums in
memory and adds its sums with one upsert every ``flush_every`` counts or ``flush_seconds``
(and when the bot closes). The time limit is kept by a thread of each process, not only on
the next message: a worker that gets no more messages would otherwise keep its sums from
every other process's dashboard, and lose them all if killed. A process that dies loses at
most that batch of statistics, never user data. Days are calendar days in the configured
time zone (``WXBOT_TIMEZONE``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql, transaction, with_retries
from wxbot.stats.models import DailyCount

log = logging.getLogger(__name__)

counts = DailyCount.__table__

FLUSH_EVERY = 200
FLUSH_SECONDS = 30.0


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

    def maybe_flush(self) -> None:
        """Write the sums if enough piled up or enough time passed (cheap when not due)."""
        due = self._pending_total >= self.flush_every or (
            self._pending_total and time.monotonic() - self._last_flush >= self.flush_seconds
        )
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what this process counted; on failure the sums stay for the next try."""
        with self._lock:
            batch, self._pending = self._pending, Counter()
            self._pending_total = 0
            self._last_flush = time.monotonic()
        if not batch:
            return
        rows = [{"day": d, "name": n, "count": c} for (d, n), c in sorted(batch.items())]
        try:
            with_retries(lambda: self._write(rows))
        except Exception:
            log.warning(
                "writing %d daily counters failed; kept for later", len(rows), exc_info=True
            )
            with self._lock:
                self._pending.update(batch)
                self._pending_total += sum(batch.values())

    def _write(self, rows: list[dict[str, object]]) -> None:
        with transaction(self.engine) as conn:
            add_counts(conn, rows)


def _flush_when_due(ref: weakref.ReferenceType[DailyCounters]) -> None:
    """Write a process's sums once they are ``flush_seconds`` old, messages or not (holds no
    reference between rounds: it ends once its counters are gone)."""
    while (counters := ref()) is not None:
        waited = time.monotonic() - counters._last_flush
        due_in = counters.flush_seconds - waited if counters._pending_total else None
        pause = counters.flush_seconds if due_in is None else max(0.05, due_in)
        del counters
        time.sleep(pause)
        if (counters := ref()) is not None:
            counters.maybe_flush()  # logs a failure and keeps the sums; never raises
            del counters


def add_counts(conn: Connection, rows: list[dict[str, object]]) -> None:
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
