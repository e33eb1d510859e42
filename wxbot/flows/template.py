"""Reply templates over slots: ``{order_no}``, ``{phone|mask}``; anything else is literal text."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from wxbot.flows.phone import mask

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([a-z]+))?\}")
FILTERS: dict[str, Callable[[str], str]] = {"mask": mask}


def names(template: str) -> list[tuple[str, str | None]]:
    """The (name, filter) pairs a template uses."""
    return [(m.group(1), m.group(2)) for m in _FIELD.finditer(template)]


def render(template: str, values: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:  # validated at load time; a gap is better than a failed reply
            return ""
        text = str(value)
        flt = FILTERS.get(match.group(2) or "")
        return flt(text) if flt else text

    return _FIELD.sub(fill, template)
