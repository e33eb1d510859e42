"""Reading flow files: what each key means, validated into spec.Flow objects.

The YAML with line numbers and the checker that words problems as ``file:line`` are in
yamlcheck.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from wxbot.config import ConfigError
from wxbot.flows import slots, webhook_url
from wxbot.flows.messages import CONFIRM
from wxbot.flows.spec import FACTS, Action, Bands, Flow, Step, Texts
from wxbot.flows.triggers import phrase_key
from wxbot.flows.yamlcheck import (
    MAX_BYTES,
    Checker,
    MarkedDict,
    MarkedList,
    MarkedLoader,
    line_of,
)
from wxbot.i18n import LANGUAGES, translate
from wxbot.models import STATE_LEN

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SLOT = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
STATE = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
MAX_ATTEMPTS = 100  # attempts.*: more failed answers at one step than anyone sends
MAX_ROUNDS = 1000

FLOW_KEYS = ("name", "description", "triggers", "keywords", "attempts", "rounds", "steps", "action")
STEP_KEYS = (
    "slot", "type", "state", "ask", "ask_if", "invalid", "example", "confirm", "messages",
    "pattern", "length", "options", "max_length", "phone_slot",
)  # fmt: skip
ACTION_KEYS = ("reply", "webhook", "bind_phone")
BAND_KEYS = ("patient", "explicit", "urgent", "limit")
SMS_MESSAGES = ("sent", "wrong", "too_many", "expired", "lost", "send_failed")
SMS_MESSAGE_VALUES = {"sent": ("phone",), "wrong": ("left",)}  # see sms_steps.py
# Messages that hold no slot value: a pattern that finds one in them (or in the flow's own
# triggers) is too wide to take values in passing (slots.PatternSlot.passing)
EVERYDAY = ("你好", "我要", "我想问一下", "谢谢", "好的", "hello", "ok", "thanks", "i want", "hi")
YAML11_BOOLEANS = ("yes", "no", "on", "off", "y", "n")  # text here; `confirm: yes` meant true


class FlowError(ConfigError):
    """Bad flow files: every problem as ``file:line: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("bad flow files:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Loaded:
    flows: list[Flow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_file(path: Path) -> tuple[Flow | None, list[str], list[str]]:
    """One flow file: (the flow or None, problems, warnings)."""
    check = Checker(str(path))
    text = _read(check, path)
    if text is None:
        return None, check.problems, check.warnings
    try:
        data = yaml.load(text, Loader=MarkedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        check.error(line, f"not valid YAML: {exc.problem or exc.context}{_quote_hint(text, line)}")
        return None, check.problems, check.warnings
    except yaml.reader.ReaderError as exc:  # a control character: the line it is on
        line = text.count("\n", 0, exc.position) + 1
        check.error(line, f"not valid YAML: the control character #x{exc.character:04x}")
        return None, check.problems, check.warnings
    except (yaml.YAMLError, RecursionError) as exc:
        check.error(0, f"not valid YAML: {exc}")
        return None, check.problems, check.warnings
    if not isinstance(data, MarkedDict):
        check.error(1, "a flow file is a mapping with name, triggers, steps and action")
        return None, check.problems, check.warnings
    flow = _flow(check, data)
    return (flow if not check.problems else None), check.problems, check.warnings


_NEEDS_QUOTES = re.compile(r"[{?#@`]|: .*: ")


def _quote_hint(text: str, line: int) -> str:
    """What to do when the line YAML stumbled on holds a text that needed quotes: a template
    that starts with ``{`` (``reply: {order_no} 已收到`` is read as a mapping), or ``: ``,
    ``?`` or ``#`` inside ``{zh: …, en: …}``. PyYAML's own words do not say."""
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    before = lines[line - 2] if 1 < line <= len(lines) + 1 else ""
    code = before.split(" #", 1)[0]  # what YAML read of it: ` #` starts a comment
    if code.count("{") > code.count("}"):  # a `#` cut its {…}: YAML stumbles a line later
        source += "\n" + before
    if not _NEEDS_QUOTES.search(source):
        return ""
    return (
        '; a text holding ": ", "?", "#" or a {slot}, or starting with "@", goes in double '
        'quotes: reply: {zh: "订单 {order_no}: 已收到", en: "Order {order_no}?"}'
    )


def _read(check: Checker, path: Path) -> str | None:
    """The file's text (UTF-8, a BOM allowed), or None with the problem noted."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            check.error(0, f"the file is {size:,} bytes; a flow file is at most {MAX_BYTES:,}")
            return None
        raw = path.read_bytes()
    except OSError as exc:
        check.error(0, f"cannot read: {exc.strerror or exc}")
        return None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        check.error(1, "the file is UTF-16; save it as UTF-8")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        check.error(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8")
        return None


def _flow(check: Checker, data: MarkedDict) -> Flow | None:
    check.unknown_keys(data, FLOW_KEYS, "the flow")
    if not isinstance(data.get("description", ""), str):
        check.error(line_of(data, "description"), "`description` must be text")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        check.error(line_of(data, "name"), "`name` must be lower-case letters, digits and _")
        name = "?"
    triggers = _phrases(check, data, "triggers")
    keywords = _phrases(check, data, "keywords")
    if not triggers and not keywords:
        check.error(data.line, "the flow has no `triggers:` (nor `keywords:`)")
    _repeated_phrases(check, triggers, "trigger")
    _repeated_phrases(check, keywords, "keyword")
    bands = _bands(check, data.get("attempts"), line_of(data, "attempts"))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, MarkedList) or not raw_steps:
        check.error(line_of(data, "steps"), "`steps:` must be a non-empty list")
        return None
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps):
        step = _step(check, name, raw, line_of(raw_steps, i), steps)
        if step is not None:
            steps.append(step)
    # slots of steps that had problems of their own still count (no cascade of errors)
    declared = {str(r.get("slot")) for r in raw_steps if isinstance(r, MarkedDict)}
    action = _action(check, data.get("action"), line_of(data, "action"), steps, declared)
    rounds = data.get("rounds", max(10, bands.limit + 2 * len(steps)))
    if not _whole(rounds, MAX_ROUNDS if "rounds" in data else rounds):
        check.error(
            line_of(data, "rounds"),
            f"`rounds` must be a positive whole number (at most {MAX_ROUNDS:,})",
        )
        rounds = 10
    if check.problems or action is None:
        return None
    samples = [*EVERYDAY, *(p for p, _ in triggers + keywords)]
    for step in steps:
        if isinstance(step.kind, slots.PatternSlot):
            step.kind.passing = not step.kind.matches_in(samples)
    return Flow(
        name,
        check.path,
        data.line,
        steps,
        action,
        bands,
        rounds,
        triggers=[p for p, _ in triggers],
        keywords=[p for p, _ in keywords],
        lines=dict(triggers + keywords),
    )


def _phrases(check: Checker, data: MarkedDict, key: str) -> list[tuple[str, int]]:
    raw = data.get(key)
    if raw is None:
        return []
    if not isinstance(raw, MarkedList):
        check.error(line_of(data, key), f"`{key}` must be a list of phrases")
        return []
    phrases = []
    for i, item in enumerate(raw):
        if isinstance(item, (str, int)) and not isinstance(item, bool) and str(item).strip():
            phrases.append((str(item).strip(), line_of(raw, i)))
        else:
            check.error(line_of(raw, i), f"each of `{key}` must be a phrase (text)")
    return phrases


def _repeated_phrases(check: Checker, phrases: list[tuple[str, int]], what: str) -> None:
    """A trigger (or keyword) the flow lists twice (「查充值」 and 「查 充值！」 read alike): a
    warning, the flow works the same; likely a slip where another phrase was meant."""
    seen: dict[str, tuple[str, int]] = {}
    for phrase, line in phrases:
        key = phrase_key(phrase)
        if key and key in seen:
            first, first_line = seen[key]
            check.warn(
                line,
                f"the {what} {phrase!r} repeats {first!r} (line {first_line}) of the same "
                "flow; remove one (was another phrase meant?)",
            )
        seen.setdefault(key, (phrase, line))


def _bands(check: Checker, raw: Any, line: int) -> Bands:
    if raw is None:
        return Bands()
    if not isinstance(raw, MarkedDict):
        check.error(line, "`attempts` must be {patient: 4, explicit: 6, urgent: 9, limit: 10}")
        return Bands()
    check.unknown_keys(raw, BAND_KEYS, "`attempts`")
    values = {}
    for key in BAND_KEYS:
        value = raw.get(key, getattr(Bands, key))
        if not _whole(value, MAX_ATTEMPTS):
            check.error(
                line_of(raw, key),
                f"`attempts.{key}` must be a positive whole number (at most {MAX_ATTEMPTS})",
            )
            return Bands()
        values[key] = value
    limit = values["limit"]
    # Bands left at their defaults shrink to fit a smaller limit (limit: 3 → patient 1..2);
    # the urgent band left out runs up to the hand-off, whatever the limit.
    for key in ("patient", "explicit"):
        if key not in raw:
            values[key] = min(values[key], limit - 1)
    if "urgent" not in raw:
        values["urgent"] = limit - 1
    if not values["patient"] <= values["explicit"] <= values["urgent"] < limit:
        check.error(raw.line, "`attempts` bands must grow: patient ≤ explicit ≤ urgent < limit")
        return Bands()
    return Bands(**values)


def _whole(value: Any, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most


def _step(check: Checker, flow: str, raw: Any, line: int, earlier: list[Step]) -> Step | None:
    if not isinstance(raw, MarkedDict):
        check.error(line, "each step is a mapping with slot, type and ask")
        return None
    check.unknown_keys(raw, STEP_KEYS, "a step")
    slot = raw.get("slot")
    if not isinstance(slot, str) or not SLOT.match(slot):
        check.error(line_of(raw, "slot"), "`slot` must be lower-case letters, digits and _")
        return None
    if slot in {s.slot for s in earlier}:
        check.error(line_of(raw, "slot"), f"the slot {slot!r} is filled by two steps")
    what = f"step {slot!r}"
    kind_name = raw.get("type")
    if not isinstance(kind_name, str):
        check.error(
            line_of(raw, "type"), f"{what}: `type` must be one of: {', '.join(slots.TYPES)}"
        )
        return None
    try:
        kind = slots.build(kind_name, raw)
    except slots.SlotConfigError as exc:
        key = (
            "type"
            if kind_name not in slots.TYPES
            else next(
                (
                    k
                    for k in ("pattern", "length", "options", "max_length", "phone_slot")
                    if k in raw
                ),
                "type",
            )
        )
        check.error(line_of(raw, key), f"{what}: {exc}")
        return None
    state = raw.get("state", f"WAIT_{flow}.{slot}")
    if "state" not in raw and not NAME.match(flow):
        pass  # the flow's bad name was reported
    elif not isinstance(state, str) or not STATE.match(state):
        check.error(
            line_of(raw, "state"),
            f"{what}: `state` must be a name of letters, digits, _ and . (WAIT_ORDER_NO)",
        )
    elif len(state) > STATE_LEN:
        check.error(
            line_of(raw, "state"),
            f"{what}: the state name {state!r} must be 1 to {STATE_LEN} characters; "
            "give the step a shorter `state:`",
        )
    filled_before = {s.slot for s in earlier}
    ask = check.texts(raw, "ask", what, required=True)
    if ask is None:
        return None
    ask_if = _ask_if(check, raw, what, filled_before)
    invalid = check.texts(raw, "invalid", what)
    confirm = _confirm(check, raw, what)
    messages = _messages(check, raw, what, kind)
    check.names(ask, filled_before, f"the prompt of {what}")
    check.names(invalid, filled_before, f"`invalid` of {what}")
    check.names(confirm, filled_before | {slot}, f"`confirm` of {what}")
    for key, texts in messages.items():  # rendered with their own values only, no slots
        known = set(SMS_MESSAGE_VALUES.get(key, ()))
        check.names(texts, known, f"`messages.{key}` of {what}", slots=False)
    example = raw.get("example")
    if example is not None and (not isinstance(example, (str, int)) or isinstance(example, bool)):
        check.error(line_of(raw, "example"), f"{what}: the example must be text")
        example = None
    elif example is not None:
        example = str(example)
        if kind.parse(example) is None:
            check.error(
                line_of(raw, "example"),
                f"{what}: the example {example!r} is not a valid answer itself "
                "(quote numbers with leading zeros)",
            )
    if isinstance(kind, slots.SmsCodeSlot):
        target = next((s for s in earlier if s.slot == kind.phone_slot), None)
        other = next((s for s in earlier if isinstance(s.kind, slots.SmsCodeSlot)), None)
        if target is None or not isinstance(target.kind, slots.PhoneSlot):
            check.error(
                line_of(raw, "phone_slot"),
                f"{what}: `phone_slot` must name an earlier step of type phone",
            )
        elif other is not None:  # one pending code per user, one a minute: a 2nd would wait
            check.error(
                line_of(raw, "type"),
                f"{what}: a flow has at most one sms_code step (step {other.slot!r} is one)",
            )
    return Step(slot, kind, str(state), ask, line, invalid, example, confirm, ask_if, messages)


def _ask_if(check: Checker, raw: MarkedDict, what: str, known: set[str]) -> dict[str, Texts]:
    data = raw.get("ask_if")
    if data is None:
        return {}
    if not isinstance(data, MarkedDict):
        check.error(line_of(raw, "ask_if"), f"`ask_if` of {what} maps a fact to a prompt")
        return {}
    result = {}
    for fact in data:
        if fact not in FACTS:
            check.error(line_of(data, fact), f"unknown fact {fact!r} (known: {', '.join(FACTS)})")
            continue
        texts = check.texts(data, fact, f"`ask_if` of {what}")
        check.names(texts, known | {fact}, f"`ask_if.{fact}` of {what}")
        if texts is not None:
            result[fact] = texts
    return result


def _confirm(check: Checker, raw: MarkedDict, what: str) -> Texts | None:
    value = raw.get("confirm")
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in YAML11_BOOLEANS:
        check.error(
            line_of(raw, "confirm"),
            f"{what}: `confirm: {value}` would ask the user {value!r}; write `confirm: true` "
            'for the standard question, or the question itself ({zh: "是 {slot} 吗？"})',
        )
        return None
    if value is True:  # the catalogue's sentence, in every language it has
        field = "{" + str(raw.get("slot")) + "}"
        texts = {lang: translate(CONFIRM, lang).replace("{value}", field) for lang in LANGUAGES}
        return Texts(texts, line_of(raw, "confirm"))
    return check.texts(raw, "confirm", what)


def _messages(check: Checker, raw: MarkedDict, what: str, kind: Any) -> dict[str, Texts]:
    data = raw.get("messages")
    if data is None:
        return {}
    allowed = SMS_MESSAGES if isinstance(kind, slots.SmsCodeSlot) else ()
    if not isinstance(data, MarkedDict):
        check.error(line_of(raw, "messages"), f"`messages` of {what} must be a mapping")
        return {}
    check.unknown_keys(data, allowed, f"`messages` of {what}")
    result = {}
    for key in data:
        texts = check.texts(data, key, f"`messages.{key}` of {what}")
        if texts is not None and key in allowed:
            result[key] = texts
    return result


def _action(
    check: Checker, raw: Any, line: int, steps: list[Step], declared: set[str]
) -> Action | None:
    if not isinstance(raw, MarkedDict):
        check.error(line, "the flow needs `action:` with `reply:` and/or `webhook:`")
        return None
    check.unknown_keys(raw, ACTION_KEYS, "`action`")
    reply = check.texts(raw, "reply", "the action")
    check.names(reply, declared, "the action's reply")
    webhook = raw.get("webhook")
    if isinstance(webhook, str):
        webhook = webhook_url.expand(check, webhook, line_of(raw, "webhook"))
    elif webhook is not None:
        check.error(line_of(raw, "webhook"), "`webhook` must be an http(s) URL (text)")
        webhook = None
    bind_phone = raw.get("bind_phone")
    if bind_phone is not None:
        verified = {s.kind.phone_slot for s in steps if isinstance(s.kind, slots.SmsCodeSlot)}
        if not isinstance(bind_phone, str) or bind_phone not in verified:
            check.error(
                line_of(raw, "bind_phone"),
                "`bind_phone` must name a phone slot that an sms_code step verifies",
            )
    if reply is None and webhook is None:
        if "reply" not in raw and "webhook" not in raw:  # else: what is wrong was said
            check.error(raw.line, "the action has neither `reply:` nor `webhook:`")
        return None
    return Action(reply, webhook, bind_phone, raw.line)
