"""Markdown in LLM answers turned into the plain text a WeChat text message shows as meant."""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Why a parser (markdown-it-py, CommonMark) and not regexes: what is markup depends on
# context a line-by-line regex cannot see (a fence's content is verbatim, `2*3=6` has no
# closing star, `\*` is an escaped star, a table needs its delimiter row), and CommonMark's
# delimiter rules already leave most ordinary text alone. The few places where CommonMark
# and a chat answer disagree are patched below, each with its reason. Raw HTML stays text.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

BULLET = "• "
_LINK_END = "\ue000"  # private-use mark after a URL: a space goes there unless text ends
_CLOSING = "，。；：！？、）」』】》…,.;:!?)"  # a URL followed by these needs no space
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# ">= 18 岁", "> 3 天": a comparison at the start of a line, not a quote
_NOT_A_QUOTE = re.compile(r"^( {0,3})>(?=\s*[=\d])")
# CommonMark does not close **…** when the inner side is punctuation and the outer side a
# letter ("**注意：**请先登录"), which is how Chinese answers usually bold a label. A ** left
# over in text is such markup, unless it sits inside an ASCII word or number ("2**10").
_LEFTOVER_STRONG = re.compile(r"(?<![A-Za-z0-9])\*\*|\*\*(?![A-Za-z0-9])")
_BR = re.compile(r"<br\s*/?>", re.I)
# WeChat renders <a href> in a text message as a link whose target the user cannot see
_ANCHOR = re.compile(r"""<a\s[^>]*?href\s*=\s*["']?([^"'\s>]+)["']?[^>]*>(.*?)</a\s*>""", re.I)
_BLANK_LINES = re.compile(r"\n{3,}")


