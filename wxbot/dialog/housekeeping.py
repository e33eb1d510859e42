"""Housekeeping of stored conversations: expired contexts, old dedup records, old histories,
unanswered questions nobody asks any more, did-you-mean votes, SMS verifications that ended."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from wxbot.config import Settings
from wxbot.database_clock import synced_now
from wxbot.db import transaction
from wxbot.dialog import context as store
from wxbot.dialog.flow import Deps
from wxbot.flows import phone
from wxbot.qa import learning, unanswered

log = logging.getLogger(__name__)


class Housekeeping:
    """The clean-up of one ``Bot``: ``wxbot sessions cleanup`` runs it in full, and the engine
    a batch now and then (``Bot._maybe_clean_up``), so no cron is required."""

    def __init__(
        self, engine: Engine, settings: Settings, deps: Deps, clock: Callable[[], float]
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.deps = deps  # its memory is looked up when used, as the engine does
        self.clock = clock

    def clean_up(self, batch: int = 1000) -> tuple[int, int]:
        """Delete expired contexts and day-old seen records, in batches; returns the counts.
        Then the SMS verifications that ended and the texting limits of earlier days
        (forget_ended_verifications), which hold phone numbers."""
        now = self._now()
        contexts_deleted = seen_deleted = 0
        while True:
            with transaction(self.engine) as conn:
                n = store.delete_expired(conn, now, batch)
                m = store.prune_seen(conn, now - self.settings.seen_ttl, batch)
            contexts_deleted += n
            seen_deleted += m
            # 0, not "less than a batch": a batch whose contexts were revived meanwhile
            # deletes fewer than it picked, and more may be waiting behind it
            if n == 0 and m == 0:
                break
        self.forget_ended_verifications(now, batch)
        return contexts_deleted, seen_deleted

    def forget_ended_verifications(self, now: float, batch: int = 1000) -> int:
        """Delete pending SMS codes whose verification ended (phone.prune_codes) and the
        counts of codes texted on earlier days (sms_quotas: keyed by the phone number and
        the OpenID; the sends of new codes pruned them, two per send, so the last ones stayed
        for ever once sends stopped); how many rows went. A quota row goes in a transaction
        of its own, as the sends prune them: it never waits while holding another."""
        done = self._in_batches(phone.prune_codes, batch, now)
        day = phone.day_number(now, self.settings.timezone)
        while True:
            with transaction(self.engine) as conn:
                n = phone.prune_one(conn, now, day)
            if n == 0:
                return done
            done += n

    def forget_old_histories(self, batch: int = 1000) -> int:
        """Empty stored histories older than WXBOT_MEMORY_DAYS (0: keep them), in batches."""
        return self._in_batches(self.forget_histories, batch)

    def forget_old_answers(self, batch: int = 1000) -> int:
        """Delete LLM answers kept for promotion older than WXBOT_MEMORY_DAYS (0: keep them),
        in batches."""
        return self._in_batches(self.forget_answers, batch)

    def forget_old_votes(self, batch: int = 1000) -> int:
        """Delete did-you-mean votes (a user's OpenID and wording) cast more than
        WXBOT_MEMORY_DAYS ago (0: keep them), in batches."""
        return self._in_batches(self.forget_votes, batch)

    def forget_stale_unanswered(self, batch: int = 1000) -> int:
        """Delete unanswered questions not asked for WXBOT_UNANSWERED_DAYS (0: keep them),
        in batches."""
        return self._in_batches(self.forget_unanswered, batch)

    def _in_batches(
        self, one: Callable[[Connection, float, int], int], batch: int, now: float | None = None
    ) -> int:
        """Run ``one`` (conn, now, limit) a transaction at a time until a batch does less than
        a batch; how many rows it did in all. ``now``: the clean-up's clock if it has read it."""
        now = self._now() if now is None else now
        done = 0
        while True:
            with transaction(self.engine) as conn:
                n = one(conn, now, batch)
            done += n
            if n < batch:
                return done

    def forget_unanswered(self, conn: Connection, now: float, limit: int) -> int:
        """One batch of forget_stale_unanswered, in ``conn``'s transaction."""
        return _past(unanswered.prune_unanswered, self.settings.unanswered_days, conn, now, limit)

    def _now(self) -> float:
        """The clock, measured against the database's first when it keeps that time (a
        ``wxbot sessions cleanup`` process has served no message that would have)."""
        with self.engine.connect() as conn:
            return synced_now(self.clock, conn)

    def forget_histories(self, conn: Connection, now: float, limit: int) -> int:
        """One batch of forget_old_histories, in ``conn``'s transaction."""
        forget = getattr(self.deps.memory, "forget_old_histories", None)
        return _past(forget, self.settings.memory_days, conn, now, limit)

    def forget_answers(self, conn: Connection, now: float, limit: int) -> int:
        """One batch of forget_old_answers, in ``conn``'s transaction."""
        forget = getattr(self.deps.memory, "forget_old_answers", None)
        return _past(forget, self.settings.memory_days, conn, now, limit)

    def forget_votes(self, conn: Connection, now: float, limit: int) -> int:
        """One batch of forget_old_votes, in ``conn``'s transaction."""
        return _past(learning.prune_votes, self.settings.memory_days, conn, now, limit)

    def clean_up_a_batch(self) -> None:
        """One small batch of each clean-up, in one transaction (SMS verifications in their
        own: see forget_ended_verifications); a failure is only logged."""
        try:
            with transaction(self.engine) as conn:
                now = synced_now(self.clock, conn)
                store.delete_expired(conn, now, 200)
                store.prune_seen(conn, now - self.settings.seen_ttl, 500)
                self.forget_histories(conn, now, 200)
                self.forget_answers(conn, now, 200)
                self.forget_votes(conn, now, 200)
                self.forget_unanswered(conn, now, 200)
            with transaction(self.engine) as conn:
                phone.prune_codes(conn, now, 200)
            day = phone.day_number(now, self.settings.timezone)
            for _ in range(2):  # as many as a send prunes
                with transaction(self.engine) as conn:
                    phone.prune_one(conn, now, day)
        except Exception:
            log.warning("opportunistic clean-up failed", exc_info=True)


def _past(
    prune: Callable[[Connection, float, int], int] | None,
    days: int,
    conn: Connection,
    now: float,
    limit: int,
) -> int:
    """One batch of ``prune`` (conn, older_than, limit) for a retention of ``days`` (0 keeps
    everything; None: no such store, as a bot without an LLM memory has none)."""
    if prune is None or days <= 0:
        return 0
    return int(prune(conn, now - days * 86_400, limit))
