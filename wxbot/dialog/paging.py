"""Split long text answers into pages that fit one passive reply (served with 继续)."""

from __future__ import annotations

from wxbot.i18n import DEFAULT_LANGUAGE, N_, translate

MORE_WORDS = frozenset({"继续", "more", "下一页", "next", "ต่อ", "tuloy", "次へ", "つづき"})

PAGE_FOOTER = N_("（第{index}/{total}页，回复「继续」看下一页）")
LAST_PAGE_FOOTER = N_("（第{index}/{total}页，完）")


def _suffix(index: int, total: int, language: str = DEFAULT_LANGUAGE) -> str:
    footer = PAGE_FOOTER if index < total else LAST_PAGE_FOOTER
    return "\n" + translate(footer, language, index=index, total=total)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def paginate(text: str, max_bytes: int, language: str = DEFAULT_LANGUAGE) -> list[str]:
    """Pages of at most ``max_bytes`` UTF-8 bytes each, including the page footer.

    Splits on character boundaries (never inside a multi-byte character), preferring the
    last line break in the second half of a page so paragraphs stay whole.
    """
    if utf8_len(text) <= max_bytes:
        return [text]
    budget = max_bytes - max(
        utf8_len(_suffix(999, 1000, language)), utf8_len(_suffix(999, 999, language))
    )
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
        newline = rest.rfind("\n", cut // 2, cut)
        if newline > 0:
            cut = newline + 1
        pages.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:]
    total = len(pages)
    return [page + _suffix(i, total, language) for i, page in enumerate(pages, 1)]
