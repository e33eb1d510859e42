"""Slot types: how a step's value is read from the whole answer (``parse``) and found inside
free text (``find``: 「我要查充值，订单号 123456789012345678」).

``find`` is deliberately stricter than ``parse``: it runs on every message of the flow for
every open slot, so it only takes values that cannot be mistaken (exactly one 18-digit run,
one mobile number, an option named in full). ``text`` slots are never filled in passing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from wxbot.flows import patterns
from wxbot.flows.phone import CODE_LENGTH, find_phone, normalise_phone
from wxbot.i18n import LANGUAGES
from wxbot.i18n.numerals import spoken_digits, spoken_pick

TYPES = ("pattern", "phone", "digits", "choice", "text", "sms_code")
_PUNCT = " \t\r\n。.!！?？,，、~～"


class SlotConfigError(ValueError):
    """A step's type-specific settings are wrong (the loader adds file and line)."""


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_PUNCT)


def _number(text: str) -> str:
    """A number answered by typing or by voice (「一二三，四五六。」 → 「123456」): digits read
    out in Chinese become Arabic, the blanks, dashes and commas between groups go."""
    return re.sub(r"[\s\-,，、]", "", spoken_digits(_clean(text)).strip(_PUNCT))


@dataclass
class SlotType:
    name: str = "text"

    def parse(self, text: str) -> str | None:
        raise NotImplementedError

    def find(self, text: str) -> str | None:
        return None

    def default_example(self) -> str | None:
        return None

    def display(self, value: str, language: str) -> str:
        return value


@dataclass
class PatternSlot(SlotType):
    """An answer the regex matches whole. The regex was checked for catastrophic
    backtracking (patterns.py), and the text it meets is bounded: an answer longer than the
    regex can match (or than MAX_ANSWER) is no match, a message longer than MAX_SEARCH is
    not searched for a value in passing."""

    regex: re.Pattern[str] = field(default_factory=lambda: re.compile(""))
    search: re.Pattern[str] | None = None  # the regex without ^ / $
    max_width: int = patterns.MAX_ANSWER
    # False when the regex also matches everyday words or the flow's own triggers (a name
    # such as [\u4e00-\u9fa5]{2,4} matches 「预约看房」): then only its own step reads it
    passing: bool = True

    def parse(self, text: str) -> str | None:
        answer = _clean(text)
        if len(answer) > self.max_width:
            return None
        match = self.regex.fullmatch(answer)
        return match.group(0) if match else None

    def find(self, text: str) -> str | None:
        """The one value the regex finds in ``text``; a match cut out of a longer run of
        digits or Latin letters is none (\\d{6} takes nothing from 「1234567」, a mistyped
        number, where it took 123456)."""
        if self.search is None or len(text) > patterns.MAX_SEARCH:
            return None
        text = unicodedata.normalize("NFKC", text)
        found = {m.group(0) for m in self.search.finditer(text) if _whole_run(text, m)}
        found.discard("")
        return found.pop() if len(found) == 1 else None

    def matches_in(self, texts: list[str]) -> bool:
        """Whether the regex finds a value in any of ``texts``."""
        return any(self.find(t) is not None or self.parse(t) is not None for t in texts)


def _run_class(ch: str) -> str | None:
    if ch.isdigit():
        return "digit"
    if ch.isalpha() and ch.isascii():
        return "latin"
    return None


def _whole_run(text: str, match: re.Match[str]) -> bool:
    """Whether ``match`` does not cut a run of digits or Latin letters at either end."""
    start, end = match.span()
    if start == end:
        return False
    before = _run_class(text[start - 1]) if start > 0 else None
    after = _run_class(text[end]) if end < len(text) else None
    return (before is None or before != _run_class(text[start])) and (
        after is None or after != _run_class(text[end - 1])
    )


@dataclass
class PhoneSlot(SlotType):
    def parse(self, text: str) -> str | None:
        return normalise_phone(text)

    def find(self, text: str) -> str | None:
        return find_phone(text)

    def default_example(self) -> str | None:
        return "13800138000"


@dataclass
class DigitsSlot(SlotType):
    length: int = 0

    def parse(self, text: str) -> str | None:
        digits = _number(text)
        return (
            digits if digits.isdigit() and digits.isascii() and len(digits) == self.length else None
        )

    def find(self, text: str) -> str | None:
        runs = re.findall(r"(?<!\d)\d+(?!\d)", spoken_digits(unicodedata.normalize("NFKC", text)))
        fitting = {run for run in runs if len(run) == self.length}
        return fitting.pop() if len(fitting) == 1 else None

    def default_example(self) -> str | None:
        return "".join(str((i + 1) % 10) for i in range(self.length))


@dataclass
class Option:
    value: str
    labels: dict[str, str]  # language -> label; the value itself also matches

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("zh") or self.value

    def words(self) -> set[str]:
        return {_clean(w).lower() for w in (self.value, *self.labels.values()) if w}


@dataclass
class ChoiceSlot(SlotType):
    options: list[Option] = field(default_factory=list)

    def parse(self, text: str) -> str | None:
        word = spoken_pick(_clean(text)).lower().strip("第个项号")
        if word.isdigit() and 1 <= int(word) <= len(self.options):
            return self.options[int(word) - 1].value
        for option in self.options:
            if word in option.words():
                return option.value
        return None

    def find(self, text: str) -> str | None:
        lowered = _clean(text).lower()
        named = {o.value for o in self.options for w in o.words() if len(w) >= 2 and w in lowered}
        return named.pop() if len(named) == 1 else None

    def default_example(self) -> str | None:
        return self.options[0].value if self.options else None

    def display(self, value: str, language: str) -> str:
        for option in self.options:
            if option.value == value:
                return option.label(language)
        return value

    def menu(self, language: str) -> str:
        return "\n".join(f"{i}. {o.label(language)}" for i, o in enumerate(self.options, 1))


