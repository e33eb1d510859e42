"""What a step says: its prompt, confirmation and SMS texts, and the guidance that grows by band."""

from __future__ import annotations

from typing import Any

from wxbot.dialog.flow import Turn
from wxbot.flows import messages as say
from wxbot.flows import phone
from wxbot.flows.slots import ChoiceSlot, SmsCodeSlot
from wxbot.flows.spec import Bands, Flow, Step


def shown_values(flow: Flow, values: dict[str, Any], language: str) -> dict[str, str]:
    """Slot values as the user reads them (a choice's label in their language)."""
    return {
        s.slot: s.kind.display(values[s.slot], language) for s in flow.steps if s.slot in values
    }


def ask(turn: Turn, step: Step, shown: dict[str, str]) -> str:
    for fact, texts in step.ask_if.items():
        known = _fact(turn, fact)
        if known:
            return texts.render(turn.language, {**shown, fact: known})
    text = step.ask.render(turn.language, shown)
    if isinstance(step.kind, ChoiceSlot):
        text += "\n" + turn.t(say.MENU, menu=step.kind.menu(turn.language))
    return text


def invalid(turn: Turn, step: Step, shown: dict[str, str]) -> str:
    if step.invalid is None:
        return ask(turn, step, shown)
    return step.invalid.render(turn.language, shown)


def confirm(turn: Turn, step: Step, shown: dict[str, str]) -> str:
    assert step.confirm is not None
    return step.confirm.render(turn.language, shown)


def message(turn: Turn, step: Step, key: str, **params: Any) -> str:
    override = step.messages.get(key)
    if override is not None:
        return override.render(turn.language, params)
    return turn.t(say.SMS_DEFAULTS[key], **params)


def retry(turn: Turn, step: Step, bands: Bands, attempts: int, first: str) -> str:
    """The reply to the ``attempts``-th failed answer below the limit: ``first`` (the step's
    `invalid` text, the prompt, or a wrong code's message), then an example from the explicit
    band on, then the tries left in the urgent band."""
    band = bands.band(attempts)
    lines = [first]
    if band in ("explicit", "urgent"):
        example = step.example or step.kind.default_example()
        if example and not isinstance(step.kind, SmsCodeSlot):
            shown = step.kind.display(example, turn.language)
            lines.append(turn.t(say.EXAMPLE, example=shown))
    if band == "urgent":
        lines.append(turn.t(say.TRIES_LEFT, left=bands.limit - attempts))
    return "\n".join(lines)


def _fact(turn: Turn, fact: str) -> str | None:
    if fact == "bound_phone":
        return phone.bound_phone(turn.db, turn.msg.openid)
    return None
