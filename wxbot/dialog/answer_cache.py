"""A per-process memo of knowledge-base lookups, keyed by (question text, knowledge version).

Most messages a bot gets are the same few questions; matching one (segmenting it, scoring
the index) costs more CPU than the rest of its message path. A lookup's result depends only
on the text and the knowledge it was matched against, and every change to the knowledge
bumps its version (read with the user's lock on every message), so a result cached under
the version it was computed at can never be served after a change. Bounded LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MAX_ENTRIES = 4096
MAX_TEXT = 200  # characters; longer texts are rarely asked twice


def cache_lookups(kb: Any, max_entries: int = MAX_ENTRIES) -> Any:
    """Wrap ``kb.lookup(text)`` on the instance with the memo (needs ``kb.version``).
    Returns ``kb``."""
    lookup = getattr(kb, "lookup", None)
    if lookup is None or not hasattr(kb, "version"):
        return kb
    memo: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
    lock = threading.Lock()

    def cached(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != 1 or not isinstance(args[0], str) or len(args[0]) > MAX_TEXT:
            return lookup(*args, **kwargs)
        # the thresholds too: they are plain attributes that may be tuned at run time
        key = (args[0].strip(), kb.version, getattr(kb, "confident", 0), getattr(kb, "suggest", 0))
        with lock:
            found = memo.get(key)
            if found is not None:
                memo.move_to_end(key)
                return found
        found = lookup(*args)
        if kb.version == key[1]:  # the index did not move under the lookup
            with lock:
                memo[key] = found
                while len(memo) > max_entries:
                    memo.popitem(last=False)
        return found

    kb.lookup = cached
    return kb
