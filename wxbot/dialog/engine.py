"""handle(inbound) -> reply: one locked transaction per message.

The order inside the transaction is what makes the bot safe across containers: lock the
user's context row, look up the dedup key (a retry gets the stored reply and changes nothing),
expire a stale context, run global interrupts then the current state's handler, apply limits,
store history, the reply and the new state, commit. Every message of one user serialises on
that row, so neither dedup nor state changes can race, whichever container each reaches.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable

from sqlalchemy import Connection, Double, Engine, bindparam

from wxbot import metrics
from wxbot.config import Settings
from wxbot.database_clock import shared_clock, synced_now
from wxbot.db import is_transient, run_after_commit, transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, language, words
from wxbot.dialog.context import ContextRow, SeenRecord
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Deps, Outcome
from wxbot.dialog.housekeeping import Housekeeping
from wxbot.dialog.locked import AlreadyProcessed, Locked, MessageStatements
from wxbot.dialog.lost_work import LostWork
from wxbot.dialog.resume import DialogueResumer
from wxbot.dialog.slow import DRAIN_SECONDS, Pending, SlowPath, dump_reply, work_lost_after
from wxbot.dialog.states import DialogueTable, build_table
from wxbot.dialog.steps import Dialogue
from wxbot.dialog.wechat_clock import WeChatClock
from wxbot.i18n import translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import (
    Reply,
    Silent,
    Text,
    TransferToHuman,
    Withheld,
    reply_from_dict,
)
from wxbot.stats import DailyCounters, zone

log = logging.getLogger(__name__)

WECHAT_GIVES_UP = 5.0  # seconds WeChat waits for one delivery before it drops it and retries
LAST_DELIVERY_AGE = 8.0  # a message this old (by WeChat's clock) is on its third delivery
ROOM_TRUST_SECONDS = 5.0  # how long a session count far below the cap is trusted


class _SessionsFull(Exception):
    """A new user's context would exceed WXBOT_MAX_SESSIONS: roll back its creation."""


