"""Slow outbound work inside WeChat's 5-second window (the engine's Deferred outcomes).

Phase one (engine.py) saved the interim state and a *pending* dedup record and committed;
the work then runs in a thread pool without any lock. The request that started it waits up
to the reply deadline; WeChat's retries (which may reach other containers) poll the dedup
record; the last retry says "still working" and marks the record *late*, so the result is
pushed through the customer-service API or kept for the user's next message.

``SlowPath`` is a collaborator of the engine, not part of it: the engine hands it the work
and a ``Resumer`` (the steps that need the dialogue: applying the resumed outcome under the
user's lock, keeping a late result for the next message, and saying things in the user's
language).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine

from wxbot import metrics
from wxbot.config import Settings
from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import words
from wxbot.dialog.flow import Deferred
from wxbot.i18n import Message
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, reply_from_dict

log = logging.getLogger(__name__)

DONE, STILL_WORKING = "deferred", "still_working"  # outcomes of a delivery, for the metrics
POLL_SECONDS = 0.05
HOLD_SECONDS = 15.0  # how long a request holds on to slow work nobody will answer otherwise
# Slow work not back after this long never will be (its worker was killed, or its resume
# failed): the user's next message says so. Longer if the configured timeouts allow longer work.
WORK_LOST_AFTER = 300.0


def work_lost_after(settings: Any) -> float:
    """Seconds after which unfinished slow work counts as lost: well past the longest a job
    may take (a few calls, each within the longest configured connect + read timeout)."""
    reads = [settings.http_timeout, settings.llm_timeout, *settings.timeouts.values()]
    connects = [settings.connect_timeout, settings.llm_connect_timeout]
    return max(WORK_LOST_AFTER, 3 * (max(reads) + max(connects)) + HOLD_SECONDS)


@dataclass
class Pending:
    """Phase one ended with slow work under way (or found a retry of such a message)."""

    future: Future[Reply] | None
    attempts: int


def dump_reply(reply: Reply) -> str:
    return json.dumps(reply.to_dict(), ensure_ascii=False)


class Resumer(Protocol):
    """What the slow path needs from the dialogue engine."""

    def resume_deferred(
        self, msg: Inbound, deferred: Deferred, result: object, saved_version: int
    ) -> tuple[Reply, bool]:
        """Apply the resumed outcome under the user's lock; (reply, whether it is late)."""
        ...

    def queue_late(self, openid: str, reply: Reply) -> None:
        """Keep a late result for the user's next message."""
        ...

    def localised(self, msg: Inbound, message: Message) -> str:
        """``message`` in the sender's language (outside any transaction)."""
        ...

    def forget_work(self, msg: Inbound) -> None:
        """The work's failure was answered: it is no longer under way for the user."""
        ...


