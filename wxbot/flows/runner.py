"""The flows' part of the dialogue table: one waiting state per step, a router for triggers.

Every message inside a flow may fill any open slot (``find``), the current step's slot from
the whole answer (``parse``). Nothing filled: a knowledge-base question is answered and the
prompt repeated (not a failed attempt); anything else is a failed attempt, answered by band
(patient → explicit with an example → urgent with the tries left → a human at the limit).
The final action is a reply template, the ``bind_phone`` store, and/or a webhook (Deferred).
"""

from __future__ import annotations

import logging
from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.dialog.handlers import query
from wxbot.dialog.words import normalise_command
from wxbot.flows import guidance, phone, stats
from wxbot.flows import messages as say
from wxbot.flows.slots import SmsCodeSlot, TextSlot
from wxbot.flows.sms_steps import SmsCodeSteps
from wxbot.flows.spec import Flow, Step
from wxbot.flows.triggers import TriggerMatcher
from wxbot.flows.work import VERIFIED, StepWork
from wxbot.messages.replies import Silent, Text, TransferToHuman

log = logging.getLogger(__name__)

CONFIRMING = "_confirm"  # slot: slots filled but still waiting for 是/否, in step order


class FlowRunner(SmsCodeSteps):
    def __init__(self, flows: list[Flow]) -> None:
        self.flows = flows
        self.by_state = {s.state: (f, i) for f in flows for i, s in enumerate(f.steps)}
        self.matcher = TriggerMatcher(flows)
        # the dialogue table reads these (see wxbot.dialog.states)
        self.STATES = {state: self.handle for state in self.by_state}
        self.ROUTERS = [self.route]
        self.PROMPTS = {state: self.prompt for state in self.by_state}
        self.COMMANDS = [self.starts_flow]
        self.CLAIMS = [self.claims]
        self.TAKES_ANY_TEXT = {
            s.state for f in flows for s in f.steps if isinstance(s.kind, TextSlot)
        }

    # --- the table's entry points --------------------------------------------------------

    def route(self, turn: Turn) -> Outcome | None:
        if turn.msg.is_event or not turn.text:
            return None
        flow = self.matcher.match(turn.text, turn.deps.kb)
        if flow is None:
            return None
        work = StepWork(turn, flow)
        work.values = {}
        work.event(stats.FLOW, "entered")
        filled = self._find(work, turn.text, current=None)
        return self._record(work, self._advance(work, filled, came_from=None))

    def claims(self, text: str, kb: Any = None) -> bool:
        """Whether ``route`` starts a flow for ``text`` typed in WAIT_QUERY (see CLAIMS in
        wxbot.dialog.states): the trigger matcher alone, in memory."""
        return bool(text.strip()) and self.matcher.match(text.strip(), kb) is not None

    def starts_flow(self, turn: Turn) -> bool:
        """A flow's keyword or trigger phrase first, in a waiting state of another flow or
        task (see COMMANDS). In a step of that same flow it starts the flow again (a
        restart, see ``_restarts``): the engine then leaves the step as for another task (the
        run so far counts as cancelled, attempts and rounds start afresh, a pending SMS code
        is kept and still throttles the next one) and the router starts the flow with only
        the values the message itself carries (「绑定手机 13900139000」)."""
        if turn.msg.is_event or not turn.text:
            return False
        flow = self.matcher.command_flow(turn.text, turn.deps.kb)
        if flow is None:
            return False
        current = self.by_state.get(turn.state)
        return current is None or current[0] is not flow or self._restarts(turn, *current)

    def _restarts(self, turn: Turn, flow: Flow, index: int) -> bool:
        """Whether the flow's own keyword or trigger, typed at step ``index``, starts it again
        rather than answer the step: unless the step takes the whole message as its answer
        (a code in 「绑定手机 123456」). A text step takes any text, so there only the bare
        keyword or trigger restarts (「改地址」, not 「改地址到朝阳区」)."""
        step = flow.steps[index]
        if isinstance(step.kind, TextSlot):
            return self.matcher.bare_phrase(turn.text) is flow
        return step.kind.parse(turn.text) is None

    def handle(self, turn: Turn) -> Outcome:
        flow, index = self.by_state[turn.state]
        work = StepWork(turn, flow)
        if turn.msg.is_event:  # LOCATION reports and the like are no answer
            return work.outcome(Silent(), turn.state, slots=turn.slots, counts=False)
        if turn.state in self.TAKES_ANY_TEXT and self._restarts(turn, flow, index):
            # the engine does not look for commands where any text is an answer (see
            # starts_flow): the bare keyword or trigger restarts the flow here
            outcome = self._restart(work, index)
        else:
            outcome = self._answer(work, index)
        if outcome.state != WAIT_QUERY and outcome.counts and turn.rounds + 1 >= flow.max_rounds:
            # the last message the flow allows did not finish it (one that does, finishes it)
            if outcome.deferred is not None:  # the SMS it would send never leaves
                phone.drop_code(turn.db, turn.msg.openid)
            work = StepWork(turn, flow)
            attempts = turn.attempts + 1 if outcome.failed else turn.attempts
            return self._record(work, self._hand_off(work, index, attempts, "rounds"))
        return self._record(work, outcome)

    def prompt(self, turn: Turn) -> str | None:
        flow, index = self.by_state[turn.state]
        work = StepWork(turn, flow)
        waiting = _waiting(turn, flow)
        if waiting:
            return guidance.confirm(turn, flow.steps[flow.step_index(waiting[0])], work.shown())
        return guidance.ask(turn, flow.steps[index], work.shown())

    def on_exit(self, turn: Turn, reason: str) -> None:
        """取消 / 人工 (engine-wide interrupts) took the user out of a flow."""
        if turn.state not in self.by_state:
            return
        flow, index = self.by_state[turn.state]
        # a pending code is kept (not dropped): it throttles the next send (see _send_code)
        work = StepWork(turn, flow)
        work.event(stats.FLOW, reason)
        work.event(flow.steps[index].slot, reason, turn.attempts)
        self._record(work, None)

    def forget_user(self, conn: Any, openid: str) -> None:
        phone.forget_user(conn, openid)

    # --- one message ---------------------------------------------------------------------

    def _restart(self, work: StepWork, index: int) -> Outcome:
        """The flow's bare keyword or trigger at a text step: the flow starts again, as the
        engine restarts it elsewhere (the run so far counted as cancelled, a new one entered,
        only the values the message carries). Never a failed attempt."""
        turn, flow = work.turn, work.flow
        work.event(stats.FLOW, "cancelled")
        work.event(flow.steps[index].slot, "cancelled", turn.attempts)
        work.values = {}
        work.event(stats.FLOW, "entered")
        filled = self._find(work, turn.text, current=None)
        return self._advance(work, filled, came_from=None)

    def _answer(self, work: StepWork, index: int) -> Outcome:
        turn, flow = work.turn, work.flow
        waiting = _waiting(turn, flow)
        if waiting:
            return self._confirming(work, waiting)
        step = flow.steps[index]
        if isinstance(step.kind, SmsCodeSlot):
            handled = self._code(work, index)
            if handled is not None:
                return handled
        filled = self._find(work, turn.text, current=step)
        if filled:
            return self._advance(work, filled, came_from=index)
        if isinstance(step.kind, TextSlot) and len(turn.text) > step.kind.max_length:
            # any text answers a text step: what was wrong is the length, so say the limit
            # (and what was sent), then the step's own words
            most, length = step.kind.max_length, len(turn.text)
            limit = turn.t(say.TOO_LONG, most=most, length=length)
            return self._failure(
                work, index, text=f"{limit}\n{guidance.invalid(turn, step, work.shown())}"
            )
        answer = query.knowledge_answer(turn)
        if answer is not None:
            reply = f"{answer}\n\n{guidance.ask(turn, step, work.shown())}"
            return work.outcome(Text(reply), step.state, slots=turn.slots, counts=False)
        return self._failure(work, index)

    def _find(self, work: StepWork, text: str, current: Step | None) -> list[str]:
        """Fill open slots from ``text``; the current step's from the whole message. Other
        slots take only values that cannot be mistaken: a pattern too wide for that
        (``passing``) waits for its own step, and a message that is the current step's whole
        answer (「海淀」 for the district) is not another step's answer too."""
        filled = []
        whole = None
        if current is not None and not isinstance(current.kind, SmsCodeSlot):
            whole = current.kind.parse(text)
        for step in work.flow.steps:
            if step.slot in work.values or isinstance(step.kind, SmsCodeSlot):
                continue
            if step is current:
                value = whole if whole is not None else step.kind.find(text)
            elif _may_find(step, text, answered=whole is not None):
                value = step.kind.find(text)
            else:
                value = None
            if value is not None:
                work.values[step.slot] = value
                filled.append(step.slot)
        return filled

    def _advance(self, work: StepWork, filled: list[str], came_from: int | None) -> Outcome:
        flow, attempts = work.flow, work.turn.attempts
        waiting = [
            s for s in flow.slot_names if s in filled and flow.steps[flow.step_index(s)].confirm
        ]
        for slot in filled:
            index = flow.step_index(slot)
            if index != came_from:
                work.event(slot, "entered")
            if slot not in waiting:
                work.event(slot, "filled", attempts if index == came_from else 0)
        if waiting:
            step = flow.steps[flow.step_index(waiting[0])]
            slots = {**work.values, CONFIRMING: waiting}
            text = guidance.confirm(work.turn, step, work.shown())
            return work.outcome(Text(text), step.state, slots=slots)
        return self._next(work, came_from)

    def _next(self, work: StepWork, came_from: int | None) -> Outcome:
        flow = work.flow
        index = next((i for i, s in enumerate(flow.steps) if s.slot not in work.values), None)
        if index is None:
            return self._complete(work)
        step = flow.steps[index]
        if index != came_from and (came_from is None or index > came_from):
            work.event(step.slot, "entered")
        if isinstance(step.kind, SmsCodeSlot):
            return self._send_code(work, index, resend=False)
        return work.outcome(Text(guidance.ask(work.turn, step, work.shown())), step.state)

    def _confirming(self, work: StepWork, waiting: list[str]) -> Outcome:
        turn, flow = work.turn, work.flow
        slot = waiting[0]
        step = flow.steps[flow.step_index(slot)]
        word = normalise_command(turn.text)  # 「ＹＥＳ」, 「好的👍」 as the engine reads them
        if word in say.YES_WORDS:
            work.event(slot, "filled", turn.attempts)
            rest = waiting[1:]
            if rest:
                nxt = flow.steps[flow.step_index(rest[0])]
                slots = {**work.values, CONFIRMING: rest}
                text = guidance.confirm(turn, nxt, work.shown())
                return work.outcome(Text(text), nxt.state, slots=slots)
            return self._next(work, flow.step_index(slot))
        if word in say.NO_WORDS:
            for other in waiting:  # what came with the rejected value is asked again, too
                work.values.pop(other, None)
            return work.outcome(Text(guidance.ask(turn, step, work.shown())), step.state)
        value = step.kind.parse(turn.text)  # a corrected value instead of 是/否
        if value is not None:
            work.values[slot] = value
            slots = {**work.values, CONFIRMING: waiting}
            text = guidance.confirm(turn, step, work.shown())
            return work.outcome(Text(text), step.state, slots=slots)
        text = turn.t(say.CONFIRM_AGAIN)
        return work.outcome(Text(text), step.state, slots=turn.slots, failed=True)

    def _failure(self, work: StepWork, index: int, text: str | None = None) -> Outcome:
        turn, flow = work.turn, work.flow
        attempts = turn.attempts + 1
        if flow.bands.band(attempts) == "limit":
            return self._hand_off(work, index, attempts, "attempts")
        step = flow.steps[index]
        first = text or guidance.invalid(turn, step, work.shown())
        reply = guidance.retry(turn, step, flow.bands, attempts, first)
        return work.outcome(Text(reply), step.state, slots=turn.slots, failed=True)

    def _hand_off(self, work: StepWork, index: int, attempts: int, why: str) -> Outcome:
        turn, flow = work.turn, work.flow
        step = flow.steps[index]
        note = f"flow {flow.name}, step {step.slot} ({step.state}): {attempts} failed attempts"
        if why == "rounds":
            note += f", {turn.rounds + 1} messages"
        log.info("hand-off of %s: %s", turn.msg.openid, note)
        work.event(stats.FLOW, "handed_off")
        work.event(step.slot, "handed_off", attempts)
        return work.outcome(TransferToHuman(note=note), WAIT_QUERY)

    # --- the action ------------------------------------------------------------------------

    def _complete(self, work: StepWork) -> Outcome:
        turn, flow = work.turn, work.flow
        action, values = flow.action, work.values
        work.event(stats.FLOW, "completed")
        if action.bind_phone:
            phone.bind(turn.db, turn.msg.openid, values[action.bind_phone], turn.now)
            phone.drop_code(turn.db, turn.msg.openid)
        shown = work.shown()
        reply = action.reply.render(turn.language, shown) if action.reply else None
        if action.webhook is None:
            return work.outcome(Text(reply or turn.t(say.WEBHOOK_DONE)), WAIT_QUERY)
        client = getattr(turn.deps.services, "webhook", None)
        if client is None:
            return work.outcome(Text(_join(reply, turn.t(say.WEBHOOK_FAILED))), WAIT_QUERY)
        url = action.webhook
        codes = {s.slot for s in flow.steps if isinstance(s.kind, SmsCodeSlot)}
        payload = {
            "openid": turn.msg.openid,
            "flow": flow.name,
            "slots": {k: (True if k in codes and v == VERIFIED else v) for k, v in values.items()},
            "language": turn.language,
        }

        def resume(later: Turn, result: Any) -> Outcome:
            if isinstance(result, Exception):
                text = _join(reply, later.t(say.WEBHOOK_FAILED))
            else:
                answer = result.get("reply") if isinstance(result, dict) else None
                answer = answer.strip() if isinstance(answer, str) else ""
                text = _join(reply, answer) if answer else reply or later.t(say.WEBHOOK_DONE)
            return Outcome(Text(text), WAIT_QUERY, counts=False)

        return work.outcome(
            None, WAIT_QUERY, deferred=Deferred(lambda: client.post(url, payload), resume)
        )

    @staticmethod
    def _record(work: StepWork, outcome: Outcome | None) -> Outcome:
        events = list(work.events)
        if events:
            work.turn.after_commit.append(lambda conn: stats.bump(conn, events))
        return outcome  # type: ignore[return-value]


def _waiting(turn: Turn, flow: Flow) -> list[str]:
    """The slots waiting for 是/否, as stored: those of the flow as it is now (a file edited
    meanwhile may have renamed a slot or dropped its `confirm`; the value is then asked again)."""
    stored = turn.slots.get(CONFIRMING)
    if not isinstance(stored, list):
        return []
    steps = {s.slot: s for s in flow.steps}
    return [
        slot
        for slot in stored
        if isinstance(slot, str) and slot in steps and steps[slot].confirm is not None
    ]


def _may_find(step: Step, text: str, answered: bool) -> bool:
    """Whether ``step``'s slot may take a value in passing from ``text``: not with a pattern
    too wide for that, nor from a message the current step took whole (``answered``) that
    would be this step's whole answer too."""
    if not getattr(step.kind, "passing", True):
        return False
    return not (answered and step.kind.parse(text) is not None)


def _join(first: str | None, second: str) -> str:
    return f"{first}\n{second}" if first else second
