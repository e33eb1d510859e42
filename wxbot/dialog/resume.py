"""Slow work resumed under the user's lock: its outcome applied (or, overtaken by a newer
message, only its answer delivered), late results kept for the next message, and the
engine's last-resort replies in the user's language. What wxbot.dialog.slow calls back."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine

from wxbot.config import Settings
from wxbot.database_clock import synced_now
from wxbot.db import run_after_commit, transaction
from wxbot.dialog import context as store
from wxbot.dialog import delivery, language
from wxbot.dialog.flow import Deferred
from wxbot.dialog.locked import MessageStatements
from wxbot.dialog.slow import dump_reply
from wxbot.dialog.steps import Dialogue
from wxbot.i18n import Message, translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, TransferToHuman


class DialogueResumer:
    """The slow path's Resumer (wxbot.dialog.slow): resumes work in the dialogue, under the lock."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        statements: MessageStatements,
        dialogue: Dialogue,
        clock: Callable[[], float],
        count: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.statements = statements
        self.dialogue = dialogue
        self.clock = clock
        # The daily statistics (the engine's DailyCounters.add): what the resumed outcome adds
        # to them (a hand-off after a third unknown city, ...), once its transaction commits.
        self.count = count

    def resume_deferred(
        self, msg: Inbound, deferred: Deferred, result: object, saved_version: int
    ) -> tuple[Reply, bool]:
        """Apply the resumed outcome; returns the reply and whether it is late (to push).
        The lock reads what the message's own lock read (language, history window...), and
        the turn's after-commit writes run once the user's lock is released."""
        later: list[Callable[[Connection], None]] = []
        with transaction(self.engine) as conn:
            locked = self.statements.lock(conn, msg.openid, msg.dedup_key)
            ctx = locked.ctx
            # The dedup record read *locked*: the lock read's plain read may miss the last
            # delivery marking it late (_mark_late locks only this row) between that read
            # and our update; the user told "still working" would then never get the result.
            # Locked, either we see "late" (and push or keep it) or _mark_late sees "done".
            seen = store.find_seen(conn, msg.dedup_key, lock=True) if ctx is not None else None
            now = synced_now(self.clock, conn)
            if ctx is None or seen is None:  # the user unsubscribed meanwhile
                return Silent(), False
            under_way = delivery.working(ctx)
            under_way.pop(msg.dedup_key, None)  # back: no longer under way
            turn = self.dialogue.turn(conn, msg, ctx, now, later)
            outcome = deferred.resume(turn, result)
            current = ctx.version == saved_version
            if current:
                reply = self.dialogue.apply(ctx, msg, outcome)
            else:  # another message moved the dialogue on: keep its state, deliver the answer
                reply = delivery.page_overtaken(
                    ctx, outcome.reply or Silent(), self.settings.reply_max_bytes, turn.language
                )
                delivery.remember(
                    ctx, msg, reply, self.dialogue.history_window(ctx), outcome.secret
                )
            # Overtaken: the dialogue stays where the newer message put it, so the version
            # stays too. Bumping it made that newer message's own slow work look overtaken
            # in turn, and its outcome (e.g. the numbered list's WAIT_WEATHER_CHOICE) lost.
            delivery.set_working(ctx, under_way)
            store.save_context(conn, ctx, now, self.settings.session_ttl, bump=current)
            store.update_seen(conn, msg.dedup_key, reply=dump_reply(reply), status="done")
        if self.count is not None:  # committed: a retried resume counts once
            self.count(resumed_counts(outcome.stat, reply))
        run_after_commit(
            self.engine, later
        )  # shared statistics rows, after the user's lock is gone
        return reply, seen.status == "late"

    def localised(self, msg: Inbound, message: Message) -> str:
        """``message`` in the language stored for the sender (outside any transaction: the
        engine's own last-resort replies); the message's own language if that fails."""
        try:
            with self.engine.connect() as conn:
                stored, _ = language.stored(conn, msg.openid)
        except Exception:  # the database may be what failed
            stored = None
        return translate(message, stored or language.guess(msg, self.settings.default_language))

    def forget_work(self, msg: Inbound) -> None:
        def drop(ctx: store.ContextRow) -> bool:
            under_way = delivery.working(ctx)
            if under_way.pop(msg.dedup_key, None) is None:
                return False
            delivery.set_working(ctx, under_way)
            return True

        self._amend(msg.openid, drop)

    def queue_late(self, openid: str, reply: Reply) -> None:
        def keep(ctx: store.ContextRow) -> bool:
            delivery.queue_late(ctx, reply)
            return True

        self._amend(openid, keep)

    def _amend(self, openid: str, change: Callable[[store.ContextRow], bool]) -> None:
        """Change the user's context under their lock, outside any dialogue step (``change``
        says whether it changed anything). Not a step: the version stays, so slow work under
        way still finds the one its phase one saved."""
        with transaction(self.engine) as conn:
            ctx, _ = store.lock_context(conn, openid)
            if ctx is not None and change(ctx):  # None: the user unsubscribed meanwhile
                store.save_context(conn, ctx, self.clock(), self.settings.session_ttl, bump=False)


def resumed_counts(stat: str, reply: Reply) -> list[str]:
    """The daily statistics a resumed outcome adds (the message itself was counted when it
    started the work): its own statistic, and a hand-off (the step's last failed attempt)."""
    names = [stat] if stat else []
    if isinstance(reply, TransferToHuman):
        names.append("handoffs")
    return names
