"""One message's dialogue step, free of transactions: global interrupts, the current state's
handler, then applying its Outcome to the context (limits, paging, late results, history).

The engine (engine.py) calls these inside the user's locked transaction; they only read and
change the ContextRow they are given (and pass the connection on to handlers as ``turn.db``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from wxbot.config import Settings
from wxbot.dialog import delivery, forgetting, kinds, language, words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.delivery import PAGES, public_slots
from wxbot.dialog.flow import WAIT_QUERY, WINDOW_COLUMN, Deps, Limits, Outcome, Turn
from wxbot.dialog.handlers import query
from wxbot.dialog.paging import MORE_WORDS
from wxbot.dialog.states import DialogueTable
from wxbot.i18n import translate
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Silent, Text, TransferToHuman

log = logging.getLogger(__name__)


@dataclass
class _NextPage(Outcome):
    """A reply that leaves the unread pages of a long answer stored: the next of them (继续),
    or something said in between (「语言 xx」). ``pages``: what stays unread."""

    pages: list[str] | None = None


@dataclass
class _Aside(_NextPage):
    """A reply about the memory itself (「我的记忆」, 「清除记忆」 and its confirmation): said in
    between like _NextPage, and not remembered as an exchange of the conversation."""


class Dialogue:
    """The dialogue table applied to one context (the engine owns locking and storing)."""

    def __init__(self, table: DialogueTable, settings: Settings, deps: Deps) -> None:
        self.table = table
        self.settings = settings
        self.deps = deps

    def expire_if_stale(self, ctx: ContextRow, now: float) -> str:
        if ctx.expires_at > now:
            return ""
        was_waiting = ctx.state != WAIT_QUERY
        late = ctx.slots.get(delivery.OUTBOX)
        ctx.reset()  # the dialogue starts over; the history (the user's memory) stays
        if late:  # results we promised for "any message you send later" are still owed
            ctx.slots[delivery.OUTBOX] = late
        return words.TIMED_OUT if was_waiting else ""

    def history_window(self, ctx: ContextRow) -> int:
        """Rounds of history kept for this user: their own setting, else the default."""
        return ctx.extras.get(WINDOW_COLUMN) or self.settings.history_rounds

    # ------------------------------------------------------------------- language

    @property
    def default_language(self) -> str:
        return self.settings.default_language

    def language_of(self, conn: Connection, ctx: ContextRow) -> str:
        """The language decided for this message (resumed work: the stored one, read with
        the lock when the lock read it)."""
        if "language" not in ctx.extras:
            if language.LANGUAGE_COLUMN in ctx.extras:
                stored = ctx.extras[language.LANGUAGE_COLUMN]
            else:
                stored, _ = language.stored(conn, ctx.openid)
            ctx.extras["language"] = stored or self.default_language
        return ctx.extras["language"]

    # ------------------------------------------------------------------- dispatch

    def turn(
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
            can_teach=self.can_teach(msg.openid),
            after_commit=later if later is not None else [],
            language=self.language_of(conn, ctx),
        )

    def can_teach(self, openid: str) -> bool:
        return self.settings.teach_policy == "everyone" or openid in self.settings.admin_openids

    # ------------------------------------------------------------------- QR code scenes

    def answers_event(self, msg: Inbound, catch_up: Callable[[], bool] | None = None) -> bool:
        """Whether the dialogue looks at this event at all (``kinds.answers_event``); a SCAN
        of a parametric QR code only when its scene means something (``understands``). Asked
        before any transaction: a tracking code's scan creates no context.

        The knowledge base is as this process last loaded it (a question taught since, a
        process that has answered nothing since it started): a scene that only it could
        still understand is asked again after ``catch_up()`` (the engine's: one read of the
        knowledge version, no user's row), which says whether the knowledge changed."""
        if msg.event != "scan":
            return kinds.answers_event(msg)
        if self.understands(msg.event_key):
            return True
        if catch_up is None or self.deps.kb is None or not query.may_be_question(msg.event_key):
            return False
        return catch_up() and self.understands(msg.event_key)

    def understands(self, key: str, lang: str | None = None) -> bool:
        """Whether ``key``, a parametric QR code's scene, means something as typed text: one
        of the engine's own commands (取消, 人工, 「语言 en」), a task a router claims (天气,
        点歌, 学习, a flow's keyword or trigger: the modules' CLAIMS), or a question the
        knowledge base answers confidently (in ``lang``; None: in any language). Anything else
        (「123」, 「store_17」, 「utm_source=poster」) is a tracking code, for statistics only:
        never an unknown question. Decided from the key alone, in memory (no context, no
        database), so the engine can ask before any transaction. 「继续」 (the next page) is
        no task; 「帮助」 is, as for a menu key, a question for the knowledge base."""
        text = key.strip()
        if not text:
            return False
        command = words.normalise_command(text)
        if command in words.CANCEL_WORDS or command in words.HUMAN_WORDS:
            return True
        if language.parse_command(text) is not None:
            return True
        kb = self.deps.kb
        if any(claims(text, kb) for claims in self.table.claims):
            return True
        return query.answers_confidently(kb, text, lang)

    def dispatch(
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
        lang = self.language_of(conn, ctx)
        clicked = False
        if msg.is_event:
            if msg.event in ("subscribe", "subscribe_scan"):
                return self._welcome(conn, msg, ctx, now, later, lang)
            key = msg.event_key.strip()
            # A QR code's scene the bot understands is a menu key (the engine answers every
            # other SCAN before any transaction; checked again here in the user's language)
            scanned = msg.event == "scan" and self.understands(key, lang)
            if not scanned and (msg.event != "click" or not kinds.answers_event(msg)):
                # not the user's words (the engine answers these before the dialogue; kept
                # for callers that dispatch directly): nothing changes
                return Outcome(Silent(), state, slots=keep, counts=False)
            msg, clicked = _as_text(msg, key), True  # a menu key or a scene, as typed
        turn = self.turn(conn, msg, ctx, now, later)
        missing = None if clicked else kinds.non_text(msg)
        if missing is not None and not self._takes(msg, state):
            return self._no_words(turn, ctx, missing, keep)
        command = words.normalise_command(msg.text)
        about = forgetting.answer(turn, ctx, command, self.history_window(ctx), self.deps)
        if about is not None:  # before 取消, which refuses a 「清除记忆」 just asked
            return self._about_memory(turn, ctx, keep, about)
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
            page = delivery.read_page(pages.pop(0), turn.language)
            return _NextPage(Text(page), state, slots=keep, counts=False, pages=pages)
        if command in MORE_WORDS:  # nothing left to page: not a question, a city or a song
            reply = turn.t(words.NO_MORE_PAGES)
            prompt = self.table.prompt(turn)  # mid-flow: what the step still waits for
            reply = f"{reply}\n\n{prompt}" if prompt else reply
            return Outcome(Text(reply), state, slots=keep, counts=False)
        if self.table.starts_another_task(turn, menu=clicked):
            # The user changed their mind: what they were asked for is abandoned (a flow
            # counts it as cancelled) and the message starts afresh, as in WAIT_QUERY.
            self.table.exited(turn, "cancelled")
            _start_over(ctx)
            state = WAIT_QUERY
            turn = self.turn(conn, msg, ctx, now, later)
        elif clicked and state != WAIT_QUERY and self.table.is_known(state):
            return self._menu_mid_step(turn, ctx, keep)
        helps = command in words.HELP_WORDS  # typed, or a menu key 「帮助」 (mid-step: above)
        if helps and self._asks(state):
            return self._help_mid_step(turn, ctx, keep)
        if state == WAIT_QUERY:
            for router in self.table.routers:  # a flow whose keyword is 「菜单」 comes first
                claimed = router(turn)
                if claimed is not None:
                    return claimed
            if helps:
                return self._help(turn, ctx, keep)
            if not turn.text:  # a location no router took (no weather module)
                return Outcome(Text(turn.t(words.NON_TEXT)), WAIT_QUERY, slots=keep)
        handler = self.table.handlers.get(state)
        if handler is None:  # a state from an older release: start over rather than fail
            log.warning("context of %s was in unknown state %r; reset", msg.openid, state)
            _start_over(ctx)
            handler = self.table.handlers[WAIT_QUERY]
            turn = self.turn(conn, msg, ctx, now, later)
        return handler(turn)

    def _takes(self, msg: Inbound, state: str) -> bool:
        """Whether ``state`` reads this message without words: a location shared where one
        is asked for (the weather's city), or in WAIT_QUERY (the weather there)."""
        return msg.kind == "location" and (
            state == WAIT_QUERY or state in self.table.takes_location
        )

    def _no_words(self, turn: Turn, ctx: ContextRow, missing: str, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """A picture, an unrecognised voice message, a sticker, a file... where words are
        needed. Never a wrong answer (a user who sends a sticker, or speaks where WeChat
        could not hear, has not answered badly) and never a question to log: the user is
        told what the bot can read and, mid-step, asked again for what the step needs. The
        step, its slots and the pages being read stay as they were."""
        prompt = self.table.prompt(turn) if turn.state != WAIT_QUERY else None
        if turn.state == WAIT_QUERY:
            reply = turn.t(_QUERY_NO_WORDS[missing])
        else:
            reply = turn.t(words.VOICE_STEP if missing == kinds.VOICE else words.NEEDS_TEXT)
            reply = f"{reply}\n\n{prompt}" if prompt else reply
        return _kept(Text(reply), ctx, keep)

    def _menu_mid_step(self, turn: Turn, ctx: ContextRow, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """A menu button pressed while a step waits (and not another task's command): a key
        is never the answer to the step (a phone number, a song, a question being taught).
        A key that is a knowledge-base question is answered; either way the step asks again
        and nothing counts as a wrong answer."""
        prompt = self.table.prompt(turn) or turn.t(words.NEEDS_TEXT)
        answer = query.knowledge_answer(turn)
        reply = f"{answer}\n\n{prompt}" if answer else prompt
        return _kept(Text(reply), ctx, keep)

    def _asks(self, state: str) -> bool:
        """Whether ``state`` is a step whose answer cannot be any text (a help word there is
        a plea, not an answer; a song may be called "Help!", and 「帮助」 may be the very
        question an admin is teaching)."""
        table = self.table
        return state != WAIT_QUERY and table.is_known(state) and state not in table.takes_any_text

    def _help_mid_step(self, turn: Turn, ctx: ContextRow, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """「帮助」/ help while a step waits: what it waits for, asked again. Never the step's
        answer (a wrong one would count towards the hand-off)."""
        return _kept(Text(self.table.prompt(turn) or turn.t(words.NEEDS_TEXT)), ctx, keep)

    def _help(self, turn: Turn, ctx: ContextRow, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """「帮助」/ help that no flow claimed: the knowledge base's own answer when it has a
        confident one (an operator's help entry, or a restaurant's 菜单), else the welcome
        text (WXBOT_WELCOME: what the account offers) in the user's language; never "I can't
        answer that" nor a question logged as unanswered."""
        answer = query.knowledge_answer(turn)
        reply = answer if answer is not None else translate(self.settings.welcome, turn.language)
        return _kept(Text(reply), ctx, keep)

    def _welcome(
        self,
        conn: Connection,
        msg: Inbound,
        ctx: ContextRow,
        now: float,
        later: list,  # type: ignore[type-arg]
        lang: str,
    ) -> Outcome:
        """Following the account: the welcome (WXBOT_WELCOME). Followed through a parametric
        QR code whose scene the bot understands: the welcome, then what the scene does (as a
        menu key in WAIT_QUERY), in the one reply a delivery gets: a knowledge answer or a
        task's first question after the welcome in one text (paged like any long text); a
        task whose reply comes from slow work (「天气 北京」) shows the welcome first when it
        comes. A reply that cannot carry text (a transfer to a human agent, a song) goes
        alone. A tracking code's scene: the welcome alone."""
        scene = msg.event_key.strip()
        if ctx.state != WAIT_QUERY:  # the step is left: a flow's funnel counts it cancelled
            self.table.exited(self.turn(conn, msg, ctx, now, later), "cancelled")
        if not self.understands(scene, lang):
            return Outcome(Text(translate(self.settings.welcome, lang)), WAIT_QUERY)
        _start_over(ctx)
        outcome = self.dispatch(conn, replace(msg, event="click", event_key=scene), ctx, now, later)
        # in the language the scene left (「语言 en」 changes it)
        welcome = translate(self.settings.welcome, ctx.extras.get("language") or lang)
        if outcome.deferred is not None:  # shown with the result (see apply)
            ctx.slots[delivery.NOTICE] = f"{welcome}\n"
            return outcome
        if isinstance(outcome.reply, Text):
            return replace(outcome, reply=Text(f"{welcome}\n\n{outcome.reply.content}"))
        return outcome

    def _about_memory(
        self,
        turn: Turn,
        ctx: ContextRow,
        keep: dict,  # type: ignore[type-arg]
        said: forgetting.Said,
    ) -> Outcome:
        """「我的记忆」 / 「清除记忆」 / the answer to its question, in any state: the step that
        waits stays (asked again after the answer, not while a confirmation is asked), the
        message counts as no round of it, the unread pages of an answer stay for 「继续」."""
        reply = said.text
        prompt = None if said.asks else self.table.prompt(turn)
        if prompt:
            reply = f"{reply}\n\n{prompt}"
        slots = {**keep, delivery.FORGET_ASKED: True} if said.asks else keep
        state = ctx.state if self.table.is_known(ctx.state) else WAIT_QUERY
        unread = ctx.slots.get(PAGES)
        pages = list(unread) if unread else None
        return _Aside(Text(reply), state, slots=slots, counts=False, pages=pages)

    def _set_language(self, turn: Turn, ctx: ContextRow, choice: str, keep: dict) -> Outcome:  # type: ignore[type-arg]
        """「语言 xx」 in any state: answer in the new language and, mid-flow, ask again."""
        if not choice:
            reply = language.choices_text(turn.language)
        else:
            guessed = language.guess(turn.msg, self.default_language)
            fallback = guessed if choice == "auto" else choice
            lang, reply = language.set_explicit(
                turn.db, ctx.openid, choice, ctx.extras, turn.now, fallback
            )
            ctx.extras["language"] = turn.language = lang
        prompt = self.table.prompt(turn)
        if prompt:
            reply = f"{reply}\n\n{prompt}"
        unread = ctx.slots.get(PAGES)
        if unread:  # the answer the user is reading keeps its pages for 「继续」
            return _NextPage(Text(reply), ctx.state, slots=keep, counts=False, pages=list(unread))
        return Outcome(Text(reply), ctx.state, slots=keep, counts=False)

    # ------------------------------------------------------------------- applying

    def apply(
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
        lang = ctx.extras.get("language") or self.default_language
        if outcome.state == WAIT_QUERY:
            ctx.rounds, ctx.attempts = 0, 0
        elif outcome.counts:
            ctx.rounds = ctx.rounds + 1 if previous != WAIT_QUERY else 1
            if outcome.failed:
                ctx.attempts = ctx.attempts + 1 if previous == outcome.state else 1
            elif previous != outcome.state:
                ctx.attempts = 0
        ctx.state = outcome.state
        # Only a message that counts can reach a limit. One that does not (a menu link, 「继续」,
        # 「语言 xx」 mid-flow) comes with no limits of its own, so the settings' limits would
        # wrongly apply to a business flow that declared larger ones and hand the user off.
        if (
            outcome.counts
            and ctx.state != WAIT_QUERY
            and (ctx.rounds >= limits.rounds or ctx.attempts >= limits.attempts)
        ):
            log.info(
                "hand-off of %s after %d rounds, %d attempts", msg.openid, ctx.rounds, ctx.attempts
            )
            reply, slots = TransferToHuman(), {}
            ctx.reset()
        # A notice (the step that timed out) waits for a reply that can carry it: not a
        # silent one (a LOCATION report), nor the interim one of slow work.
        notice = notice or ctx.slots.get(delivery.NOTICE) or ""
        if outcome.deferred is not None:
            # The interim reply is never sent (the resumed outcome's is): keep the late
            # results for that one instead of spending them on a reply nobody sees.
            outbox = ctx.slots.get(delivery.OUTBOX)
            ctx.slots = {**slots, delivery.OUTBOX: outbox} if outbox else slots
            if notice:
                ctx.slots[delivery.NOTICE] = notice
            return reply
        pages = outcome.pages if isinstance(outcome, _NextPage) else None
        shown = translate(notice, lang) if notice else ""
        silent = isinstance(reply, Silent)
        reply = delivery.compose(ctx, reply, slots, settings.reply_max_bytes, shown, pages, lang)
        if notice and silent:
            ctx.slots[delivery.NOTICE] = notice
        if remember and not isinstance(outcome, _Aside):
            delivery.remember(ctx, msg, reply, self.history_window(ctx), outcome.secret)
        return reply


def _start_over(ctx: ContextRow) -> None:
    """Back to WAIT_QUERY mid-message, keeping the engine's own slots: late results still
    owed, a notice, the slow work under way (unread pages go with the next reply, as ever)."""
    private = {k: v for k, v in ctx.slots.items() if k in delivery.PRIVATE_SLOTS}
    ctx.reset()
    ctx.slots = private


def _as_text(msg: Inbound, text: str) -> Inbound:
    return replace(msg, kind="text", text=text)


def _kept(reply: Text, ctx: ContextRow, keep: dict) -> Outcome:  # type: ignore[type-arg]
    """``reply`` said in between: the state, its slots and the unread pages of the answer
    being read (for 「继续」) stay; the message does not count as a round of a flow."""
    unread = ctx.slots.get(PAGES)
    if unread:
        return _NextPage(reply, ctx.state, slots=keep, counts=False, pages=list(unread))
    return Outcome(reply, ctx.state, slots=keep, counts=False)


# What WAIT_QUERY says to a message without words, by why it has none
_QUERY_NO_WORDS = {
    kinds.VOICE: words.VOICE_UNHEARD,
    kinds.STICKER: words.STICKER,
    kinds.BLANK: words.BLANK,
    kinds.OTHER: words.NON_TEXT,
}
