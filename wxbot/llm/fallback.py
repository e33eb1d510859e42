"""The LLM as the knowledge base's fallback, run as Deferred work inside WeChat's window.

Inside the user's locked transaction (the LLM path only; a question the knowledge base
answers never gets here): check the user's limits, build the prompt from the system prompt,
the best knowledge entries and the user's history window, count the call against the rate,
and hand the HTTP call to the engine as a ``Deferred``. The engine commits and runs the call
in its pool; ``resume`` (locked again) records usage, the new durable window and the answer,
and returns the reply: on time, on one of WeChat's retries, pushed, or with the next message.
"""

from __future__ import annotations

import logging
from typing import Any

from wxbot import metrics
from wxbot.config import Settings
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.dialog.handlers.query import DONT_KNOW, TEACH_HINT, UNKNOWN
from wxbot.i18n import N_
from wxbot.llm import memory as memories
from wxbot.llm.client import ChatClient, Completion, Refused
from wxbot.llm.memory import CallCost
from wxbot.llm.prompt import Grounding, build_messages
from wxbot.llm.usage import add_daily, estimate_cost, keep_answer
from wxbot.messages.replies import Text
from wxbot.qa import store as kb_store

log = logging.getLogger(__name__)

RATE_LIMITED = N_("你问得有点快，请稍等一分钟再问我。")
DAILY_LIMIT = N_("今天的智能问答额度已经用完了，明天再来吧。知识库里有的问题仍然可以随时问我。")
ASKED_LLM = "llm"  # the daily statistic of questions handed to the LLM
TRUNCATED = N_("……（回答较长，后面的部分省略了）")
# the provider's content filter or the model declined: not "I'll learn it" (DONT_KNOW), not
# the system-error apology, and nothing of a filtered answer
CANNOT_ANSWER = N_("抱歉，这个问题我没办法回答。可以换个问题问我。")
GROUNDING_ENTRIES = 3  # the best few knowledge entries go into the prompt
GROUNDING_MIN_CONFIDENCE = 0.2  # below this overlap an entry was noise in the starter FAQ


