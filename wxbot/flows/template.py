"""Reply templates over slots: ``{order_no}``, ``{phone|mask}``; anything else is literal text.

Rendering is one regular-expression substitution, never ``str.format`` or ``%``: a text such
as ``{0.__class__}`` or ``%s`` cannot reach an object or a formatting directive. A brace that
is not part of a placeholder is refused when the file is checked (``problems``): written by
mistake (``{order_no``, ``{order_no | mask}``, ``{订单}``) it would reach users as it stands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from wxbot.flows.phone import mask

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([a-z]+))?\}")
_LOOSE = re.compile(r"\{[^{}]*\}")
FILTERS: dict[str, Callable[[str], str]] = {"mask": mask}


def names(template: str) -> list[tuple[str, str | None]]:
    """The (name, filter) pairs a template uses."""
    return [(m.group(1), m.group(2)) for m in _FIELD.finditer(template)]


def problems(template: str) -> list[str]:
    """What in ``template`` looks like a placeholder but is not one."""
    found = []
    rest = _FIELD.sub("", template)
    for match in _LOOSE.finditer(rest):
        found.append(
            f"{match.group(0)!r} is not a placeholder: write {{slot}} or {{slot|filter}} "
            "(a slot's name, no spaces)"
        )
    rest = _LOOSE.sub("", rest)
    for brace in sorted(set(rest) & {"{", "}"}):
        found.append(f"a {brace!r} that belongs to no placeholder ({{slot}})")
    return found


def render(template: str, values: Mapping[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:  # validated at load time; a gap is better than a failed reply
            return ""
        text = str(value)
        flt = FILTERS.get(match.group(2) or "")
        return flt(text) if flt else text

    return _FIELD.sub(fill, template)
