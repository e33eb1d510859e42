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

Stopping (a deploy's SIGTERM, a reload, a recycled worker): ``begin_drain`` starts the stop
clock, requests stop holding on at its deadline, and ``close`` lets the work under way finish
until then, gives up on the rest (their users get the apology, as for a failed resume, instead
of nothing and a lost-work notice minutes later) and logs what it gave up on. A stopping process
pushes nothing (gunicorn's SIGKILL comes seconds after the drain; a push may take 12 s): where
the customer-service API is configured, a user told 「还在处理中」 gets the apology by push from
a process that stays (or this one after its restart), whose lost-work look (lost_work.py) finds
the record marked TO_PUSH; else, or if that push is refused, with their next message.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout  # not the builtin before 3.11
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine

from wxbot import errors, metrics
from wxbot.config import Settings
from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, words
from wxbot.dialog.daemon_pool import DaemonThreads
from wxbot.dialog.flow import Deferred
from wxbot.i18n import Message
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, Withheld, reply_from_dict

log = logging.getLogger(__name__)

DONE, STILL_WORKING = "deferred", "still_working"  # outcomes of a delivery, for the metrics
POLL_SECONDS = 0.05
HOLD_SECONDS = 15.0  # how long a request holds on to slow work nobody will answer otherwise
# Slow work not back after this long never will be (its worker was killed, or its resume
# failed): the user's next message says so. Longer if the configured timeouts allow longer work.
WORK_LOST_AFTER = 300.0
# How long a stopping worker lets slow work under way finish (an LLM answer takes up to its
# 20 s read budget). gunicorn's graceful_timeout and the container's stop grace period must be
# longer (wxbot/serving.py, README "Deploying"), or a SIGKILL loses the work without a word.
DRAIN_SECONDS = 20.0
RESUME_GRACE = 2.0  # past the drain: work already writing its result gets this much longer
HOLD_SLICE = 0.25  # a held request looks at the stop clock this often
RUNNING, RESUMING, ABANDONED = "running", "resuming", "abandoned"
# A record marked TO_PUSH also has its apology in the user's outbox for their next message.
# The lost-work look of any process claims it (then done) and pushes the apology instead,
# unless the next message carried it first.
TO_PUSH, ANSWERED = store.TO_PUSH, store.ANSWERED
# Slow work under way or queued, per worker thread, before new work is refused (answered at
# once as if its service had failed). Without a bound, a service that hangs while messages
# keep asking it queues their work (message, closure, future) without end. 16 per thread:
# behind that many calls of the slowest kind (an LLM answer's 20 s read budget) a job would
# start after WORK_LOST_AFTER, when its user has already been told it was lost.
BACKLOG_PER_WORKER = 16


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


@dataclass(eq=False)
class _Job:
    """One piece of slow work: running, then resuming (writing its result, which a stop
    lets finish), or abandoned by a stop (its user got the apology; a late result is dropped)."""

    msg: Inbound
    future: Future[Reply] = field(default_factory=Future)
    state: str = RUNNING


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
        max_jobs: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.resumer = resumer
        self.push = push
        # Whether the lost-work look pushes (an AppSecret gives every process the customer-
        # service API: wxbot/services/build_services): work this process gives up on when it
        # stops is then left for that look, marked TO_PUSH, rather than for the next message.
        self.pushed_later = bool(settings.appsecret)
        self._pool = DaemonThreads(workers, "wxbot-deferred")
        self._jobs: set[_Job] = set()
        self._max_jobs = max_jobs if max_jobs is not None else workers * BACKLOG_PER_WORKER
        self._jobs_lock = threading.Lock()
        self._drain_at: float | None = None  # the stop clock's deadline (monotonic)
        self._closed = False
        # `gunicorn wsgi:app` without wxbot's hooks (wxbot/serving.py) still drains at exit.
        ref = weakref.ref(self)
        atexit.register(lambda: (slow := ref()) is not None and slow.close())

    def start(self, msg: Inbound, deferred: Deferred, saved_version: int) -> Pending:
        """Run the work now (phase one has committed: it must find the pending record)."""
        metrics.deferred("started")
        job = _Job(msg)
        with self._jobs_lock:
            full = len(self._jobs) >= self._max_jobs
            if not full:
                self._jobs.add(job)
        if full:  # refused now, in this thread: resumed as if its service had failed
            refused = dataclasses.replace(deferred, work=_overloaded)
            self._run(job, refused, saved_version)
        else:
            self._pool.submit(lambda: self._run(job, deferred, saved_version))
        return Pending(future=job.future, attempts=1)

    # --- stopping -----------------------------------------------------------------------

    def begin_drain(self, seconds: float) -> None:
        """Start the stop clock: requests stop holding on to slow work in ``seconds``, and
        ``close`` gives up on what is still running then. Called from signal handlers (the
        stop signal is when the container's grace period starts), so no locks and no logging
        here; the earliest deadline wins."""
        at = time.monotonic() + seconds
        current = self._drain_at
        if current is None or at < current:
            self._drain_at = at

    @property
    def draining(self) -> bool:
        """A stop has begun: the process finishes its work and should get no more."""
        return self._drain_at is not None

    def close(self, seconds: float = DRAIN_SECONDS) -> None:
        """Stop: let the slow work under way finish until the stop clock's deadline (started
        now unless a stop signal started it), then give up on the rest, owning up to it to
        its users, and log it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.begin_drain(seconds)
        deadline = self._drain_at or time.monotonic()
        busy = self._jobs_in(RUNNING, RESUMING)
        if busy:
            log.info(
                "stopping: waiting up to %.0f s for %d slow job(s) under way",
                max(0.0, deadline - time.monotonic()),
                len(busy),
            )
        self._wait_for(deadline, RUNNING, RESUMING)
        self._abandon_running()
        self._wait_for(time.monotonic() + RESUME_GRACE, RESUMING)
        left = self._jobs_in(RESUMING)
        if left:
            log.error(
                "stopping: %d slow job(s) still writing their results (%s): their users get "
                "the lost-work notice with their next message",
                len(left),
                ", ".join(job.msg.dedup_key for job in left),
            )

    def _jobs_in(self, *states: str) -> list[_Job]:
        with self._jobs_lock:
            return [job for job in self._jobs if job.state in states]

    def _wait_for(self, until: float, *states: str) -> None:
        while self._jobs_in(*states) and time.monotonic() < until:
            time.sleep(POLL_SECONDS)

    def _abandon_running(self) -> None:
        """Give up on the work still running: its users get the apology now (as the
        message's answer, or pushed or kept for their next message when they were told to
        wait), not nothing and a lost-work notice minutes later."""
        with self._jobs_lock:
            given_up = [job for job in self._jobs if job.state == RUNNING]
            for job in given_up:
                job.state = ABANDONED
        if not given_up:
            return
        log.error(
            "stopping: gave up on %d slow job(s) still running after the drain (%s); "
            "their users are told to send again",
            len(given_up),
            ", ".join(job.msg.dedup_key for job in given_up),
        )
        for job in given_up:
            metrics.deferred("abandoned")
            _settle(job.future, self._give_up(job.msg))

    def _give_up(self, msg: Inbound) -> Reply:
        """The apology for work given up on: the message's answer (for WeChat's retry, at a
        container that stays), and for a user told 「还在处理中」 kept for their next message
        and, where pushes go, marked TO_PUSH for a staying process's lost-work look. Not
        pushed from here: a push may take its whole 12 s budget, and the process has seconds
        left before gunicorn's SIGKILL."""
        reply = Text(self.resumer.localised(msg, words.APOLOGY))
        try:
            with_retries(lambda: self._record_given_up(msg, reply))
        except Exception:  # the database is down: the lost-work notice will say it later
            log.exception("recording the apology for %s failed", msg.dedup_key)
        return reply

    def _record_given_up(self, msg: Inbound, reply: Reply) -> None:
        """One transaction under the user's lock (taken first, as every step takes it), so a
        look never finds the TO_PUSH mark without the apology in the outbox it removes."""
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, msg.openid)
            record = store.find_seen(conn, msg.dedup_key, lock=True)
            if record is None or record.status not in (store.PENDING, store.LATE):
                return  # the user unsubscribed, or the message was answered already
            late = record.status == store.LATE
            status = TO_PUSH if late and self.pushed_later else store.DONE
            store.update_seen(conn, msg.dedup_key, reply=dump_reply(reply), status=status)
            if ctx is None:  # expired and evicted: only a push can tell them
                return
            under_way = delivery.working(ctx)
            under_way.pop(msg.dedup_key, None)  # answered: no lost-work notice later
            delivery.set_working(ctx, under_way)
            if late:
                delivery.queue_late(ctx, reply)
            store.save_slots(conn, ctx)

    def _claim(self, job: _Job) -> bool:
        """The work came back: resume it, unless a stop gave up on it meanwhile."""
        with self._jobs_lock:
            if job.state == ABANDONED:
                return False
            job.state = RESUMING
            return True

    # --- running ------------------------------------------------------------------------

    def _run(self, job: _Job, deferred: Deferred, saved_version: int) -> None:
        try:
            reply = self._finish(job, deferred, saved_version)
        except BaseException as exc:  # the request holding on gets it, as from a Future
            with self._jobs_lock:
                self._jobs.discard(job)
            if not job.future.done():
                job.future.set_exception(exc)
            raise
        with self._jobs_lock:
            self._jobs.discard(job)
        if reply is not None:
            _settle(job.future, reply)

    def _finish(self, job: _Job, deferred: Deferred, saved_version: int) -> Reply | None:
        msg = job.msg
        try:
            result = deferred.work()
        except Exception as exc:  # handed to resume, which turns it into a friendly reply
            log.warning("deferred work for %s failed: %r", msg.dedup_key, exc)
            result = _detached(exc)  # resume reads its type and words, never its frames
        metrics.deferred("finished")
        if not self._claim(job):
            log.warning("slow work for %s came back after a stop gave up on it", msg.dedup_key)
            return None
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
        return push_safely(self.push, openid, reply)

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
            reply = self._hold(pending.future, deadline)
        else:
            reply = self._poll_done(msg.dedup_key, deadline)
        if reply is not None:
            return reply, DONE
        if pending.attempts >= 3:
            metrics.deferred("late")
            return with_retries(lambda: self._mark_late(msg))
        hold_until = time.monotonic() + HOLD_SECONDS
        if pending.future is not None:
            reply = self._hold(pending.future, hold_until)
        else:
            reply = self._poll_done(msg.dedup_key, hold_until)
        if reply is not None:
            return reply, DONE
        # Held to the end, WeChat gave up on this delivery long ago: silence is safe. Cut
        # short by a stop, WeChat may still be waiting: unanswered (503), it delivers again,
        # to a container that stays, which answers from the dedup record.
        return (Withheld() if self._stop_cuts(hold_until) else Silent()), DONE

    def _stop_cuts(self, until: float) -> bool:
        return self._drain_at is not None and self._drain_at < until

    def _until(self, until: float) -> float:
        """``until``, or the stop clock's deadline if that comes first."""
        drain_at = self._drain_at
        return until if drain_at is None else min(until, drain_at)

    def _hold(self, future: Future[Reply], until: float) -> Reply | None:
        """The work's reply if it comes by ``until`` (or by the stop clock's deadline)."""
        while True:
            remaining = self._until(until) - time.monotonic()
            try:
                return future.result(timeout=max(0.0, min(remaining, HOLD_SLICE)))
            except FutureTimeout:
                if remaining <= HOLD_SLICE:
                    return None

    def _poll_done(self, dedup_key: str, until: float) -> Reply | None:
        while True:
            try:
                with self.engine.connect() as conn:
                    record = store.find_seen(conn, dedup_key)
            except Exception as exc:  # a database blip while polling: poll again
                log.info("polling %s failed: %s", dedup_key, exc)
                record = None
            if record is not None and record.status in ANSWERED and record.reply:
                return reply_from_dict(json.loads(record.reply))
            if time.monotonic() >= self._until(until):
                return None
            time.sleep(POLL_SECONDS)

    def _mark_late(self, msg: Inbound) -> tuple[Reply, str]:
        with transaction(self.engine) as conn:
            record = store.find_seen(conn, msg.dedup_key, lock=True)
            if record is not None and record.status in ANSWERED and record.reply:
                return reply_from_dict(json.loads(record.reply)), DONE
            store.update_seen(conn, msg.dedup_key, status="late")
        return Text(self.resumer.localised(msg, words.STILL_WORKING)), STILL_WORKING


def push_safely(push: Callable[[str, Reply], bool] | None, openid: str, reply: Reply) -> bool:
    """Push ``reply`` through the customer-service API; whether it went (never raises)."""
    if push is None:
        return False
    try:
        return bool(push(openid, reply))
    except Exception:
        log.exception("customer-service push to %s failed", openid)
        return False


class Overloaded(Exception):
    """The slow work was refused: too much is under way or queued in this process."""


def _overloaded() -> Any:
    raise Overloaded("too much slow work under way in this process")


def _detached(exc: BaseException) -> BaseException:
    """``exc`` with no traceback, nor any on the exceptions it wraps (cause, context, args).

    An exception kept past its ``except`` clause holds, through its traceback, the frames
    it passed, and each frame its caller (``f_back``) up to the one keeping it in a
    variable: a reference cycle. It would hold the message, the work and every frame down
    to the failed call until the garbage collector found it; for each message while a
    service is down.
    """
    for one in errors.chain(exc):
        one.__traceback__ = None
    return exc


def _settle(future: Future[Reply], reply: Reply) -> None:
    # settled already: a stop's apology raced the work's end
    with contextlib.suppress(InvalidStateError):
        future.set_result(reply)
