"""Split long text answers into pages that fit one passive reply (served with 继续)."""

from __future__ import annotations

import re
import unicodedata

from wxbot.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_, translate

MORE_WORDS = frozenset({"继续", "more", "下一页", "next", "ต่อ", "tuloy", "次へ", "つづき"})

PAGE_FOOTER = N_("（第{index}/{total}页，回复「继续」看下一页）")
LAST_PAGE_FOOTER = N_("（第{index}/{total}页，完）")


def _suffix(index: int, total: int, language: str = DEFAULT_LANGUAGE) -> str:
    footer = PAGE_FOOTER if index < total else LAST_PAGE_FOOTER
    return "\n" + translate(footer, language, index=index, total=total)


def footed(body: str, index: int, total: int, language: str = DEFAULT_LANGUAGE) -> str:
    """Page ``index`` of ``total`` as the user sees it: its body and footer."""
    return body + _suffix(index, total, language)


# What a page must not end inside: a WeChat text link (<a href="...">...</a>), any other
# tag, a URL (a cut one no longer opens). The characters a page should rather end after.
_WHOLE = re.compile(
    r"<a\s[^<>]*>.*?</a>|<[^<>\n]{1,200}>|(?:https?|ftp)://[^\s<>\"'，。；！？、）」】]+",
    re.IGNORECASE | re.DOTALL,
)
_BREAK_AFTER = frozenset(" \t。！？；，、.!?;,")
_ZWJ = "\u200d"


def _is_regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _joins_previous(ch: str) -> bool:
    """A character drawn together with the one before it (emoji modifiers, accents)."""
    return (
        ch == _ZWJ
        or "\ufe00" <= ch <= "\ufe0f"  # variation selectors (❤️)
        or "\U0001f3fb" <= ch <= "\U0001f3ff"  # skin tones
        or "\U000e0000" <= ch <= "\U000e01ef"  # tags (subdivision flags), selectors
        or ch == "\u20e3"  # keycap
        or unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me")
    )


def _inside_cluster(text: str, cut: int) -> bool:
    """Whether cutting before text[cut] splits what a reader sees as one character."""
    if cut <= 0 or cut >= len(text):
        return False
    ch, before = text[cut], text[cut - 1]
    if before == _ZWJ or _joins_previous(ch):
        return True
    if _is_regional(ch) and _is_regional(before):  # a flag is a pair of regional indicators
        run = 0
        while cut - run - 1 >= 0 and _is_regional(text[cut - run - 1]):
            run += 1
        return run % 2 == 1
    return False


def _page_end(rest: str, cut: int) -> int:
    """Where the page ending near ``cut`` (the most that fits) should end: after the last
    line break in its second half, else after a space or punctuation mark; never inside a
    link, a tag, a URL or an emoji sequence (unless one alone is longer than a page)."""
    newline = rest.rfind("\n", cut // 2, cut)
    if newline > 0:
        cut = newline + 1
    else:
        for i in range(cut - 1, cut // 2 - 1, -1):
            if rest[i] in _BREAK_AFTER:
                cut = i + 1
                break
    for match in _WHOLE.finditer(rest):
        if match.start() >= cut:
            break
        if match.start() > 0 and match.end() > cut:
            cut = match.start()
            break
    while cut > 1 and _inside_cluster(rest, cut):
        cut -= 1
    return cut


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def paginate(text: str, max_bytes: int, language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Pages of at most ``max_bytes`` UTF-8 bytes each, footers included (see page_bodies)."""
    bodies = page_bodies(text, max_bytes)
    if len(bodies) == 1:
        return bodies
    return [footed(body, i, len(bodies), language) for i, body in enumerate(bodies, 1)]


def _footer_room() -> int:
    """The bytes the longest footer takes in any language: unread pages are footed in the
    language of the moment they are read, which 「语言 xx」 may change meanwhile."""
    return max(
        utf8_len(_suffix(index, 1000, language)) for language in LANGUAGES for index in (999, 1000)
    )


def page_bodies(text: str, max_bytes: int) -> list[str]:
    """``text`` whole if it fits ``max_bytes`` UTF-8 bytes, else the bodies of its pages,
    each leaving room for any language's footer.

    Splits on character boundaries (never inside a multi-byte character), preferring the
    last line break in the second half of a page so paragraphs stay whole, and never
    inside a link, a URL or an emoji (see _page_end).
    """
    if utf8_len(text) <= max_bytes:
        return [text]
    budget = max_bytes - _footer_room()
    if budget < 16:
        raise ValueError("reply_max_bytes is too small to page text")
    pages: list[str] = []
    rest = text
    while rest:
        if utf8_len(rest) <= budget:
            pages.append(rest)
            break
        # largest prefix whose encoding fits the budget
        cut, size = 0, 0
        for ch in rest:
            size += utf8_len(ch)
            if size > budget:
                break
            cut += 1
        cut = _page_end(rest, cut)
        pages.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:]
    return pages
