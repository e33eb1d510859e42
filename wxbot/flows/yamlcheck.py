"""Flow files' YAML read with line numbers, and the checker that reports problems as file:line.

PyYAML, deliberately: its composer keeps every node's start mark, which is all the line
numbers need, it ships a C parser, and it is the YAML library most operators' tools already
use (ruamel.yaml's round-trip model would only matter if we wrote the files back). Two YAML
1.1 surprises are turned off: ``yes``/``no``/``on``/``off`` stay text (only ``true``/``false``
are booleans; 「是/否」 and ``no`` as an option must not become False), and a key given twice
is an error instead of silently keeping the last one.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from wxbot.flows import template
from wxbot.flows.spec import Texts
from wxbot.i18n import LANGUAGES

# --- YAML with line numbers ------------------------------------------------------------------


class MarkedDict(dict):  # type: ignore[type-arg]
    line = 0
    key_lines: dict[Any, int]


class MarkedList(list):  # type: ignore[type-arg]
    line = 0
    item_lines: list[int]


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class MarkedLoader(yaml.SafeLoader):
    pass


MarkedLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MarkedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mapping(loader: MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise _DuplicateKey(None, None, f"the key {key!r} is given twice", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: MarkedLoader, node: yaml.SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
MarkedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def line_of(container: Any, key: Any, default: int = 0) -> int:
    if isinstance(container, MarkedDict):
        return container.key_lines.get(key, container.line)
    if isinstance(container, MarkedList) and isinstance(key, int) and key < len(container):
        return container.item_lines[key]
    return getattr(container, "line", default)


# --- validation ------------------------------------------------------------------------------


class Checker:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def error(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.path}:{line}: {message}")

    def unknown_keys(self, data: MarkedDict, allowed: tuple[str, ...], where: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.error(line_of(data, key), f"unknown key {key!r} in {where}{hint}")

    def texts(self, data: Any, key: str, what: str, required: bool = False) -> Texts | None:
        raw = data.get(key)
        line = line_of(data, key)
        if raw is None:
            if required:
                self.error(line, f"{what} has no `{key}:`; every step needs a prompt")
            return None
        if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
            plain = MarkedDict(zh=str(raw))  # plain text = Chinese, at the line of its key
            plain.line, plain.key_lines = line, {"zh": line}
            raw = plain
        if not isinstance(raw, dict) or not raw:
            self.error(line, f"`{key}` of {what} must be text or {{zh: ..., en: ...}}")
            return None
        by_language: dict[str, str] = {}
        for language, text in raw.items():
            if language not in LANGUAGES:
                self.error(
                    line_of(raw, language),
                    f"unknown language {language!r} in `{key}` (use {', '.join(LANGUAGES)})",
                )
            elif not isinstance(text, str) or not text.strip():
                self.error(line_of(raw, language), f"`{key}.{language}` of {what} is empty")
            else:
                by_language[language] = text
        if not by_language:
            return None
        missing = [lang for lang in LANGUAGES if lang not in by_language]
        if missing:
            self.warn(line, f"`{key}` of {what} has no {'/'.join(missing)} text (Chinese is used)")
        return Texts(by_language, line)

    def names(self, texts: Texts | None, known: set[str], what: str) -> None:
        if texts is None:
            return
        for text in texts.sources():
            for name, flt in template.names(text):
                if name not in known:
                    self.error(
                        texts.line, f"{what} names {{{name}}}, which is not a slot filled by then"
                    )
                if flt and flt not in template.FILTERS:
                    self.error(texts.line, f"{what} uses the unknown filter |{flt}")
