"""Flow files' YAML read with line numbers, and the checker that reports problems as file:line.

PyYAML, deliberately: its composer keeps every node's start mark, which is all the line
numbers need, it ships a C parser, and it is the YAML library most operators' tools already
use (ruamel.yaml's round-trip model would only matter if we wrote the files back). Two YAML
1.1 surprises are turned off: ``yes``/``no``/``on``/``off`` stay text (only ``true``/``false``
are booleans; 「是/否」 and ``no`` as an option must not become False), and a key given twice
is an error instead of silently keeping the last one.

A file is refused before it can cost much: over MAX_BYTES, nested deeper than MAX_DEPTH, or
holding more than MAX_VALUES values once its aliases are expanded (anchors are shared, not
copied, while loading; but the checker's messages and the runner walk values, and a
"billion laughs" of ten aliases of ten aliases ... would then expand to 10^9 of them).
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


MAX_BYTES = 1 << 20  # a flow in five languages is a few KB
MAX_DEPTH = 32  # a flow file nests about 6 levels
MAX_VALUES = 100_000  # values after expanding aliases


class _BadNode(yaml.MarkedYAMLError):
    """A key given twice, a list as a key, too deep or too many values (with its line)."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(None, None, problem, mark)


class MarkedLoader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            raise _BadNode(
                f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """YAML's ``<<: *anchor`` merge, remembering how many pairs came first from merging
        (those a key of the mapping itself may override; see _mapping)."""
        if hasattr(node, "merged_pairs"):
            return
        own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        super().flatten_mapping(node)
        node.merged_pairs = len(node.value) - own  # type: ignore[attr-defined]

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_VALUES:
            raise _BadNode(
                f"more than {MAX_VALUES:,} values once its aliases (*name) are expanded",
                node.start_mark,
            )
        return node


_OPEN = -1


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias copied out (linear: an anchored
    node is sized once; depth is bounded by MAX_DEPTH)."""
    known = sizes.get(id(node))
    if known == _OPEN:
        raise _BadNode("an alias (*name) inside the value it names", node.start_mark)
    if known is not None:
        return known
    sizes[id(node)] = _OPEN
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    sizes[id(node)] = size = min(size, MAX_VALUES + 1)
    return size


MarkedLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
MarkedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _mapping(loader: MarkedLoader, node: yaml.MappingNode) -> MarkedDict:
    loader.flatten_mapping(node)
    merged = getattr(node, "merged_pairs", 0)
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    given: set[Any] = set()
    for i, (key_node, value_node) in enumerate(node.value):
        if not isinstance(key_node, yaml.ScalarNode):
            raise _BadNode("a key must be a word, not a list or a mapping", key_node.start_mark)
        key = loader.construct_object(key_node, deep=True)
        if i >= merged:  # keys merged in by `<<: *anchor` come first: the mapping's own win
            if key in given:
                raise _BadNode(f"the key {key!r} is given twice", key_node.start_mark)
            given.add(key)
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
            elif text is None or (isinstance(text, str) and not text.strip()):
                self.error(line_of(raw, language), f"`{key}.{language}` of {what} is empty")
            elif not isinstance(text, str):
                self.error(
                    line_of(raw, language),
                    f"`{key}.{language}` of {what} must be text (put numbers in quotes)",
                )
            else:
                by_language[language] = text
        if not by_language:
            return None
        missing = [lang for lang in LANGUAGES if lang not in by_language]
        if missing:
            self.warn(line, f"`{key}` of {what} has no {'/'.join(missing)} text (Chinese is used)")
        return Texts(by_language, line)

    def names(self, texts: Texts | None, known: set[str], what: str, slots: bool = True) -> None:
        """Placeholders name what is ``known`` then: slots filled by then, or (``slots`` False)
        the values a built-in message is given."""
        if texts is None:
            return
        for text in texts.sources():
            for problem in template.problems(text):
                self.error(texts.line, f"{what}: {problem}")
            for name, flt in template.names(text):
                if name in known:
                    pass
                elif slots:
                    self.error(
                        texts.line, f"{what} names {{{name}}}, which is not a slot filled by then"
                    )
                else:
                    may = ", ".join(f"{{{k}}}" for k in sorted(known)) or "no placeholder"
                    self.error(texts.line, f"{what} names {{{name}}}; it may use {may}")
                if flt and flt not in template.FILTERS:
                    self.error(texts.line, f"{what} uses the unknown filter |{flt}")
