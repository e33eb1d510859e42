"""/admin/flows: the business flows this process loaded (WXBOT_FLOWS_DIR), each with its
triggers, steps (slot, type, prompts in every user language), action and funnel.

Texts are shown as users get them: a language the flow file lacks falls back to the gettext
catalogue's translation of the Chinese text, then to Chinese, and the page says which; what
the runner says by itself (examples, tries left, a failed webhook) comes from the catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import render_template

from wxbot.console.web import admin, bp
from wxbot.flows import messages as say
from wxbot.flows.slots import ChoiceSlot, DigitsSlot, PatternSlot, SmsCodeSlot, TextSlot
from wxbot.flows.spec import Flow, Step, Texts
from wxbot.i18n import DEFAULT_LANGUAGE, LANGUAGES, has_translation, translate

BAR_WIDTH = 300.0  # px of the funnel's widest bar (everyone who entered the flow)
ORIGINS = {"file": "", "catalogue": "翻译目录", "fallback": "未翻译，用中文"}


@dataclass
class Line:
    """One text in one language, and where it comes from (the file, the catalogue, or
    Chinese because nobody translated it)."""

    language: str
    text: str
    origin: str


@dataclass
class StepView:
    step: Step
    type_detail: str
    ask: list[Line]
    invalid: list[Line] | None
    confirm: list[Line] | None
    ask_if: dict[str, list[Line]]
    sms: dict[str, list[Line]]
    example: str | None
    funnel: dict[str, Any]
    bar: float  # px: those who reached this step


@dataclass
class FlowView:
    flow: Flow
    file: str
    funnel: dict[str, Any]
    steps: list[StepView]
    reply: list[Line] | None
    webhook: str | None
    bands: list[tuple[str, str]]
    completed_bar: float
    failure_texts: list[Line] = field(default_factory=list)


def lines(texts: Texts | None) -> list[Line] | None:
    if texts is None:
        return None
    source = texts.by_language.get(DEFAULT_LANGUAGE)
    shown = []
    for code in (*LANGUAGES, *(c for c in texts.by_language if c not in LANGUAGES)):
        if code in texts.by_language:
            origin = "file"
        elif source is not None and has_translation(source, code):
            origin = "catalogue"
        else:
            origin = "fallback"
        shown.append(Line(code, texts.pick(code), origin))
    return shown


def catalogue_lines(message: Any, **params: Any) -> list[Line]:
    """A text of the runner's own, in every language, from the gettext catalogue."""
    return [
        Line(code, translate(message, code, **params), _origin(message, code)) for code in LANGUAGES
    ]


def _origin(message: Any, code: str) -> str:
    return "catalogue" if has_translation(message, code) else "fallback"


def type_detail(kind: Any) -> str:
    if isinstance(kind, DigitsSlot):
        return f"{kind.length} 位数字"
    if isinstance(kind, PatternSlot):
        return f"正则 {kind.regex.pattern}"
    if isinstance(kind, ChoiceSlot):
        return "选项：" + "、".join(o.label(DEFAULT_LANGUAGE) for o in kind.options)
    if isinstance(kind, TextSlot):
        return f"最多 {kind.max_length} 字"
    if isinstance(kind, SmsCodeSlot):
        return f"发到 {kind.phone_slot} 的 6 位验证码"
    return ""


def shown_url(url: str | None) -> str | None:
    """A webhook as the page shows it: no user:password, no query string (either may hold a
    secret the operator put in the environment)."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # as written: parts.port raises on a bad port
    return f"{parts.scheme}://{host}{parts.path}" + ("?…" if parts.query else "")


def flow_view(flow: Flow, funnel: dict[str, Any]) -> FlowView:
    entered = funnel.get("entered", 0)

    def bar(count: int) -> float:
        return round(BAR_WIDTH * count / entered, 1) if entered else 0.0

    per_step = {s["step"]: s for s in funnel.get("steps", [])}
    steps = []
    for step in flow.steps:
        figures = per_step.get(step.slot, {})
        sms = {}
        if isinstance(step.kind, SmsCodeSlot):
            for key, default in say.SMS_DEFAULTS.items():
                own = step.messages.get(key)
                sms[key] = lines(own) if own else catalogue_lines(default)  # type: ignore[assignment]
        example = step.example or step.kind.default_example()
        steps.append(
            StepView(
                step=step,
                type_detail=type_detail(step.kind),
                ask=lines(step.ask) or [],
                invalid=lines(step.invalid),
                confirm=lines(step.confirm),
                ask_if={fact: lines(t) or [] for fact, t in step.ask_if.items()},
                sms=sms,
                example=example,
                funnel=figures,
                bar=bar(figures.get("entered", 0)),
            )
        )
    example = next((s.example for s in steps if s.example), None) or "…"
    return FlowView(
        flow=flow,
        file=os.path.basename(flow.path),
        funnel=funnel,
        steps=steps,
        reply=lines(flow.action.reply),
        webhook=shown_url(flow.action.webhook),
        bands=bands_shown(flow, example),
        completed_bar=bar(funnel.get("completed", 0)),
        failure_texts=catalogue_lines(say.WEBHOOK_FAILED) if flow.action.webhook else [],
    )


def bands_shown(flow: Flow, example: str) -> list[tuple[str, str]]:
    """What the user gets after each failed answer at a step, by attempt (the empty ranges
    of a flow with a low limit left out)."""
    b = flow.bands
    last = b.limit - 1
    ranges = [
        (1, min(b.patient, last), "再说一遍提示（或 invalid 里的说明）"),
        (
            b.patient + 1,
            min(b.explicit, last),
            "再加一个例子：" + translate(say.EXAMPLE, DEFAULT_LANGUAGE, example=example),
        ),
        (
            b.explicit + 1,
            min(b.urgent, last),
            "再加剩余次数："
            + translate(say.TRIES_LEFT, DEFAULT_LANGUAGE, left=b.limit - b.explicit - 1),
        ),
        (  # after an `urgent` below limit - 1 the runner keeps the example, without the count
            b.urgent + 1,
            last,
            "再加一个例子：" + translate(say.EXAMPLE, DEFAULT_LANGUAGE, example=example),
        ),
    ]
    shown = [
        (f"第 {first} 次" if first == end else f"第 {first}–{end} 次", what)
        for first, end, what in ranges
        if first <= end
    ]
    return [*shown, (f"第 {b.limit} 次", "转人工客服")]


@bp.get("/flows")
def flows() -> str:
    ops = admin()
    funnels = ops.flow_funnels()
    views = [flow_view(f, funnels.get(f.name, {})) for f in ops.loaded_flows()]
    views.sort(key=lambda v: -int(v.funnel.get("entered", 0)))  # the busiest first
    return render_template(
        "console/flows.html",
        nav="flows",
        flows=views,
        origins=ORIGINS,
        flows_dir=ops.settings.flows_dir or "knowledge/flows",
    )
