"""The knowledge version (the single ``kb_meta`` row) and its change log (``kb_changes``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from wxbot.qa.models import CHUNK, KbChange, KbMeta

meta = KbMeta.__table__
changes = KbChange.__table__

KEEP_VERSIONS = 10_000  # change-log rows older than this many versions are pruned

_VERSION = select(meta.c.version).where(meta.c.id == 1)


def version_subquery() -> Any:
    return select(meta.c.version).where(meta.c.id == 1).scalar_subquery()


def read_version(conn: Connection) -> int:
    """The knowledge version: the one read every request makes for freshness."""
    return int(conn.execute(_VERSION).scalar() or 0)


def bump_version(conn: Connection, now: float) -> int:
    """Take the knowledge write lock and return the new version number."""
    done = conn.execute(
        update(meta).where(meta.c.id == 1).values(version=meta.c.version + 1, updated_at=now)
    )
    if done.rowcount == 0:  # schema made without the migration's seed row
        conn.execute(insert(meta).values(id=1, version=1, updated_at=now))
    return read_version(conn)


def log_changes(
    conn: Connection, version: int, entry_ids: Iterable[int] | None, now: float
) -> None:
    """Record what a version touched; None = everything (readers reload in full)."""
    if entry_ids is None:
        rows = [{"version": version, "entry_id": None, "changed_at": now}]
    else:
        rows = [{"version": version, "entry_id": e, "changed_at": now} for e in set(entry_ids)]
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(changes), rows[i : i + CHUNK])
    if version % 500 == 0:  # now and then, forget what no live process can still need
        conn.execute(delete(changes).where(changes.c.version <= version - KEEP_VERSIONS))


def changed_since(conn: Connection, version: int, limit: int) -> set[int] | None:
    """Entries changed after ``version``; None when a full reload is cheaper or required
    (too many changes, an import too big to list, or a log pruned past ``version``)."""
    oldest = conn.execute(select(func.min(changes.c.version))).scalar()
    if oldest is None or oldest > version + 1:
        return None
    rows = conn.execute(
        select(changes.c.entry_id).where(changes.c.version > version).limit(limit + 1)
    ).all()
    ids = {r[0] for r in rows}
    if len(rows) > limit or None in ids:
        return None
    return ids