@dataclass
class TextSlot(SlotType):
    max_length: int = 200

    def parse(self, text: str) -> str | None:
        text = text.strip()
        return text if text and len(text) <= self.max_length else None


@dataclass
class SmsCodeSlot(SlotType):
    """Sends a code to the phone in ``phone_slot`` and checks it; the value is "verified"."""

    phone_slot: str = ""

    def parse(self, text: str) -> str | None:
        """The code alone (「123 456」 too, or said: 「一二三四五六。」), or the one 6-digit run of a
        sentence: 「验证码是 123456」, the SMS pasted back."""
        code = _number(text)
        if len(code) == CODE_LENGTH and code.isdigit() and code.isascii():
            return code
        said = spoken_digits(_clean(text))
        runs = set(re.findall(rf"(?<![0-9])[0-9]{{{CODE_LENGTH}}}(?![0-9])", said))
        return runs.pop() if len(runs) == 1 else None


def build(kind: str, config: dict[str, Any]) -> SlotType:
    """The slot type of a step from its settings; SlotConfigError says what is wrong."""
    if kind == "pattern":
        source = config.get("pattern")
        if not isinstance(source, str) or not source:
            raise SlotConfigError("a `pattern` slot needs `pattern:` (a regular expression)")
        try:
            compiled = patterns.compile_pattern(source)
        except patterns.PatternError as exc:
            raise SlotConfigError(str(exc)) from None
        return PatternSlot("pattern", compiled.regex, compiled.search, compiled.max_width)
    if kind == "phone":
        return PhoneSlot("phone")
    if kind == "digits":
        length = config.get("length")
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 64:
            raise SlotConfigError("a `digits` slot needs `length:` (a whole number, 1 to 64)")
        return DigitsSlot("digits", length)
    if kind == "choice":
        return ChoiceSlot("choice", _options(config.get("options")))
    if kind == "text":
        limit = config.get("max_length", 200)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise SlotConfigError("`max_length` must be a positive whole number")
        return TextSlot("text", limit)
    if kind == "sms_code":
        phone_slot = config.get("phone_slot")
        if not isinstance(phone_slot, str):
            raise SlotConfigError("an `sms_code` slot needs `phone_slot:` (the phone step's slot)")
        return SmsCodeSlot("sms_code", phone_slot)
    raise SlotConfigError(f"unknown slot type {kind!r}; use one of: {', '.join(TYPES)}")


def _option_value(raw: Any) -> str:
    # YAML's true/false would become the option "True": never what an operator meant
    if isinstance(raw, bool) or not isinstance(raw, (str, int)) or not str(raw).strip():
        raise SlotConfigError(f"an option's `value` must be text or a number, not {raw!r}")
    return str(raw)


def _labels(raw: Any) -> dict[str, str]:
    """An option's labels by language: text (Chinese) or {zh: ..., en: ...}."""
    if raw is None:
        return {}
    if isinstance(raw, str):
        raw = {"zh": raw}
    if not isinstance(raw, dict):
        raise SlotConfigError("an option's `label` is text or {language: text}")
    for language, text in raw.items():
        if language not in LANGUAGES:
            raise SlotConfigError(
                f"unknown language {language!r} in an option's `label` (use {', '.join(LANGUAGES)})"
            )
        if not isinstance(text, str) or not text.strip():
            raise SlotConfigError(f"an option's `label.{language}` must be non-empty text")
    return dict(raw)


def _options(raw: Any) -> list[Option]:
    if not isinstance(raw, list) or not raw:
        raise SlotConfigError("a `choice` slot needs `options:` (a list)")
    options: list[Option] = []
    for item in raw:
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            options.append(Option(str(item), {}))
        elif isinstance(item, dict) and "value" in item:
            unknown = [k for k in item if k not in ("value", "label")]
            if unknown:
                raise SlotConfigError(f"unknown key {unknown[0]!r} in an option (value, label)")
            options.append(Option(_option_value(item["value"]), _labels(item.get("label"))))
        else:
            raise SlotConfigError("each option is text, or {value: ..., label: {zh: ..., en: ...}}")
    values = [o.value for o in options]
    if len(set(values)) != len(values):
        raise SlotConfigError("two options have the same value")
    _check_answers(options)
    return options


def _check_answers(options: list[Option]) -> None:
    """Every option can be answered by its name: no name is empty once punctuation is
    ignored, none is shared by two options, and a name that is a number is its own place in
    the menu (answers by number go by place: 「2」 is the 2nd option)."""
    owner: dict[str, int] = {}
    for place, option in enumerate(options, 1):
        for word in option.words():
            if not word:
                raise SlotConfigError(f"the option {option.value!r} has a name with no words")
            number = word.strip("第个项号")
            if number.isdigit() and int(number) != place and 1 <= int(number) <= len(options):
                raise SlotConfigError(
                    f"the option name {word!r} would read as the number of option {int(number)}; "
                    "answers by number go by place in the menu"
                )
            if owner.get(word, place) != place:
                raise SlotConfigError(
                    f"two options answer to {word!r} (options {owner[word]} and {place})"
                )
            owner[word] = place
