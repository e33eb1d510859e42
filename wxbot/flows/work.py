"""One message's work inside a flow (the turn, the flow, its values, funnel events): what the
runner and its step kinds pass between them."""

from __future__ import annotations

from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Limits, Outcome, Turn
from wxbot.flows import guidance, stats
from wxbot.flows.spec import Flow

VERIFIED = "verified"  # the value of an sms_code slot: the code itself is never kept


class StepWork:
    """One message's work inside a flow: the turn, the flow, its values, funnel events."""

    def __init__(self, turn: Turn, flow: Flow) -> None:
        self.turn = turn
        self.flow = flow
        self.values = {k: v for k, v in turn.slots.items() if k in flow.slot_names}
        self.events: list[stats.Event] = []

    def event(self, step: str, name: str, attempts: int = 0) -> None:
        self.events.append((self.flow.name, step, name, attempts))

    def outcome(self, reply: Any, state: str, **kw: Any) -> Outcome:
        limits = Limits(self.flow.bands.limit, self.flow.max_rounds)
        slots = kw.pop("slots", self.values if state != WAIT_QUERY else None)
        return Outcome(reply, state, slots=slots, limits=limits, **kw)

    def shown(self) -> dict[str, str]:
        return guidance.shown_values(self.flow, self.values, self.turn.language)
