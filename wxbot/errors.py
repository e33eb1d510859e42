"""An exception and the exceptions it wraps, walked once each (shared by the layers)."""

from __future__ import annotations

from collections.abc import Iterator


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then every exception it wraps: its cause, its context, a ``reason`` (urllib3's
    errors) and exceptions among its ``args`` (requests' errors wrap urllib3's there), each
    once, however they refer to each other."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        one = todo.pop()
        if id(one) in seen:
            continue
        seen.add(id(one))
        yield one
        wrapped = (one.__cause__, one.__context__, getattr(one, "reason", None), *one.args)
        todo.extend(w for w in wrapped if isinstance(w, BaseException))