class LlmFallback:
    def __init__(self, settings: Settings, client: ChatClient) -> None:
        self.settings = settings
        self.client = client

    def __call__(self, turn: Turn) -> Outcome | None:
        """Claim a question the knowledge base could not answer, or None (don't know)."""
        if self.client.cooling_down():  # a 429 asked us to wait: the knowledge base answers
            return None
        settings, now = self.settings, turn.now
        memory = memories.load(turn.db, turn.msg.openid)
        if memory is None:  # no context row: not a dialogue turn (cannot happen via the engine)
            return None
        if settings.llm_rate and len(memory.calls_last_minute(now)) >= settings.llm_rate:
            return Outcome(Text(turn.t(RATE_LIMITED)), WAIT_QUERY, stat=UNKNOWN)
        if settings.llm_daily_tokens and memory.tokens_today(now) >= settings.llm_daily_tokens:
            return Outcome(Text(turn.t(DAILY_LIMIT)), WAIT_QUERY, stat=UNKNOWN)
        history = memories.trim(memory.history, memory.window(settings.history_rounds))
        messages = build_messages(
            settings.llm_system_prompt, history, turn.text, self.grounding(turn)
        )
        # Tokens are reported when the answer arrives: until then the call holds what it may
        # spend (its prompt's characters, a generous count, and max_tokens), so the questions
        # a user sends meanwhile cannot all pass the daily check and spend past the cap.
        held = _most_tokens(messages, settings.llm_max_tokens) if settings.llm_daily_tokens else 0
        held_on = memories.day_number(now)
        memories.reserve_call(turn.db, memory, now, held)
        client = self.client
        return Outcome(
            None,  # type: ignore[arg-type]  # never sent: the resumed outcome's reply is
            WAIT_QUERY,
            counts=False,
            stat=ASKED_LLM,  # counted when asked: the knowledge base had no confident answer
            deferred=Deferred(
                work=lambda: client.complete(messages),
                resume=lambda later, result: self.resume(later, result, held_on, held),
            ),
        )

    def grounding(self, turn: Turn) -> list[Grounding]:
        kb = turn.deps.kb
        if kb is None:
            return []
        hits = [
            h
            for h in kb.search(turn.text, GROUNDING_ENTRIES, language=turn.language)
            if h.confidence >= GROUNDING_MIN_CONFIDENCE
        ]
        answers = {h.entry_id: m.answer for h in hits if (m := kb.entry(h.entry_id)) is not None}
        questions = kb_store.main_questions(turn.db, list(answers)) if answers else {}
        return [Grounding(questions[e], answers[e]) for e in answers if e in questions]

    def resume(self, turn: Turn, result: Any, held_on: int = 0, held: int = 0) -> Outcome:
        """Locked again: record usage and the durable window, keep the answer, reply.
        ``held``: the tokens reserved for the call on day ``held_on`` (released now)."""
        settings, now, conn = self.settings, turn.now, turn.db
        held = held if held_on == memories.day_number(now) else 0  # yesterday's hold is moot
        memory = memories.load(conn, turn.msg.openid)
        if memory is None:  # pragma: no cover - the engine resumes only while the context exists
            memory = memories.UserMemory(turn.msg.openid, [])
        if isinstance(result, Refused):
            return self._declined(turn, memory, result, held)
        if not isinstance(result, Completion):
            log.warning("LLM answer for %s failed: %s", turn.msg.openid, _reason(result))
            call = self._cost(result, failed=True)  # tokens the provider billed all the same
            memories.record_call(conn, memory, now, call, held=held)
            turn.after_commit.append(lambda c: add_daily(c, now, call))
            hint = turn.t(TEACH_HINT) if turn.can_teach else ""
            return Outcome(Text(turn.t(DONT_KNOW) + hint), WAIT_QUERY)
        call = self._cost(result)
        text = result.text + (turn.t(TRUNCATED) if result.truncated else "")
        window = memory.window(settings.history_rounds)
        # the same window the engine is about to save in the context row (it appends this
        # exchange there): the durable copy a returning user's next context starts from
        kept = memories.trim([*memory.history, ["user", turn.text], ["bot", text]], window)
        memories.record_call(conn, memory, now, call, history=kept, held=held)
        keep_answer(conn, turn.msg.openid, turn.text, text, result.model, call, now)
        turn.after_commit.append(lambda c: add_daily(c, now, call))
        return Outcome(Text(text), WAIT_QUERY)

    def _declined(
        self, turn: Turn, memory: memories.UserMemory, refused: Refused, held: int
    ) -> Outcome:
        """A refusal: counted as a call (billed tokens too) but not a failure, logged and
        counted on its own; the answer is not kept and the durable history is unchanged."""
        log.warning("LLM declined to answer %s: %s", turn.msg.openid, refused.reason)
        metrics.llm_refusal(refused.source)
        call, now = self._cost(refused), turn.now
        memories.record_call(turn.db, memory, now, call, held=held)
        turn.after_commit.append(lambda c: add_daily(c, now, call))
        return Outcome(Text(turn.t(CANNOT_ANSWER)), WAIT_QUERY)

    def _cost(self, result: Any, failed: bool = False) -> CallCost:
        """The call's tokens and estimated cost (a Completion's, or a failure's: an answer
        that was billed but unusable reports them, an unreachable server none)."""
        prompt = getattr(result, "prompt_tokens", 0)
        completion = getattr(result, "completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            prompt = completion = 0
        settings = self.settings
        cost = estimate_cost(
            prompt, completion, settings.llm_price_input, settings.llm_price_output
        )
        return CallCost(prompt, completion, cost, failed=failed)


def _most_tokens(messages: list[dict[str, str]], max_tokens: int) -> int:
    """A call's tokens at most, about: a character is rarely more than one token."""
    return sum(len(m["content"]) for m in messages) + max_tokens


def _reason(result: Any) -> str:
    return getattr(result, "reason", None) or type(result).__name__
