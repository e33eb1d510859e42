"""The phone-binding flow's Chinese texts under the names the removed handler module gave
them (``phone.ASK_NUMBER``, ``phone.SENT`` ...), so its tests keep their assertions. They
are read from knowledge/flows/bind_phone.yaml and the flows' catalogue texts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from wxbot.flows import load_flows
from wxbot.flows import messages as say
from wxbot.flows import phone as numbers
from wxbot.flows.template import render


class FlowText(str):
    """A template that ``.format(**values)`` fills the way the flow runner does."""

    def format(self, *args: Any, **values: Any) -> str:  # type: ignore[override]
        return render(self, values)


def _texts() -> SimpleNamespace:
    flow = next(f for f in load_flows().flows if f.name == "bind_phone")
    number, code = flow.steps
    assert number.invalid is not None and flow.action.reply is not None
    return SimpleNamespace(
        ASK_NUMBER=FlowText(number.ask.pick("zh")),
        # the prompt once a number is bound starts with this (the rest is ASK_NUMBER)
        ALREADY=FlowText("你已绑定 {phone}。如需更换，"),
        BAD_NUMBER=FlowText(number.invalid.pick("zh")),
        SENT=FlowText(say.SENT),
        SEND_FAILED=FlowText(say.SEND_FAILED),
        ENTER_CODE=FlowText(code.ask.pick("zh")),
        WRONG=FlowText(say.WRONG.singular),
        TOO_MANY=FlowText(code.messages["too_many"].pick("zh")),
        EXPIRED=FlowText(say.EXPIRED),
        WAIT_RESEND=FlowText(say.WAIT_RESEND.singular),
        BOUND=FlowText(flow.action.reply.pick("zh")),
        code_hash=numbers.code_hash,
        normalise_phone=numbers.normalise_phone,
        mask=numbers.mask,
    )


phone = _texts()
