"""The database server's clock, which every container shares: DatabaseClock and its offset."""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from wxbot.db import is_mysql

log = logging.getLogger(__name__)

# --- one clock for every container -----------------------------------------------------------
#
# Stored times (a context's expiry, an SMS code's, slow work's start, the shared access_token's)
# are written by one container and compared by another. Container clocks drift, and one
# minutes off happens; the database server is the one clock they all reach. DatabaseClock is
# this process's clock plus its measured offset to the database's, so every container stamps
# and compares by the same clock without a round trip per reading.

CLOCK_SYNC_EVERY = 60.0  # seconds between measurements of the offset (monotonic)
CLOCK_SYNC_MAX_ROUND_TRIP = 1.0  # a slower measurement says too little: not taken
CLOCK_OFFSET_TOLD = 1.0  # an offset this large (s) is logged: the host's NTP needs a look
_NOW_SQL = {
    # UTC_TIMESTAMP: no session time zone (nor its DST hour) between us and the epoch
    "mysql": "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)) / 1000000",
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
}


def database_time(conn: Connection) -> float:
    """Epoch seconds by the database server's clock."""
    name = "mysql" if is_mysql(conn) else conn.dialect.name
    return float(conn.exec_driver_sql(_NOW_SQL[name]).scalar_one())


class DatabaseClock:
    """Epoch seconds by the database server's clock: ``local()`` plus the offset measured
    by ``sync`` (at most once per CLOCK_SYNC_EVERY). Reading it costs no round trip; the
    message path calls ``sync`` on the connection it holds. Until a first sync (or with a
    database that never answers) it is the local clock. A local clock stepped by NTP is
    corrected at the next sync; the interval between syncs is monotonic time."""

    def __init__(
        self,
        engine: Engine | None = None,
        local: Callable[[], float] = time.time,
        reference: Callable[[Connection], float] = database_time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.local = local
        self.reference = reference
        self.monotonic = monotonic
        self.offset = 0.0
        self._next_sync = float("-inf")
        self._told = 0.0  # the offset last logged

    def __call__(self) -> float:
        return self.local() + self.offset

    def sync(self, conn: Connection | None = None, force: bool = False) -> None:
        """Measure the offset on ``conn`` (in its transaction; errors are the caller's, as
        for any statement there) if one is due. Without ``conn``: on a connection of its own,
        and a failure is only logged (the caller goes on with the last offset)."""
        if not force and self.monotonic() < self._next_sync:
            return
        self._next_sync = self.monotonic() + CLOCK_SYNC_EVERY  # other threads: not now
        if conn is not None:
            self._measure(conn)
            return
        if self.engine is None:
            return
        try:
            with self.engine.connect() as own:
                self._measure(own)
        except Exception as exc:  # noqa: BLE001 - the database's clock is a nicety here
            log.info("could not read the database's clock: %s", exc)

    def _measure(self, conn: Connection) -> None:
        before = self.local()
        server = self.reference(conn)
        after = self.local()
        if not 0 <= after - before <= CLOCK_SYNC_MAX_ROUND_TRIP:
            return  # slow, or the local clock stepped meanwhile: the next sync will tell
        self.offset = offset = server - (before + after) / 2
        if abs(offset - self._told) >= CLOCK_OFFSET_TOLD:
            self._told = offset
            log.warning(
                "this host's clock is %.1f s %s the database server's; wxbot keeps time by "
                "the database's (check NTP on both)",
                abs(offset),
                "behind" if offset > 0 else "ahead of",
            )


def shared_clock(engine: Engine) -> DatabaseClock:
    """The DatabaseClock of ``engine`` (one per engine, so every part of a process that uses
    it shares its measurements)."""
    clock = _CLOCKS.get(engine)
    if clock is None:
        clock = _CLOCKS.setdefault(engine, DatabaseClock(engine))
    return clock


_CLOCKS: weakref.WeakKeyDictionary[Engine, DatabaseClock] = weakref.WeakKeyDictionary()


def synced_now(clock: Callable[[], float], conn: Connection) -> float:
    """``clock()``, after letting a DatabaseClock measure its offset on ``conn`` when due
    (any other clock, e.g. a test's, is read as it is)."""
    sync = getattr(clock, "sync", None)
    if sync is not None:
        sync(conn)
    return clock()
