"""Slow outbound work inside WeChat's 5-second window (the engine's Deferred outcomes).

Phase one (engine.py) saved the interim state and a *pending* dedup record and committed;
the work then runs in a thread pool without any lock. The request that started it waits up
to the reply deadline; WeChat's retries (which may reach other containers) poll the dedup
record; the last retry says "still working" and marks the record *late*, so the result is
pushed through the customer-service API or kept for the user's next message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, words
from wxbot.dialog.flow import Deferred
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, reply_from_dict

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from wxbot.dialog.engine import Bot

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
HOLD_SECONDS = 15.0  # how long a request holds on to slow work nobody will answer otherwise


@dataclass
class Pending:
    """Phase one ended with slow work under way (or found a retry of such a message)."""

    future: Future[Reply] | None
    attempts: int


def dump_reply(reply: Reply) -> str:
    return json.dumps(reply.to_dict(), ensure_ascii=False)


class SlowWork:
    """The Bot's methods for Deferred outcomes (a mixin: they share the Bot's state)."""

    def _finish_deferred(self: Bot, msg: Inbound, deferred: Deferred, saved_version: int) -> Reply:
        try:
            result = deferred.work()
        except Exception as exc:  # handed to resume, which turns it into a friendly reply
            log.warning("deferred work for %s failed: %r", msg.dedup_key, exc)
            result = exc
        try:
            reply, late = with_retries(lambda: self._resume(msg, deferred, result, saved_version))
        except Exception:
            log.exception("resuming %s failed", msg.dedup_key)
            reply = Text(self.localised(msg, words.APOLOGY))
            with transaction(self.engine) as conn:
                store.update_seen(conn, msg.dedup_key, reply=dump_reply(reply), status="done")
            return reply
        # Push after the commit: the push is an HTTP call (and may refresh the shared token in
        # the database), which must not run inside the user's locked transaction; on SQLite
        # that transaction holds the database's write lock and the token read would deadlock.
        if late and not self._push(msg.openid, reply):
            try:
                with_retries(lambda: self._queue_late(msg.openid, reply))
            except Exception:
                log.exception("keeping the late result of %s failed", msg.dedup_key)
        return reply

    def _resume(
        self, msg: Inbound, deferred: Deferred, result: object, saved_version: int
    ) -> tuple[Reply, bool]:
        """Apply the resumed outcome; returns the reply and whether it is late (to push)."""
        later: list[Callable[[Connection], None]] = []
        with transaction(self.engine) as conn:
            now = self.clock()
            ctx, seen = store.lock_context(conn, msg.openid, msg.dedup_key, self._lock_statement)
            if ctx is None or seen is None:  # the user unsubscribed meanwhile
                return Silent(), False
            turn = self._turn(conn, msg, ctx, now, later)
            outcome = deferred.resume(turn, result)
            if ctx.version == saved_version:
                reply = self._apply(ctx, msg, outcome)
            else:  # another message moved the dialogue on: keep its state, deliver the answer
                reply = outcome.reply or Silent()
                delivery.remember(ctx, msg, reply, self.history_window(ctx))
            store.save_context(conn, ctx, now, self.settings.session_ttl)
            store.update_seen(conn, msg.dedup_key, reply=dump_reply(reply), status="done")
        self._run_after_commit(later)  # shared statistics rows, after the user's lock is gone
        return reply, seen.status == "late"

    def _queue_late(self: Bot, openid: str, reply: Reply) -> None:
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, openid)
            if ctx is None:  # unsubscribed meanwhile
                return
            delivery.queue_late(ctx, reply)
            store.save_context(conn, ctx, self.clock(), self.settings.session_ttl)

    def _push(self: Bot, openid: str, reply: Reply) -> bool:
        push = getattr(self.deps.services, "push", None)
        if push is None:
            return False
        try:
            return bool(push(openid, reply))
        except Exception:
            log.exception("customer-service push to %s failed", openid)
            return False

    def _await_pending(self: Bot, msg: Inbound, pending: Pending, started: float) -> Reply:
        """Wait for slow work within WeChat's window.

        Not finished by the deadline: on WeChat's last delivery (the third), say we are still
        working and mark the record *late* so the result is pushed or kept for the next
        message; on earlier deliveries, hold the connection: WeChat gives up after 5 s and
        retries, and the retry is answered from the dedup record.
        """
        deadline = started + self.settings.reply_deadline
        if pending.future is not None:
            try:
                return pending.future.result(timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
        else:
            reply = self._poll_done(msg.dedup_key, deadline)
            if reply is not None:
                return reply
        if pending.attempts >= 3:
            return with_retries(lambda: self._mark_late(msg))
        hold_until = time.monotonic() + HOLD_SECONDS
        if pending.future is not None:
            try:
                return pending.future.result(timeout=HOLD_SECONDS)
            except TimeoutError:
                return Silent()
        return self._poll_done(msg.dedup_key, hold_until) or Silent()

    def _poll_done(self: Bot, dedup_key: str, until: float) -> Reply | None:
        while True:
            with self.engine.connect() as conn:
                record = store.find_seen(conn, dedup_key)
            if record is not None and record.status == "done" and record.reply:
                return reply_from_dict(json.loads(record.reply))
            if time.monotonic() >= until:
                return None
            time.sleep(POLL_SECONDS)

    def _mark_late(self: Bot, msg: Inbound) -> Reply:
        with transaction(self.engine) as conn:
            record = store.find_seen(conn, msg.dedup_key, lock=True)
            if record is not None and record.status == "done" and record.reply:
                return reply_from_dict(json.loads(record.reply))
            store.update_seen(conn, msg.dedup_key, status="late")
        return Text(self.localised(msg, words.STILL_WORKING))
