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
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine

from wxbot.config import Settings
from wxbot.db import transaction, with_retries
from wxbot.dialog import context as store
from wxbot.dialog import delivery, language, words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.delivery import PAGES, public_slots
from wxbot.dialog.flow import WAIT_QUERY, WINDOW_COLUMN, Deps, Limits, Outcome, Turn
from wxbot.dialog.paging import MORE_WORDS
from wxbot.dialog.slow import Pending, SlowWork, dump_reply
from wxbot.dialog.states import DialogueTable, build_table
from wxbot.i18n import Message, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, TransferToHuman, reply_from_dict
from wxbot.stats import DailyCounters, zone

log = logging.getLogger(__name__)


@dataclass
class _NextPage(Outcome):
    """继续: the next page of a long answer; the rest stays stored."""

    pages: list[str] | None = None


class Bot(SlowWork):
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
        self.clock = clock
        # The knowledge version, the user's language and their history window ride along
        # with the context lock: freshness, language and memory for free (no extra round trip).
        riders = (
            getattr(self.deps.kb, "version_column", None),
            getattr(self.deps.memory, "window_column", None),
        )
        extra_columns = [rider() for rider in riders if rider]
        self._lock_statement = store.lock_statement(*extra_columns, *language.lock_columns())
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="wxbot-deferred")
        # Messages and their outcomes per day, for the console's dashboard: summed in memory.
        self.stats = DailyCounters(engine, clock, zone(settings.timezone))
        self._messages = 0
        self._count_lock = threading.Lock()

    # ----------------------------------------------------------------- public entry point

    def handle(self, msg: Inbound) -> Reply:
        """Answer one message. Never raises: a failure rolls back and apologises."""
        started = time.monotonic()
        try:
            result = with_retries(lambda: self._phase_one(msg))
        except Exception:
            log.exception("message %s from %s failed; rolled back", msg.dedup_key, msg.openid)
            return Text(translate(words.APOLOGY, language.guess(msg, self._default_language)))
        self._maybe_clean_up()
        if isinstance(result, Reply):
            return result
        return self._await_pending(msg, result, started)

    # ------------------------------------------------------------------- phase one

    def _phase_one(self, msg: Inbound) -> Reply | Pending:
        later: list[Callable[[Connection], None]] = []
        counted: list[str] = []
        result = self._locked_step(msg, later, counted)  # committed when it returns
        self.stats.add(counted)  # only now: a rolled-back attempt that is retried counts once
        self._run_after_commit(later)
        self.stats.maybe_flush()
        return result

    def _run_after_commit(self, later: list[Callable[[Connection], None]]) -> None:
        for work in later:
            try:
                with_retries(lambda work=work: self._in_transaction(work))
            except Exception:
                log.warning("after-commit write failed", exc_info=True)

    def _in_transaction(self, work: Callable[[Connection], None]) -> None:
        with transaction(self.engine) as conn:
            work(conn)

    def _locked_step(
        self, msg: Inbound, later: list[Callable[[Connection], None]], counted: list[str]
    ) -> Reply | Pending:
        settings = self.settings
        with transaction(self.engine) as conn:
            now = self.clock()
            ctx, seen = store.lock_context(conn, msg.openid, msg.dedup_key, self._lock_statement)
            if seen is not None:
                store.bump_seen_attempts(conn, msg.dedup_key)
                if seen.status == "done" and seen.reply is not None:
                    return reply_from_dict(json.loads(seen.reply))
                return Pending(future=None, attempts=seen.attempts + 1)
            if msg.is_event and msg.event == "unsubscribe":
                self.forget_user(conn, msg.openid)
                return Silent()
            if ctx is None:
                if not self._has_room(conn, now):
                    return Text(translate(words.BUSY, language.guess(msg, self._default_language)))
                memory = self.deps.memory  # a returning user's context starts from their memory
                history = memory.initial_history(msg.openid) if memory is not None else "[]"
                store.create_context(conn, msg.openid, now, settings.session_ttl, history)
                counted.append("new_users")
                ctx, _ = store.lock_context(conn, msg.openid, None, self._lock_statement)
                assert ctx is not None
            if "kb_version" in ctx.extras:
                self.deps.kb.refresh_if_stale(conn, ctx.extras["kb_version"])
            notice = self._expire_if_stale(ctx, now)
            ctx.extras["language"] = language.resolve(
                conn, msg, ctx.extras, now, self._default_language
            )
            outcome = self._dispatch(conn, msg, ctx, now, later)
            deferred = outcome.deferred
            reply = self._apply(ctx, msg, outcome, notice=notice, remember=deferred is None)
            counted.extend(_counted_as(msg, outcome, reply))
            store.save_context(conn, ctx, now, settings.session_ttl)
            if deferred is None:
                store.record_seen(conn, msg.dedup_key, msg.openid, dump_reply(reply), now)
                return reply
            store.record_seen(conn, msg.dedup_key, msg.openid, None, now, status="pending")
            saved_version = ctx.version
        # committed: only now may the slow work start (it must find the pending record)
        future = self._pool.submit(self._finish_deferred, msg, outcome.deferred, saved_version)
        return Pending(future=future, attempts=1)

    def _has_room(self, conn: Connection, now: float) -> bool:
        """Room for a new user's context? When full, evict expired contexts first.

        The cap is soft under concurrency: two newcomers counted at once may both get in.
        """
        if store.count_contexts(conn) < self.settings.max_sessions:
            return True
        if store.delete_expired(conn, now) == 0:
            return False
        return store.count_contexts(conn) < self.settings.max_sessions

    def _expire_if_stale(self, ctx: ContextRow, now: float) -> str:
        if ctx.expires_at > now:
            return ""
        was_waiting = ctx.state != WAIT_QUERY
        ctx.reset()  # the dialogue starts over; the history (the user's memory) stays
        return words.TIMED_OUT if was_waiting else ""

    # ------------------------------------------------------------------- dispatch

    @property
    def _default_language(self) -> str:
        return self.settings.default_language

    def _language_of(self, conn: Connection, ctx: ContextRow) -> str:
        """The language decided for this message (resumed work reads the stored one)."""
        if "language" not in ctx.extras:
            stored, _ = language.stored(conn, ctx.openid)
            ctx.extras["language"] = stored or self._default_language
        return ctx.extras["language"]

    def localised(self, msg: Inbound, message: Message) -> str:
        """``message`` in the language stored for the sender (outside any transaction: the
        engine's own last-resort replies); the message's own language if that fails."""
        try:
            with self.engine.connect() as conn:
                stored, _ = language.stored(conn, msg.openid)
        except Exception:  # the database may be what failed
            stored = None
        return translate(message, stored or language.guess(msg, self._default_language))

    def _turn(
        self,
        conn: Connection,
        msg: Inbound,
        ctx: ContextRow,
        now: float,
        later: list | None = None,  # type: ignore[type-arg]
    ) -> Turn:
        return Turn(
            msg=msg,
            state=ctx.state,
            slots=public_slots(ctx.slots),
            attempts=ctx.attempts,
            rounds=ctx.rounds,
            now=now,
            db=conn,
            deps=self.deps,
            can_teach=self._can_teach(msg.openid),
            after_commit=later if later is not None else [],
            language=self._language_of(conn, ctx),
        )

    def _can_teach(self, openid: str) -> bool:
        return self.settings.teach_policy == "everyone" or openid in self.settings.admin_openids

    def _dispatch(
        self,
        conn: Connection,
        msg: Inbound,
        ctx: ContextRow,
        now: float,
        later: list,  # type: ignore[type-arg]
    ) -> Outcome:
        """Global interrupts first, then the current state's handler."""
        state = ctx.state
        keep = public_slots(ctx.slots)
        lang = self._language_of(conn, ctx)
        if msg.is_event:
            if msg.event in ("subscribe", "subscribe_scan"):
                return Outcome(Text(translate(self.settings.welcome, lang)), WAIT_QUERY)
            if msg.event == "click" and msg.event_key:
                msg = _as_text(msg, msg.event_key)
            elif msg.event != "location":
                return Outcome(Silent(), state, slots=keep, counts=False)
        turn = self._turn(conn, msg, ctx, now, later)
        command = words.normalise_command(msg.text)
        if command in words.CANCEL_WORDS:
            text = words.CANCELLED if state != WAIT_QUERY else words.NOTHING_TO_CANCEL
            self.table.exited(turn, "cancelled")
            return Outcome(Text(turn.t(text)), WAIT_QUERY)
        if command in words.HUMAN_WORDS:
            self.table.exited(turn, "handed_off")
            return Outcome(TransferToHuman(), WAIT_QUERY)
        choice = language.parse_command(msg.text) if not msg.is_event else None
        if choice is not None:
            return self._set_language(turn, ctx, choice, keep)
        if command in MORE_WORDS and ctx.slots.get(PAGES):
            pages = list(ctx.slots[PAGES])
            return _NextPage(Text(pages.pop(0)), state, slots=keep, counts=False, pages=pages)
        if state == WAIT_QUERY:
            for router in self.table.routers:
                claimed = router(turn)
                if claimed is not None:
                    return claimed
            if msg.is_event:  # e.g. LOCATION reports nobody asked for
                return Outcome(Silent(), WAIT_QUERY, counts=False)
            if not turn.text:
                return Outcome(Text(turn.t(words.NON_TEXT)), WAIT_QUERY)
        handler = self.table.handlers.get(state)
        if handler is None:  # a state from an older release: start over rather than fail
            log.warning("context of %s was in unknown state %r; reset", msg.openid, state)
            ctx.reset()
            handler = self.table.handlers[WAIT_QUERY]
            turn = self._turn(conn, msg, ctx, now, later)
        return handler(turn)

    def _set_language(self, turn: Turn, ctx: ContextRow, choice: str, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """「语言 xx」 in any state: answer in the new language and, mid-flow, ask again."""
        if not choice:
            reply = language.choices_text(turn.language)
        else:
            guessed = language.guess(turn.msg, self._default_language)
            fallback = guessed if choice == "auto" else choice
            lang, reply = language.set_explicit(
                turn.db, ctx.openid, choice, ctx.extras, turn.now, fallback
            )
            ctx.extras["language"] = turn.language = lang
        prompt = self.table.prompt(turn)
        if prompt:
            reply = f"{reply}\n\n{prompt}"
        return Outcome(Text(reply), ctx.state, slots=keep, counts=False)

    # ------------------------------------------------------------------- applying

    def _apply(
        self,
        ctx: ContextRow,
        msg: Inbound,
        outcome: Outcome,
        notice: str = "",
        remember: bool = True,
    ) -> Reply:
        """Apply an Outcome to the context: limits, paging, outbox, history. Returns the reply."""
        self.table.check_next_state(outcome.state)
        settings = self.settings
        previous = ctx.state
        reply = outcome.reply if outcome.reply is not None else Silent()
        slots = dict(outcome.slots or {})
        limits = outcome.limits or Limits(settings.max_attempts, settings.max_rounds)
        lang = ctx.extras.get("language") or self._default_language
        if outcome.state == WAIT_QUERY:
            ctx.rounds, ctx.attempts = 0, 0
        elif outcome.counts:
            ctx.rounds = ctx.rounds + 1 if previous != WAIT_QUERY else 1
            if outcome.failed:
                ctx.attempts = ctx.attempts + 1 if previous == outcome.state else 1
            elif previous != outcome.state:
                ctx.attempts = 0
        ctx.state = outcome.state
        if ctx.state != WAIT_QUERY and (
            ctx.rounds >= limits.rounds or ctx.attempts >= limits.attempts
        ):
            log.info(
                "hand-off of %s after %d rounds, %d attempts", msg.openid, ctx.rounds, ctx.attempts
            )
            reply, slots = TransferToHuman(), {}
            ctx.reset()
        if outcome.deferred is not None:
            # The interim reply is never sent (the resumed outcome's is): keep the late
            # results for that one instead of spending them on a reply nobody sees.
            outbox = ctx.slots.get(delivery.OUTBOX)
            ctx.slots = {**slots, delivery.OUTBOX: outbox} if outbox else slots
            return reply
        pages = outcome.pages if isinstance(outcome, _NextPage) else None
        notice = translate(notice, lang) if notice else ""
        reply = delivery.compose(ctx, reply, slots, settings.reply_max_bytes, notice, pages, lang)
        if remember:
            delivery.remember(ctx, msg, reply, self.history_window(ctx))
        return reply

    def history_window(self, ctx: ContextRow) -> int:
        """Rounds of history kept for this user: their own setting, else the default."""
        return ctx.extras.get(WINDOW_COLUMN) or self.settings.history_rounds

    # ------------------------------------------------------------------- housekeeping

    def close(self) -> None:
        """Finish slow work under way and write what the knowledge base batches (hits)."""
        self._pool.shutdown(wait=True)
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
        now = self.clock()
        contexts_deleted = seen_deleted = 0
        while True:
            with transaction(self.engine) as conn:
                n = store.delete_expired(conn, now, batch)
                m = store.prune_seen(conn, now - self.settings.seen_ttl, batch)
            contexts_deleted += n
            seen_deleted += m
            if n < batch and m < batch:
                return contexts_deleted, seen_deleted

    def _maybe_clean_up(self) -> None:
        """Opportunistic: about one message in 500 prunes a batch, so no cron is required."""
        if random.random() >= 1 / 500:
            return
        try:
            with transaction(self.engine) as conn:
                now = self.clock()
                store.delete_expired(conn, now, 200)
                store.prune_seen(conn, now - self.settings.seen_ttl, 500)
        except Exception:
            log.warning("opportunistic clean-up failed", exc_info=True)


def _counted_as(msg: Inbound, outcome: Outcome, reply: Reply) -> list[str]:
    """The daily statistics this message adds to (events are not messages users wrote)."""
    names = [] if msg.is_event else ["messages"]
    if outcome.stat:
        names.append(outcome.stat)
    if isinstance(reply, TransferToHuman):
        names.append("handoffs")
    return names


def _as_text(msg: Inbound, text: str) -> Inbound:
    return replace(msg, kind="text", text=text)
