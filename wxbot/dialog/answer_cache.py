"""A per-process memo of knowledge-base lookups, keyed by what a lookup's result depends on.

Most messages a bot gets are the same few questions; matching one (segmenting it, scoring
the index) costs more CPU than the rest of its message path. A lookup's result depends only
on its arguments (the text, how many suggestions, the user's language), the matcher's
thresholds and the knowledge it was matched against; every change to the knowledge (entries,
similar questions, synonyms, vectors) bumps its version, which is read with the user's lock
on every message, so a result cached under the version it was computed at can never be
served after a change. Bounded LRU.

With semantic retrieval (an embedding service) a result also depends on the service
answering in time (a slow one leaves the lexical matcher alone): such lookups are not cached.
"""

from __future__ import annotations

from typing import Any

from wxbot.memo import MISSING, Memo

MAX_ENTRIES = 4096
MAX_TEXT = 200  # characters; longer texts are rarely asked twice
# The matcher's tunables: plain attributes that may be changed at run time.
THRESHOLDS = ("confident", "suggest", "margin", "sure", "tie", "floor", "weights")


def cache_lookups(kb: Any, max_entries: int = MAX_ENTRIES) -> Any:
    """Wrap ``kb.lookup(text, suggestions=3, language=None)`` on the instance with the memo
    (needs ``kb.version``). Returns ``kb``."""
    lookup = getattr(kb, "lookup", None)
    if lookup is None or not hasattr(kb, "version"):
        return kb
    memo = Memo(max_entries)

    def cached(text: str, suggestions: int = 3, language: str | None = None) -> Any:
        if (
            not isinstance(text, str)
            or len(text) > MAX_TEXT
            or getattr(kb, "semantic", None) is not None
        ):
            return lookup(text, suggestions=suggestions, language=language)
        version = kb.version
        tunables = tuple(getattr(kb, name, None) for name in THRESHOLDS)
        key = (text.strip(), suggestions, language, version, tunables)
        found = memo.get(key)
        if found is not MISSING:
            return found
        found = lookup(text, suggestions=suggestions, language=language)
        if kb.version == version:  # the index did not move under the lookup
            memo.put(key, found)
        return found

    cached.memo = memo  # type: ignore[attr-defined]  # its size: tests, benchmarks/soak_memory.py
    kb.lookup = cached
    return kb
