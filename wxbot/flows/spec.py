"""A loaded, validated flow: plain data the runner reads (see loader.py for the file format)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wxbot.flows import template
from wxbot.flows.slots import SlotType
from wxbot.i18n import DEFAULT_LANGUAGE, has_translation, translate

FACTS = ("bound_phone",)  # what templates may name besides slots (looked up when used)


@dataclass(frozen=True)
class Texts:
    """One text in several languages. A language the file lacks falls back to the gettext
    catalogue's translation of the Chinese text (if a translator added one), then to Chinese."""

    by_language: dict[str, str]
    line: int = 0

    def pick(self, language: str) -> str:
        text = self.by_language.get(language)
        if text is not None:
            return text
        source = self.by_language.get(DEFAULT_LANGUAGE)
        if source is not None:
            return translate(source, language) if has_translation(source, language) else source
        return next(iter(self.by_language.values()))

    def render(self, language: str, values: dict[str, Any]) -> str:
        return template.render(self.pick(language), values)

    def sources(self) -> list[str]:
        return list(self.by_language.values())


@dataclass(frozen=True)
class Bands:
    """Guidance by failed attempts at one step: 1..patient repeat the prompt, ..explicit add
    an example, ..urgent say how many tries remain, the limit-th hands off to a human. A file
    that leaves `urgent` out gets limit - 1 (the loader); below that, the attempts after
    `urgent` keep the example without the count."""

    patient: int = 4
    explicit: int = 6
    urgent: int = 9
    limit: int = 10

    def band(self, attempts: int) -> str:
        if attempts >= self.limit:
            return "limit"
        if attempts <= self.patient:
            return "patient"
        if attempts <= self.explicit:
            return "explicit"
        if attempts <= self.urgent:
            return "urgent"
        return "explicit"


@dataclass
class Step:
    slot: str
    kind: SlotType
    state: str
    ask: Texts
    line: int
    invalid: Texts | None = None
    example: str | None = None
    confirm: Texts | None = None
    ask_if: dict[str, Texts] = field(default_factory=dict)  # fact -> prompt when it is known
    messages: dict[str, Texts] = field(default_factory=dict)  # slot-type message overrides


@dataclass
class Action:
    reply: Texts | None = None
    webhook: str | None = None
    bind_phone: str | None = None  # the (verified) phone slot to store as the user's number
    line: int = 0


@dataclass
class Flow:
    name: str
    path: str
    line: int
    steps: list[Step]
    action: Action
    bands: Bands
    max_rounds: int
    triggers: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # phrase -> line, for messages

    @property
    def slot_names(self) -> list[str]:
        return [s.slot for s in self.steps]

    def step_index(self, slot: str) -> int:
        return self.slot_names.index(slot)
