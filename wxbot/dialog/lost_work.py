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

Work a stopping process gave up on after its user was told 「还在处理中」 (slow.py's drain) is
found by the same look at once, not minutes later: the stopped process cannot push, so it left
the record marked TO_PUSH, holding the apology it also kept in the user's outbox for their next
message. The claim (under the user's lock) marks it done and takes the apology out of the
outbox, so the next message does not repeat it; if the next message carried it first, nothing
is pushed; a refused push puts it back for the next message.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine, select

from wxbot.config import Settings
from wxbot.database_clock import synced_now
from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, language, words
from wxbot.dialog.daemon_pool import DaemonThreads
from wxbot.dialog.slow import TO_PUSH, dump_reply, push_safely
from wxbot.i18n import translate
from wxbot.messages.replies import Reply, Text, reply_from_dict

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
                given_up = _given_up(conn, BATCH)
        except Exception as exc:  # the database is down: look again next time
            log.warning("looking for lost slow work failed: %s", exc)
            return 0
        pushed = 0
        for dedup_key, openid in lost:
            try:
                pushed += self._own_up(dedup_key, openid)
            except Exception:
                log.exception("owning up to the lost work of %s failed", dedup_key)
        for dedup_key, openid, started in given_up:
            # Older ones (every process was down for an hour) are only marked done: the
            # apology waits in the outbox for the user's next message.
            fresh = started >= now - PUSH_WITHIN
            try:
                pushed += self._own_up_given_up(dedup_key, openid, fresh)
            except Exception:
                log.exception("owning up to the work given up on of %s failed", dedup_key)
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
            ctx, _ = store.lock_context(conn, openid)
            record = store.find_seen(conn, dedup_key, lock=True)
            if record is None or record.status not in (store.PENDING, store.LATE):
                return None
            stored, _ = language.stored(conn, openid)
            apology = Text(translate(words.WORK_LOST, stored or self.settings.default_language))
            store.update_seen(conn, dedup_key, reply=dump_reply(apology), status=store.DONE)
            if ctx is not None and dedup_key not in delivery.working(ctx):
                started = conn.execute(
                    select(store.seen.c.created_at).where(store.seen.c.dedup_key == dedup_key)
                ).scalar_one()
                if ctx.created_at <= started:
                    # The context that registered the work no longer has it under way: the
                    # user's next message owned up to it already (not one created since,
                    # after the old one expired and was evicted: that one never knew of it).
                    return None
        return apology

    def _own_up_given_up(self, dedup_key: str, openid: str, fresh: bool) -> bool:
        apology = with_retries(lambda: self._claim_given_up(dedup_key, openid, fresh))
        if apology is None:
            return False  # another process claimed it, or the next message carried it
        if push_safely(self.push, openid, apology):
            log.info("told %s by push that a stop gave up on their slow work %s", openid, dedup_key)
            return True
        with_retries(lambda: self._keep(openid, apology))  # for the next message, as before
        return False

    def _claim_given_up(self, dedup_key: str, openid: str, fresh: bool) -> Reply | None:
        """Under the user's lock: mark the record done (no other process pushes it) and take
        its apology out of the user's outbox (the next message does not repeat it); the
        apology to push, or None if it is not to be pushed."""
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, openid)
            record = store.find_seen(conn, dedup_key, lock=True)
            if record is None or record.status != TO_PUSH or not record.reply:
                return None
            store.update_seen(conn, dedup_key, status=store.DONE)
            if not fresh:
                return None
            apology = json.loads(record.reply)
            if ctx is not None:  # None: expired and evicted, so no next message would say it
                if not delivery.unqueue_late(ctx, apology):
                    return None  # their next message carried it already
                store.save_slots(conn, ctx)
        return reply_from_dict(apology)

    def _keep(self, openid: str, apology: Reply) -> None:
        """A refused push: the apology goes back to the user's outbox for their next message."""
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, openid)
            if ctx is not None:
                delivery.queue_late(ctx, apology)
                store.save_slots(conn, ctx)

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


def _given_up(conn: Connection, limit: int) -> list[tuple[str, str, float]]:
    """(dedup key, openid, when its work started) of records marked TO_PUSH, oldest first:
    a range of the seen records' (status, created_at) index."""
    seen = store.seen
    rows = conn.execute(
        select(seen.c.dedup_key, seen.c.openid, seen.c.created_at)
        .where(seen.c.status == TO_PUSH)
        .order_by(seen.c.created_at)
        .limit(limit)
    )
    return [(row.dedup_key, row.openid, row.created_at) for row in rows]
