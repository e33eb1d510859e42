"""Hit counts of answered entries: summed in memory, written to the database in batches."""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from wxbot.qa import store

log = logging.getLogger(__name__)

FLUSH_EVERY_HITS = 2000  # or FLUSH_EVERY_SECONDS, whichever comes first
FLUSH_EVERY_SECONDS = 30.0


class HitCounter:
    """The per-process hit counters of one knowledge base (``KnowledgeBase.hits``)."""

    def __init__(self, engine: Engine | None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock  # stamps last_hit_at
        self._lock = threading.Lock()
        self._hits: Counter[int] = Counter()
        self._last_flush = time.monotonic()

    def due(self) -> bool:
        """Would flush() write now? (So callers schedule a write only when due.)"""
        pending = sum(self._hits.values())
        if not pending:
            return False
        due = time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS
        return due or pending >= FLUSH_EVERY_HITS

    def record(self, entry_id: int) -> None:
        with self._lock:
            self._hits[entry_id] += 1

    def flush(self, conn: Connection, force: bool = False) -> int:
        """Write summed hit counts when enough piled up or enough time passed.

        Runs in the caller's transaction (on SQLite a second connection would wait for the
        write lock that very transaction holds). Counts of a crashed process are lost: they
        are statistics, not data.
        """
        pending = sum(self._hits.values())
        if not pending:
            return 0
        due = time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS
        if not (force or due or pending >= FLUSH_EVERY_HITS):
            return 0
        with self._lock:
            hits, self._hits = self._hits, Counter()
            self._last_flush = time.monotonic()
        try:
            store.add_hits(conn, dict(hits), self.clock())
        except Exception:
            with self._lock:
                self._hits.update(hits)  # keep them for the next try
            raise
        return sum(hits.values())

    def flush_now(self) -> None:
        """Write pending hit counts in a transaction of their own (shutdown, CLI)."""
        if self.engine is None or not self._hits:
            return
        try:
            with self.engine.begin() as conn:
                self.flush(conn, force=True)
        except Exception:  # at shutdown the database may be gone: statistics, not data
            log.warning("could not write %d pending hit counts", sum(self._hits.values()))

    def flush_at_exit(self) -> None:
        """Write what is pending when the process exits (batched hits would be lost). Holds
        the counter weakly: a knowledge base dropped earlier is not kept alive for it."""
        ref = weakref.ref(self)
        atexit.register(lambda: (c := ref()) is not None and c.flush_now())