def to_plain_text(markdown: str) -> str:
    """The answer without Markdown markup: words kept, bullets as "• ", numbered lists kept,
    links as "text URL", code as its content, table rows as "header: cell" lines."""
    source = _protect_comparisons(markdown.replace(_LINK_END, ""))
    text = _Renderer().render(_MARKDOWN.parse(source))
    text = re.sub(_LINK_END + r"(?=\s|$|[" + re.escape(_CLOSING) + "])", "", text)
    text = text.replace(_LINK_END, " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _protect_comparisons(source: str) -> str:
    """Escape a ">" that starts a comparison, outside fenced code (verbatim there)."""
    lines, fence = source.split("\n"), ""
    for i, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = ""
        elif opened:
            fence = opened.group(1)
        else:
            lines[i] = _NOT_A_QUOTE.sub(r"\1\\>", line)
    return "\n".join(lines)


@dataclass
class _Item:
    marker: str  # "• " or "3. "
    indent: str
    started: bool = False

    def prefix(self) -> str:
        if self.started:  # a later block of the same item
            return self.indent
        self.started = True
        return self.indent + self.marker


class _Renderer:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.last_end: int | None = None  # source line after the last block written
        self.gap = False  # a rule was dropped: keep a blank line in its place
        self.lists: list[list[int]] = []  # [ordered (0/1), next number] per open list
        self.items: list[_Item] = []
        self.rows: list[list[str]] = []
        self.header: list[str] = []
        self.table_map: list[int] | None = None

    def render(self, tokens: list[Token]) -> str:
        for i, token in enumerate(tokens):
            self.block(token, tokens[i - 1] if i else None)
        return "".join(self.out)

    def block(self, token: Token, before: Token | None) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.lists.append([kind == "ordered_list_open", int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
        elif kind == "list_item_open":
            self.items.append(_Item(self.marker(token), "  " * (len(self.lists) - 1)))
        elif kind == "list_item_close":
            self.items.pop()
        elif kind == "inline" and before is not None:
            self.inline_block(token, before)
        elif kind in ("fence", "code_block"):
            self.emit(token.content.rstrip("\n"), token.map)
        elif kind == "hr":
            self.gap = bool(self.out)
        elif kind == "tr_open":
            self.rows.append([])
        elif kind == "thead_close":
            self.header = self.rows.pop() if self.rows else []
        elif kind == "table_open":
            self.table_map = token.map
        elif kind == "table_close":
            self.emit("\n".join(_row(self.header, r) for r in self.rows), self.table_map)
            self.rows, self.header = [], []

    def marker(self, token: Token) -> str:
        ordered, number = self.lists[-1]
        if not ordered:
            return BULLET
        self.lists[-1][1] += 1
        return f"{number}{token.markup or '.'} "

    def inline_block(self, token: Token, before: Token) -> None:
        text = _inline(token.children or [])
        if before.type in ("th_open", "td_open"):
            self.rows[-1].append(text.replace("\n", " ").strip())
        else:
            self.emit(text, before.map)

    def emit(self, text: str, where: list[int] | None) -> None:
        """Write one block, separated from the last as in the source (a blank line or not)."""
        if not text.strip():  # markup alone ("** **", an empty item or fence): nothing to show
            return
        if self.out:
            after = where is not None and self.last_end is not None and where[0] > self.last_end
            blank = self.gap or after
            self.out.append("\n\n" if blank else "\n")
        self.gap = False
        if self.items:
            item = self.items[-1]
            # continuation lines keep only the nesting indent: a lazy line of prose stays flush
            text = item.prefix() + text.replace("\n", "\n" + item.indent)
        self.out.append(text)
        if where is not None:
            self.last_end = where[1]


def _row(header: list[str], cells: list[str]) -> str:
    """A table row as one line: "header: cell" pairs, or the cells alone without headers."""
    wide = any(_is_wide(c) for c in [*header, *cells])
    colon, sep = ("：", "；") if wide else (": ", "; ")
    pairs = []
    for i, cell in enumerate(cells):
        name = header[i] if i < len(header) else ""
        if cell:
            pairs.append(f"{name}{colon}{cell}" if name else cell)
    return sep.join(pairs)


def _is_wide(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef" for ch in text)


def _inline(children: list[Token]) -> str:
    literal = _literal_emphasis(children)
    parts: list[str] = []
    links: list[tuple[str, int]] = []  # (href, where its text starts in parts)
    for i, token in enumerate(children):
        kind = token.type
        if kind == "text":
            parts.append(_clean(token.content))
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif kind.endswith(("_open", "_close")) and kind.startswith(("em", "strong", "s_")):
            parts.append(token.markup if i in literal else "")
        elif kind == "link_open":
            links.append((str(token.attrGet("href") or ""), len(parts)))
        elif kind == "link_close" and links:
            href, start = links.pop()
            label = "".join(parts[start:])
            del parts[start:]
            parts.append(_link(label, href))
        elif kind == "image":
            parts.append(_link(token.content, str(token.attrGet("src") or "")))
        else:  # code_inline (verbatim), text_special, html_inline
            parts.append(token.content)
    return "".join(parts)


def _literal_emphasis(children: list[Token]) -> set[int]:
    """Emphasis delimiters to show as typed, where CommonMark's reading is not the answer's:
    ``_`` (models emphasise with ``*``; underscores are identifiers and ``^_^``); a star
    between two ASCII letters or digits ("2*3*4=24", "2**3**4"); and a pair of single stars
    both inside words ("按*号键，然后按*号"). Bold between Chinese characters is markup
    ("这是**重点**内容"), and so is "*斜体*" that ends at punctuation or a space."""
    literal: set[int] = set()
    opened: list[int] = []
    for i, token in enumerate(children):
        if token.type in ("em_open", "strong_open"):
            opened.append(i)
        elif token.type in ("em_close", "strong_close") and opened:
            start = opened.pop()
            sides = [(_char(children, at - 1, -1), _char(children, at + 1, 0)) for at in (start, i)]
            in_ascii_word = any(_ascii_word(a) and _ascii_word(b) for a, b in sides)
            in_words = token.markup == "*" and all(a.isalnum() and b.isalnum() for a, b in sides)
            if token.markup.startswith("_") or in_ascii_word or in_words:
                literal.update((start, i))
    return literal


def _char(children: list[Token], at: int, which: int) -> str:
    """The first (0) or last (-1) character of a neighbouring text token, else ''."""
    if 0 <= at < len(children) and children[at].type == "text" and children[at].content:
        return children[at].content[which]
    return ""


def _ascii_word(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _clean(text: str) -> str:
    text = _ANCHOR.sub(lambda m: _link(m.group(2), m.group(1)), text)
    return _LEFTOVER_STRONG.sub("", _BR.sub("\n", text))


def _link(label: str, href: str) -> str:
    """ "label URL", or the URL alone when the label is the URL; a link that is not a web or
    mail address (a relative path, an anchor) cannot be opened from WeChat: its label."""
    label = label.strip()
    if not href.lower().startswith(("http://", "https://", "mailto:")):
        return label
    shown = href[len("mailto:") :] if href.lower().startswith("mailto:") else href
    if not label or label in (href, shown) or label.rstrip("/") == shown.rstrip("/"):
        return shown + _LINK_END
    return f"{label} {shown}{_LINK_END}"