class Bot:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        deps: Deps | None = None,
        table: DialogueTable | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.deps = deps or Deps(settings=settings)
        self.table = table or build_table()
        # This host's wall clock: keep time by the database's instead, which every container
        # shares (expiries written by one container are compared by another). A clock a test
        # injects is its whole world's clock and is used as it is.
        self.clock: Callable[[], float] = shared_clock(engine) if clock is time.time else clock
        self.wechat_clock = WeChatClock()  # how far WeChat's CreateTime is from our clock
        self.dialogue = Dialogue(self.table, settings, self.deps)
        # The knowledge version, the user's language and their history window are read
        # right after the context lock, in the same round trip: freshness, language and
        # memory for free. A new context starts from the user's stored memory, and their
        # first message's language is stored with it (no statement of their own either).
        memory = self.deps.memory
        riders = (
            getattr(self.deps.kb, "version_column", None),
            getattr(memory, "window_column", None),
        )
        self.statements = MessageStatements(
            engine,
            [*(rider() for rider in riders if rider), *language.lock_columns()],
            history=(
                memory.initial_history(
                    bindparam("openid"), bindparam("now", type_=Double), settings.memory_days
                )
                if memory is not None
                else None
            ),
            on_create=language.first_language_statement(engine),
            known_before=language.known_statement(),
        )
        # Messages and their outcomes per day, for the console's dashboard: summed in memory.
        self.stats = DailyCounters(engine, self.clock, zone(settings.timezone))
        # Slow work resumes under the user's lock there (resume.py), reading what this lock
        # reads, and counts what its outcome adds to the day's statistics.
        self.resumer = DialogueResumer(
            engine, settings, self.statements, self.dialogue, self.clock, count=self.stats.add
        )
        push = getattr(self.deps.services, "push", None)
        self.slow = SlowPath(engine, settings, self.resumer, push=push)
        self._work_lost_after = work_lost_after(settings)
        # Lost work is pushed only where pushes can go (an AppSecret): else the next message.
        can_push = getattr(self.deps.services, "wechat_api", None) is not None
        self.lost_work = LostWork(
            engine, settings, self.clock, self._work_lost_after, push if can_push else None
        )
        self._room_known: tuple[float, int] | None = None  # (when, stored contexts) when far below
        self.housekeeping = Housekeeping(engine, settings, self.deps, self.clock)

    # ----------------------------------------------------------------- public entry point

    def handle(self, msg: Inbound) -> Reply:
        """Answer one delivery of a message. Never raises.

        A transient database failure (dropped connection, refused connect, deadlock, lock wait
        timeout) is retried with backoff. While WeChat will still deliver the message again,
        the retries go on until WeChat has given up on this delivery, and then the delivery is
        left unanswered (Withheld) rather than apologised for: a 200 would stop WeChat's
        retries and lose the message. Only the last delivery, or a failure that is no blip,
        gets the apology.
        """
        started = time.monotonic()
        if msg.is_event and not self.dialogue.answers_event(msg, self._catch_up_knowledge):
            # A LOCATION report (every 5 s while the user is in the chat), a template message
            # delivered, a menu link opened, a QR code scanned whose scene is only a tracking
            # code (decided in memory)...: the user said nothing, so nothing of theirs
            # may change. No transaction: no context is created for them (nor counted as a
            # new user, nor refused as busy), none is kept alive past its expiry, and no
            # late result is spent on a reply WeChat may not even show. A retry gets the
            # same "success".
            return self._done(msg, Silent(), "replied", started)
        last = self.is_last_delivery(msg)
        budget = self.settings.reply_deadline if last else WECHAT_GIVES_UP + 0.5
        try:
            result = with_retries(
                lambda: self._phase_one(msg), deadline=started + budget, on_retry=metrics.db_retry
            )
        except Exception as exc:
            if is_transient(exc) and not last:
                log.warning(
                    "database unavailable for %s (%s): left unanswered for WeChat to deliver again",
                    msg.dedup_key,
                    exc.args[0] if exc.args else exc,
                )
                return self._done(msg, Withheld(), "withheld", started)
            log.exception("message %s from %s failed; rolled back", msg.dedup_key, msg.openid)
            apology = translate(words.APOLOGY, language.guess(msg, self.settings.default_language))
            return self._done(msg, Text(apology), "apology", started)
        self._maybe_clean_up()
        if not self.slow.draining:  # a stopping process claims no lost work it may not push
            self.lost_work.maybe_look()
        if isinstance(result, tuple):
            reply, outcome = result
            return self._done(msg, reply, outcome, started)
        if last and msg.create_time:
            # The dedup record counts only the deliveries that reached us: after one was
            # lost or withheld (a database blip) it says "second" on WeChat's last, which
            # would then be held in silence and its result never pushed nor kept. The
            # message's age tells the last delivery regardless.
            result.attempts = max(result.attempts, 3)
        reply, outcome = self.slow.await_pending(msg, result, started)
        return self._done(msg, reply, outcome, started)

    def _catch_up_knowledge(self) -> bool:
        """Bring the knowledge base up to date outside any user's transaction (one read of
        its version; the changes, if any), for a QR code's scene only it could understand.
        Whether anything changed; False too when the database fails: the scan is then
        answered as a tracking code's ("success"), never refused."""
        refresh = getattr(self.deps.kb, "refresh_if_stale", None)
        if refresh is None:
            return False
        try:
            with self.engine.connect() as conn:
                return bool(refresh(conn))
        except Exception as exc:
            log.warning("knowledge base not caught up for a QR code's scene: %s", exc)
            return False

    def is_last_delivery(self, msg: Inbound) -> bool:
        """WeChat's third delivery (or one we cannot place: no CreateTime). Retries keep the
        message's CreateTime, so its age tells, even while the database is down; the age is
        counted by WeChat's clock, whose offset from ours recent deliveries tell."""
        if not msg.create_time:
            return True
        return self.wechat_clock.age(msg.create_time, self.clock()) >= LAST_DELIVERY_AGE

    def _done(self, msg: Inbound, reply: Reply, outcome: str, started: float) -> Reply:
        kind = f"event:{msg.event}" if msg.is_event else msg.kind
        metrics.message(kind, outcome, time.monotonic() - started)
        return reply

    # ------------------------------------------------------------------- phase one

    def _phase_one(self, msg: Inbound) -> tuple[Reply, str] | Pending:
        later: list[Callable[[Connection], None]] = []
        counted: list[str] = []
        try:
            result = self._locked_step(msg, later, counted)  # committed when it returns
        except AlreadyProcessed:
            # Another delivery recorded this message between our lock and our insert (the
            # lock should prevent it; if it still happens, it means "already processed").
            return self._from_record(msg)
        except _SessionsFull:
            busy = translate(words.BUSY, language.guess(msg, self.settings.default_language))
            return Text(busy), "busy"
        self.stats.add(counted)  # only now: a rolled-back attempt that is retried counts once
        run_after_commit(self.engine, later)
        self.stats.maybe_flush()
        if isinstance(result, tuple) and isinstance(result[0], Deferred):
            deferred, saved_version = result
            return self.slow.start(msg, deferred, saved_version)
        return result  # type: ignore[return-value]

    def _from_record(self, msg: Inbound) -> tuple[Reply, str] | Pending:
        with transaction(self.engine) as conn:
            record = store.find_seen(conn, msg.dedup_key, lock=True)
            if record is not None:
                return self._answer_retry(conn, msg, record)
        return self._phase_one(msg)  # forgotten meanwhile (unsubscribe): process it afresh

    @staticmethod
    def _answer_retry(
        conn: Connection, msg: Inbound, record: SeenRecord
    ) -> tuple[Reply, str] | Pending:
        """Another delivery of a message already recorded: count it, answer from the record."""
        store.bump_seen_attempts(conn, msg.dedup_key)
        if record.status in store.ANSWERED and record.reply is not None:
            return reply_from_dict(json.loads(record.reply)), "duplicate"
        return Pending(future=None, attempts=record.attempts + 1)

    def _locked_step(
        self, msg: Inbound, later: list[Callable[[Connection], None]], counted: list[str]
    ) -> tuple[Reply, str] | tuple[Deferred, int] | Pending:
        """One transaction: lock, decide, record. Returns (reply, outcome), a retry's Pending,
        or (deferred work, saved context version) to start once committed. ``counted``
        receives the daily statistics the message adds to (added once it has committed)."""
        settings, statements = self.settings, self.statements
        with transaction(self.engine) as conn:
            locked = statements.lock(conn, msg.openid, msg.dedup_key)
            # after the lock: a wait for it must not age the message
            now = synced_now(self.clock, conn)
            if locked.seen is not None:
                return self._answer_retry(conn, msg, locked.seen)
            if msg.is_event and msg.event == "unsubscribe":
                ctx = locked.ctx
                if ctx is not None and ctx.state != WAIT_QUERY and ctx.expires_at > now:
                    # leaving a step, not letting it time out: a flow's funnel says cancelled
                    turn = self.dialogue.turn(conn, msg, ctx, now, later)
                    self.table.exited(turn, "cancelled")
                self.forget_user(conn, msg.openid)
                return Silent(), "replied"
            if locked.ctx is None:
                locked = self._create(conn, msg, now)
                if locked.seen is not None:  # the creator we waited for answered it already
                    return self._answer_retry(conn, msg, locked.seen)
                if locked.ctx is not None and locked.ctx.version == 0 and not locked.known:
                    counted.append("new_users")  # created it, for someone never seen: a newcomer
            ctx = locked.ctx
            assert ctx is not None
            if "kb_version" in ctx.extras:
                self.deps.kb.refresh_if_stale(conn, ctx.extras["kb_version"])
            # Kept apart: handlers, hand-offs and expiry rewrite the slots wholesale.
            under_way, lost = delivery.without_lost(
                delivery.working(ctx), now, self._work_lost_after
            )
            notice = self.dialogue.expire_if_stale(ctx, now)
            if lost:  # promised, perhaps as 「还在处理中」, and never coming: say so
                notice = words.WORK_LOST
            state_before = ctx.state
            ctx.extras["language"] = language.resolve(
                conn,
                msg,
                ctx.extras,
                now,
                self.settings.default_language,
                waiting=ctx.state != WAIT_QUERY,  # (after expiry: a lapsed step waits no more)
            )
            outcome = self.dialogue.dispatch(conn, msg, ctx, now, later)
            deferred = outcome.deferred
            reply = self.dialogue.apply(ctx, msg, outcome, notice=notice, remember=deferred is None)
            if deferred is not None:
                under_way[msg.dedup_key] = now
            delivery.set_working(ctx, under_way)
            counted.extend(_counted_as(msg, outcome, reply))
            if deferred is None:
                moved = _moves_the_dialogue(msg, outcome, ctx, state_before)
                saved = dump_reply(reply)
                ttl = settings.session_ttl
                statements.finish_and_commit(
                    conn, ctx, now, ttl, msg.dedup_key, saved, "done", bump=moved
                )
                return reply, "replied"
            statements.finish_and_commit(
                conn, ctx, now, settings.session_ttl, msg.dedup_key, None, "pending"
            )
            return deferred, ctx.version

    def _create(self, conn: Connection, msg: Inbound, now: float) -> Locked:
        """A new user: create and lock the context, counting the stored ones when the count
        matters (WXBOT_MAX_SESSIONS). The count is taken after the lock, like every value the
        decision uses; a recent count far below the cap is trusted for a few seconds."""
        cap = self.settings.max_sessions
        known = self._room_known
        count = known is None or now - known[0] > ROOM_TRUST_SECONDS or known[1] >= cap // 2
        found = language.detected(msg)
        first_language = (
            {"openid": msg.openid, "language": found.language, "now": now} if found else None
        )
        locked = self.statements.create_and_lock(
            conn,
            msg.openid,
            msg.dedup_key,
            now,
            self.settings.session_ttl,
            count=count,
            on_create=first_language,
        )
        stored = locked.stored_contexts
        if stored is None and known is not None:  # trusted: count this one in
            self._room_known = (known[0], known[1] + 1)
        if stored is None or locked.seen is not None or locked.ctx is None:
            return locked
        if locked.ctx.version != 0:  # created by a concurrent first message of this user
            return locked
        if stored > cap:
            stored -= store.delete_expired(conn, now)
            if stored > cap:
                raise _SessionsFull
        self._room_known = (now, stored)
        return locked

    # ------------------------------------------------------------------- housekeeping

    def close(self, drain: float = DRAIN_SECONDS) -> None:
        """Stop: let slow work under way finish for up to ``drain`` seconds (from the stop
        signal, if wxbot/serving.py's hooks saw one), then write what is batched (statistics,
        hits)."""
        self.slow.close(drain)
        self.stats.flush()
        flush = getattr(self.deps.kb, "flush_hits_now", None)
        if flush is not None:
            flush()

    def forget_user(self, conn: Connection, openid: str) -> None:
        """Delete everything stored about a user (unsubscribe, admin request), in ``conn``'s
        transaction: the context, dedup records and whatever each handler module keeps."""
        store.forget_user(conn, openid)
        language.forget_user(conn, openid)
        for forget in self.table.forgetters:
            forget(conn, openid)
        if self.deps.memory is not None:
            self.deps.memory.forget_user(conn, openid)

    def clean_up(self, batch: int = 1000) -> tuple[int, int]:
        """Delete expired contexts and day-old seen records, in batches; returns the counts."""
        return self.housekeeping.clean_up(batch)

    def forget_old_histories(self, batch: int = 1000) -> int:
        """Empty stored histories older than WXBOT_MEMORY_DAYS (0: keep them), in batches."""
        return self.housekeeping.forget_old_histories(batch)

    def forget_old_answers(self, batch: int = 1000) -> int:
        """Delete kept LLM answers older than WXBOT_MEMORY_DAYS (0: keep them), in batches."""
        return self.housekeeping.forget_old_answers(batch)

    def forget_old_votes(self, batch: int = 1000) -> int:
        """Delete did-you-mean votes older than WXBOT_MEMORY_DAYS (0: keep them), in batches."""
        return self.housekeeping.forget_old_votes(batch)

    def forget_stale_unanswered(self, batch: int = 1000) -> int:
        """Delete unanswered questions not asked for WXBOT_UNANSWERED_DAYS, in batches."""
        return self.housekeeping.forget_stale_unanswered(batch)

    def _maybe_clean_up(self) -> None:
        """Opportunistic: about one message in 500 prunes a batch, so no cron is required."""
        # The roll stays here: the other 499 messages make no call into housekeeping.py.
        if random.random() < 1 / 500:
            self.housekeeping.clean_up_a_batch()


def _moves_the_dialogue(msg: Inbound, outcome: Outcome, ctx: ContextRow, state_before: str) -> bool:
    """Whether saving this message's outcome moves the dialogue on (bumps the version). An
    event nobody answered (most never get this far: see kinds.ANSWERED_EVENTS) leaves it where it was:
    it keeps the version, or slow work under way would take it for a newer message and drop
    its outcome's state. A new context's first save always counts: it marks it as created."""
    unanswered_event = msg.is_event and isinstance(outcome.reply, Silent) and not outcome.counts
    return not (unanswered_event and ctx.state == state_before and ctx.version > 0)


def _counted_as(msg: Inbound, outcome: Outcome, reply: Reply) -> list[str]:
    """The daily statistics this message adds to (events are not messages users wrote)."""
    names = [] if msg.is_event else ["messages"]
    if outcome.stat:
        names.append(outcome.stat)
    if isinstance(reply, TransferToHuman):
        names.append("handoffs")
    return names