class SlowPath:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        resumer: Resumer,
        push: Callable[[str, Reply], bool] | None = None,
        workers: int = 16,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.resumer = resumer
        self.push = push
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wxbot-deferred")

    def start(self, msg: Inbound, deferred: Deferred, saved_version: int) -> Pending:
        """Run the work now (phase one has committed: it must find the pending record)."""
        metrics.deferred("started")
        future = self._pool.submit(self._finish, msg, deferred, saved_version)
        return Pending(future=future, attempts=1)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _finish(self, msg: Inbound, deferred: Deferred, saved_version: int) -> Reply:
        try:
            result = deferred.work()
        except Exception as exc:  # handed to resume, which turns it into a friendly reply
            log.warning("deferred work for %s failed: %r", msg.dedup_key, exc)
            result = exc
        metrics.deferred("finished")
        try:
            reply, late = with_retries(
                lambda: self.resumer.resume_deferred(msg, deferred, result, saved_version),
                deadline=time.monotonic() + HOLD_SECONDS,
                on_retry=metrics.db_retry,
            )
        except Exception:
            log.exception("resuming %s failed", msg.dedup_key)
            return self._apologise(msg)
        # Push after the commit: the push is an HTTP call (and may refresh the shared token in
        # the database), which must not run inside the user's locked transaction; on SQLite
        # that transaction holds the database's write lock and the token read would deadlock.
        if late:
            self._deliver_late(msg, reply)
        return reply

    def _apologise(self, msg: Inbound) -> Reply:
        """A resume that failed: the apology is the message's answer, delivered like a result
        (to the delivery waiting, or pushed or kept when the user was told we are still
        working), and the work is no longer under way, so the user's next message does not
        also begin with the lost-work notice."""
        reply = Text(self.resumer.localised(msg, words.APOLOGY))
        try:
            late = with_retries(lambda: self._record_apology(msg.dedup_key, reply))
        except Exception:  # the database is down: the lost-work notice will say it later
            log.exception("recording the apology for %s failed", msg.dedup_key)
            return reply
        if late:
            self._deliver_late(msg, reply)
        try:
            with_retries(lambda: self.resumer.forget_work(msg))
        except Exception:
            log.exception("clearing the work under way of %s failed", msg.dedup_key)
        return reply

    def _record_apology(self, dedup_key: str, reply: Reply) -> bool:
        """Store the apology as the message's reply; whether the user was told to wait."""
        with transaction(self.engine) as conn:
            record = store.find_seen(conn, dedup_key, lock=True)
            store.update_seen(conn, dedup_key, reply=dump_reply(reply), status="done")
        return record is not None and record.status == "late"

    def _deliver_late(self, msg: Inbound, reply: Reply) -> None:
        """A result for a user told 「还在处理中」: pushed, or kept for their next message."""
        if self._push(msg.openid, reply):
            return
        try:
            with_retries(lambda: self.resumer.queue_late(msg.openid, reply))
        except Exception:
            log.exception("keeping the late result of %s failed", msg.dedup_key)

    def _push(self, openid: str, reply: Reply) -> bool:
        if self.push is None:
            return False
        try:
            return bool(self.push(openid, reply))
        except Exception:
            log.exception("customer-service push to %s failed", openid)
            return False

    def await_pending(self, msg: Inbound, pending: Pending, started: float) -> tuple[Reply, str]:
        """Wait for slow work within WeChat's window; returns the reply and the outcome for
        the metrics (deferred, or still_working).

        Not finished by the deadline: on WeChat's last delivery (the third), say we are still
        working and mark the record *late* so the result is pushed or kept for the next
        message; on earlier deliveries, hold the connection: WeChat gives up after 5 s and
        retries, and the retry is answered from the dedup record.
        """
        deadline = started + self.settings.reply_deadline
        if pending.future is not None:
            try:
                return pending.future.result(timeout=max(0.0, deadline - time.monotonic())), DONE
            except TimeoutError:
                pass
        else:
            reply = self._poll_done(msg.dedup_key, deadline)
            if reply is not None:
                return reply, DONE
        if pending.attempts >= 3:
            metrics.deferred("late")
            return with_retries(lambda: self._mark_late(msg))
        hold_until = time.monotonic() + HOLD_SECONDS
        if pending.future is not None:
            try:
                return pending.future.result(timeout=HOLD_SECONDS), DONE
            except TimeoutError:
                return Silent(), DONE
        return self._poll_done(msg.dedup_key, hold_until) or Silent(), DONE

    def _poll_done(self, dedup_key: str, until: float) -> Reply | None:
        while True:
            try:
                with self.engine.connect() as conn:
                    record = store.find_seen(conn, dedup_key)
            except Exception as exc:  # a database blip while polling: poll again
                log.info("polling %s failed: %s", dedup_key, exc)
                record = None
            if record is not None and record.status == "done" and record.reply:
                return reply_from_dict(json.loads(record.reply))
            if time.monotonic() >= until:
                return None
            time.sleep(POLL_SECONDS)

    def _mark_late(self, msg: Inbound) -> tuple[Reply, str]:
        with transaction(self.engine) as conn:
            record = store.find_seen(conn, msg.dedup_key, lock=True)
            if record is not None and record.status == "done" and record.reply:
                return reply_from_dict(json.loads(record.reply)), DONE
            store.update_seen(conn, msg.dedup_key, status="late")
        return Text(self.resumer.localised(msg, words.STILL_WORKING)), STILL_WORKING
