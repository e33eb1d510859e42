"""The ``sms_code`` step of a flow: texting a code (within the limits phone.py keeps),
resending it, and checking what the user types."""

from __future__ import annotations

import hmac
import math
from dataclasses import replace
from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Deferred, Outcome, Turn
from wxbot.flows import guidance, phone, stats
from wxbot.flows import messages as say
from wxbot.flows.slots import SmsCodeSlot
from wxbot.flows.work import VERIFIED, StepWork
from wxbot.messages.replies import Text


class SmsCodeSteps:
    """Mixed into FlowRunner: the methods of the ``sms_code`` step kind. The runner provides
    ``by_state``, ``_advance`` and ``_failure``."""

    by_state: dict[str, tuple[Any, int]]

    def _advance(self, work: StepWork, filled: list[str], came_from: int | None) -> Outcome:
        raise NotImplementedError

    def _failure(self, work: StepWork, index: int, text: str | None = None) -> Outcome:
        raise NotImplementedError

    def _send_code(self, work: StepWork, index: int, resend: bool, note: str = "") -> Outcome:
        """Text a code to the step's number, within the limits; ``note`` goes before what the
        user is told (the number they changed to)."""
        turn, step = work.turn, work.flow.steps[index]
        assert isinstance(step.kind, SmsCodeSlot)
        sms = getattr(turn.deps.services, "sms", None)
        if sms is None:
            work.event(stats.FLOW, "failed")
            work.event(step.slot, "failed", turn.attempts)
            return work.outcome(Text(turn.t(say.NOT_SENT)), WAIT_QUERY)
        openid, number = turn.msg.openid, work.values[step.kind.phone_slot]
        pending = None if resend else phone.pending_code(turn.db, openid)
        wait = pending.sent_at + phone.RESEND_AFTER - turn.now if pending is not None else 0
        if wait > 0:  # 「取消」 and starting again must not text faster than 「重发」 may
            if pending.phone != number:  # no code was sent to this number: 「重发」 sends one
                phone.readdress_code(turn.db, openid, number)
            text = turn.t(say.WAIT_RESEND, seconds=math.ceil(wait))
            return work.outcome(Text(_noted(note, text)), step.state)
        if turn.state in self.by_state and turn.rounds + 1 >= work.flow.max_rounds:
            # the flow's last message: handle() hands off instead, so no code is made, sent or
            # counted (were it ever not to, the user would be asked for 「重发」, which counts)
            return work.outcome(Text(guidance.message(turn, step, "send_failed")), step.state)
        # Counted before the send, in this transaction: the code leaves only once it commits.
        day = phone.day_number(turn.now, turn.deps.settings.timezone)
        claim = phone.claim_send(turn.db, openid, number, turn.now, day)
        if isinstance(claim, phone.Refusal):
            return self._held_back(work, index, claim, resend, note)
        for _ in range(2):  # rows of earlier days go as sends add rows: the table stays small
            turn.after_commit.append(lambda conn, now=turn.now: phone.prune_one(conn, now, day))
        code = phone.fresh_code(turn.db, openid, number, turn.now, resend)
        language, values = turn.language, dict(work.values)

        def resume(later: Turn, result: Any) -> Outcome:
            if isinstance(result, Exception):
                # the user never got this code (a timeout may have delivered it: the service's
                # word is taken, as for 「重发」), so it costs no budget and no interval
                phone.release(later.db, claim)
                phone.allow_resend_now(later.db, openid)
                text = guidance.message(later, step, "send_failed")
            else:
                text = guidance.message(later, step, "sent", phone=phone.mask(number))
            return work.outcome(Text(_noted(note, text)), step.state, slots=values, counts=False)

        def send() -> None:
            sms.send(number, code, language=language)

        return work.outcome(None, step.state, deferred=Deferred(send, resume))

    def _held_back(
        self, work: StepWork, index: int, refusal: phone.Refusal, resend: bool, note: str = ""
    ) -> Outcome:
        """A limit on texting codes refused this one: say why, and what the user can do."""
        turn, step = work.turn, work.flow.steps[index]
        assert isinstance(step.kind, SmsCodeSlot)
        if refusal.daily:
            cap = say.USER_DAILY_LIMIT if refusal.scope == phone.USER else say.NUMBER_DAILY_LIMIT
            if resend:  # the code sent before still works: the user may still type it
                return work.outcome(Text(turn.t(cap)), step.state)
            work.event(stats.FLOW, "failed")
            work.event(step.slot, "failed", turn.attempts)
            return work.outcome(Text(turn.t(cap)), WAIT_QUERY)
        seconds = math.ceil(refusal.wait)
        if refusal.scope == phone.USER:  # this user's last code went out under a minute ago
            text = turn.t(say.WAIT_RESEND, seconds=seconds)
            last_sent = turn.now + refusal.wait - phone.RESEND_AFTER
        else:  # other users' codes to this number: 「重发」 asks the number's limit again
            text = turn.t(say.NUMBER_BUSY, seconds=seconds)
            last_sent = 0.0
        if not resend:  # waiting at the code step for 「重发」 (the code's row may be gone)
            phone.hold_code(turn.db, turn.msg.openid, work.values[step.kind.phone_slot], last_sent)
        return work.outcome(Text(_noted(note, text)), step.state)

    def _change_number(self, work: StepWork, index: int, number: str) -> Outcome:
        """A mobile number typed at the code step: the number changes (a code typed for the
        old one no longer verifies it) and a code goes to the new one, within the same limits
        as any other (within the minute: 「重发」 sends it once the wait is over). Never a
        wrong code. A phone step with `confirm:` asks to confirm the new number first."""
        turn, flow = work.turn, work.flow
        step = flow.steps[index]
        assert isinstance(step.kind, SmsCodeSlot)
        slot = step.kind.phone_slot
        changed = number != work.values.get(slot)
        work.values[slot] = number
        if flow.steps[flow.step_index(slot)].confirm is not None:
            return self._advance(work, [slot], came_from=index)
        note = turn.t(say.NUMBER_CHANGED, phone=phone.mask(number)) if changed else ""
        return self._send_code(work, index, resend=False, note=note)

    def _code(self, work: StepWork, index: int) -> Outcome | None:
        """The answer at an sms_code step; None when it is not a code (nor 重发)."""
        turn, flow = work.turn, work.flow
        step = flow.steps[index]
        assert isinstance(step.kind, SmsCodeSlot)
        openid, now = turn.msg.openid, turn.now
        row = phone.pending_code(turn.db, openid)
        number = None if step.kind.parse(turn.text) else _typed_number(flow, step, turn.text)
        if number is not None and (row is None or number != work.values.get(step.kind.phone_slot)):
            return self._change_number(work, index, number)
        if number is not None:  # the number the code went to: not a wrong code
            text = guidance.ask(turn, step, work.shown())
            return work.outcome(Text(text), step.state, slots=turn.slots)
        if row is None:  # gone (an admin, a clean-up): ask for the number again
            work.values.pop(step.kind.phone_slot, None)
            back = flow.steps[flow.step_index(step.kind.phone_slot)]
            return work.outcome(Text(guidance.message(turn, step, "lost")), back.state)
        word = turn.text.strip().strip("。.!！").lower()
        if word in say.RESEND_WORDS:
            wait = row.sent_at + phone.RESEND_AFTER - now
            if wait > 0:
                text = turn.t(say.WAIT_RESEND, seconds=math.ceil(wait))
                return work.outcome(Text(text), step.state, slots=turn.slots)
            return self._send_code(work, index, resend=True)
        code = step.kind.parse(turn.text)
        if code is None:
            return None
        return _secret(self._checked(work, index, row, code))

    def _checked(self, work: StepWork, index: int, row: Any, code: str) -> Outcome:
        """The outcome of ``code`` typed at the sms_code step ``index`` (its pending ``row``)."""
        turn, flow = work.turn, work.flow
        step = flow.steps[index]
        openid, now = turn.msg.openid, turn.now
        if now > row.expires_at:
            text = guidance.message(turn, step, "expired")
            return work.outcome(Text(text), step.state, slots=turn.slots)
        if hmac.compare_digest(phone.code_hash(row.salt, openid, row.phone, code), row.code_hash):
            phone.drop_code(turn.db, openid)
            phone.code_verified(turn.db, openid)
            work.values[step.slot] = VERIFIED
            return self._advance(work, [step.slot], came_from=index)
        tries = row.tries + 1
        if tries >= phone.MAX_TRIES:
            phone.drop_code(turn.db, openid)
            work.event(stats.FLOW, "failed")
            work.event(step.slot, "failed", turn.attempts + 1)
            return work.outcome(Text(guidance.message(turn, step, "too_many")), WAIT_QUERY)
        phone.count_wrong(turn.db, openid, tries)
        wrong = guidance.message(turn, step, "wrong", left=phone.MAX_TRIES - tries)
        return self._failure(work, index, text=wrong)


def _secret(outcome: Outcome) -> Outcome:
    """``outcome`` of a message that was a code: no history keeps the message, nor does the
    outcome of slow work it started (a webhook step after the verification) when it resumes."""
    deferred = outcome.deferred
    if deferred is not None:
        resume = deferred.resume
        deferred = replace(deferred, resume=lambda turn, result: _secret(resume(turn, result)))
    return replace(outcome, secret=True, deferred=deferred)


def _typed_number(flow: Any, step: Any, text: str) -> str | None:
    """A mobile number typed at the code step (alone, or in a sentence: 「换成 139…」)."""
    number_step = flow.steps[flow.step_index(step.kind.phone_slot)]
    return number_step.kind.parse(text) or number_step.kind.find(text)


def _noted(note: str, text: str) -> str:
    return f"{note}\n{text}" if note else text
