"""Slow work that never came back (its worker was killed): its users are told by push.

A user whose slow work was under way when its worker died (an OOM kill, a SIGKILL past the
stop's grace period, a crashed host) was perhaps told 「还在处理中」, and waits for a result
that is not coming. Without a push, their next message begins with the lost-work notice
(engine.py); with WeChat's customer-service API (WXBOT_APPSECRET) they are told at once,
within about a minute of the work counting as lost, by whichever process looks first.

Each process looks now and then, in a background thread, prompted by the messages it
serves (no timer thread, nothing to stop). A record is claimed under its user's lock:
marked answered with the apology, so no other process pushes it too, then pushed. Once
pushed, the work is no longer under way for the user, so their next message says nothing
more; a push that fails leaves it under way, so the next message still owns up to it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from wxbot.config import Settings
from wxbot.database_clock import synced_now
from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, language, words
from wxbot.dialog.daemon_pool import DaemonThreads
from wxbot.dialog.slow import dump_reply, push_safely
from wxbot.i18n import translate
from wxbot.messages.replies import Reply, Text

log = logging.getLogger(__name__)

LOOK_EVERY = 60.0  # seconds between one process's looks
BATCH = 50  # lost jobs owned up to per look, at most
# Work lost longer ago than this (past when it counted as lost) is left to the user's next
# message: by then an unprompted apology would puzzle more than help.
PUSH_WITHIN = 3600.0


class LostWork:
    """Finds slow work that counts as lost and tells its users by push."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Callable[[], float],
        lost_after: float,
        push: Callable[[str, Reply], bool] | None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.lost_after = lost_after
        self.push = push
        self._next_look = 0.0  # by ``clock``: a test's clock moves the looks too
        self._lock = threading.Lock()
        self._thread = DaemonThreads(1, "wxbot-lost-work")

    def maybe_look(self) -> None:
        """Called for each message: start a look in the background when one is due. Costs
        a clock reading otherwise; nothing at all without a push."""
        if self.push is None:
            return
        now = self.clock()
        if now < self._next_look:
            return
        with self._lock:
            if now < self._next_look:
                return  # another thread started it
            self._next_look = now + LOOK_EVERY
        self._thread.submit(self.look)

    def look(self) -> int:
        """Tell the users of lost work (up to BATCH); how many were pushed. Never raises."""
        try:
            with self.engine.connect() as conn:
                now = synced_now(self.clock, conn)
                lost = store.unfinished_work(
                    conn, now - self.lost_after, now - self.lost_after - PUSH_WITHIN, BATCH
                )
        except Exception as exc:  # the database is down: look again next time
            log.warning("looking for lost slow work failed: %s", exc)
            return 0
        pushed = 0
        for dedup_key, openid in lost:
            try:
                pushed += self._own_up(dedup_key, openid)
            except Exception:
                log.exception("owning up to the lost work of %s failed", dedup_key)
        return pushed

    def _own_up(self, dedup_key: str, openid: str) -> bool:
        apology = with_retries(lambda: self._claim(dedup_key, openid))
        if apology is None:
            return False  # another process claimed it, or the work came back after all
        if not push_safely(self.push, openid, apology):
            return False  # still under way for the user: their next message owns up to it
        log.info("told %s by push that their slow work %s was lost", openid, dedup_key)
        with_retries(lambda: self._forget(dedup_key, openid))
        return True

    def _claim(self, dedup_key: str, openid: str) -> Reply | None:
        """Under the user's lock (taken first, as every step takes it), store the apology as
        the message's answer, if the work is still unfinished; the apology, or None."""
        with transaction(self.engine) as conn:
            store.lock_context(conn, openid)
            record = store.find_seen(conn, dedup_key, lock=True)
            if record is None or record.status not in (store.PENDING, store.LATE):
                return None
            stored, _ = language.stored(conn, openid)
            apology = Text(translate(words.WORK_LOST, stored or self.settings.default_language))
            store.update_seen(conn, dedup_key, reply=dump_reply(apology), status=store.DONE)
        return apology

    def _forget(self, dedup_key: str, openid: str) -> None:
        """The user was told: the work is no longer under way for them."""
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, openid)
            if ctx is None:  # expired and evicted, or the user unsubscribed
                return
            under_way = delivery.working(ctx)
            if under_way.pop(dedup_key, None) is None:
                return  # their next message already owned up to it
            delivery.set_working(ctx, under_way)
            store.save_slots(conn, ctx)
