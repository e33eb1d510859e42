"""Knowledge-base reads and writes with SQLAlchemy Core. Functions take a Connection inside
the caller's transaction and never commit.

Every write goes through ``bump_version`` first: it updates the single ``kb_meta`` row, which
both serialises knowledge writers (the row lock; SQLite's write lock) and tells every process
that its index is stale. The entries touched are logged in ``kb_changes`` under that version.
Because writers hold the version row until they commit, allocating entry ids as MAX(id)+1
under it is safe, which lets bulk imports insert entries and questions with executemany.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import is_mysql
from wxbot.qa.models import KbChange, KbEntry, KbMeta, KbQuestion, KbUnanswered
from wxbot.qa.text import question_key

entries = KbEntry.__table__
questions = KbQuestion.__table__
unanswered = KbUnanswered.__table__
meta = KbMeta.__table__
changes = KbChange.__table__

CHUNK = 500  # IN (...) lists and executemany batches
# The origin of a wording learned from did-you-mean picks (learning.py): an exact key of its
# entry, left out of the ranking (freshness.py).
LEARNED = "learned"
KEEP_VERSIONS = 10_000  # change-log rows older than this many versions are pruned

_VERSION = select(meta.c.version).where(meta.c.id == 1)


def content_version(*parts: object) -> str:
    """A short hash of what an admin edits (an entry's questions, answer and language; a
    synonym group's words): the edit page's version and the API's ETag. A hash rather than
    a column, so every writer (chat, import, learned wordings) changes it without knowing."""
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_version(questions: Sequence[str], answer: str, language: str | None) -> str:
    return content_version(list(questions), answer, language)


@dataclass
class EntryRow:
    id: int
    answer: str
    questions: list[str] = field(default_factory=list)
    source: str = ""
    source_ref: str | None = None
    taught_by: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    hits: int = 0
    language: str | None = None

    @property
    def version(self) -> str:
        """Changes whenever the questions (their order too), answer or language do."""
        return entry_version(self.questions, self.answer, self.language)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "questions": self.questions,
            "answer": self.answer,
            "source": self.source,
            "source_ref": self.source_ref,
            "taught_by": self.taught_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "hits": self.hits,
            "language": self.language,
        }


class IndexRow(NamedTuple):
    """An entry as the in-memory index holds it (``load_index_rows``)."""

    answer: str
    questions: list[str]  # ranked (words, characters, vectors), in position order
    learned: list[str]  # learned wordings: exact keys of the entry, not ranked


# -- version and change log ------------------------------------------------------------------


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


# -- reading entries ---------------------------------------------------------------------------


def load_entries(
    conn: Connection, entry_ids: Iterable[int] | None = None
) -> dict[int, tuple[str, list[str]]]:
    """entry id -> (answer, all its questions in position order)."""
    return {e: (r.answer, r.questions) for e, r in _load(conn, entry_ids, split=False).items()}


def load_index_rows(
    conn: Connection, entry_ids: Iterable[int] | None = None
) -> dict[int, IndexRow]:
    """entry id -> its answer, ranked questions and learned wordings, for the index."""
    return _load(conn, entry_ids, split=True)


def _load(conn: Connection, entry_ids: Iterable[int] | None, split: bool) -> dict[int, IndexRow]:
    """Entries and their questions (one query each per CHUNK entries); with ``split``, the
    learned wordings apart, unless an entry has no other question (then they are ranked too,
    or the entry could be found by those exact wordings alone)."""
    out: dict[int, IndexRow] = {}
    chunks: list[list[int] | None]
    if entry_ids is None:
        chunks = [None]
    else:
        ids = sorted(set(entry_ids))
        chunks = [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
    for chunk in chunks:
        ans = select(entries.c.id, entries.c.answer).order_by(entries.c.id)  # index order
        qs = select(questions.c.entry_id, questions.c.question, questions.c.origin).order_by(
            questions.c.entry_id, questions.c.position, questions.c.id
        )
        if chunk is not None:
            ans = ans.where(entries.c.id.in_(chunk))
            qs = qs.where(questions.c.entry_id.in_(chunk))
        for entry_id, answer in conn.execute(ans):
            out[entry_id] = IndexRow(answer, [], [])
        for entry_id, question, origin in conn.execute(qs):
            row = out.get(entry_id)
            if row is not None:
                (row.learned if split and origin == LEARNED else row.questions).append(question)
    if split:
        for row in out.values():
            if not row.questions:
                row.questions.extend(row.learned)
    return out


def load_languages(conn: Connection, entry_ids: Iterable[int] | None = None) -> dict[int, str]:
    """entry id -> language, for the entries that have one (most have none)."""
    stmt = select(entries.c.id, entries.c.language).where(entries.c.language.is_not(None))
    if entry_ids is None:
        return {e: lang for e, lang in conn.execute(stmt)}
    ids = sorted(set(entry_ids))
    out: dict[int, str] = {}
    for i in range(0, len(ids), CHUNK):
        out.update(
            {e: lang for e, lang in conn.execute(stmt.where(entries.c.id.in_(ids[i : i + CHUNK])))}
        )
    return out


def count_entries(conn: Connection) -> int:
    """How many entries the base has (deciding where a full re-index runs)."""
    return int(conn.execute(select(func.count()).select_from(entries)).scalar_one())


def main_questions(conn: Connection, entry_ids: list[int]) -> dict[int, str]:
    """The first question of each entry (for "did you mean"; not kept in memory)."""
    rows = conn.execute(
        select(questions.c.entry_id, questions.c.question)
        .where(questions.c.entry_id.in_(entry_ids))
        .order_by(questions.c.entry_id, questions.c.position.desc(), questions.c.id.desc())
    )
    return {e: q for e, q in rows}  # the last row per entry wins: position 0, lowest id


def get_entry(conn: Connection, entry_id: int) -> EntryRow | None:
    row = conn.execute(select(entries).where(entries.c.id == entry_id)).first()
    if row is None:
        return None
    found = _rows_to_entries(conn, [row])
    return found[0]


def _rows_to_entries(conn: Connection, rows: Sequence) -> list[EntryRow]:  # type: ignore[type-arg]
    result = [
        EntryRow(
            id=r.id,
            answer=r.answer,
            source=r.source,
            source_ref=r.source_ref,
            taught_by=r.taught_by,
            created_at=r.created_at,
            updated_at=r.updated_at,
            hits=r.hits,
            language=r.language,
        )
        for r in rows
    ]
    by_id = {e.id: e for e in result}
    if by_id:
        qs = conn.execute(
            select(questions.c.entry_id, questions.c.question)
            .where(questions.c.entry_id.in_(list(by_id)))
            .order_by(questions.c.entry_id, questions.c.position, questions.c.id)
        )
        for entry_id, question in qs:
            by_id[entry_id].questions.append(question)
    return result


def list_entries(
    conn: Connection, search: str = "", offset: int = 0, limit: int = 20
) -> tuple[int, list[EntryRow]]:
    """Entries newest first, optionally those whose answer or a question contains ``search``."""
    where = []
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        in_questions = select(questions.c.entry_id).where(
            questions.c.question.like(pattern, escape="\\")
        )
        where.append(
            or_(entries.c.answer.like(pattern, escape="\\"), entries.c.id.in_(in_questions))
        )
    total = conn.execute(select(func.count()).select_from(entries).where(*where)).scalar_one()
    rows = conn.execute(
        select(entries).where(*where).order_by(entries.c.id.desc()).offset(offset).limit(limit)
    ).all()
    return int(total), _rows_to_entries(conn, rows)


def entry_ids_by_keys(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """question key -> entry id, for the keys that exist."""
    found: dict[str, int] = {}
    keys = list(set(keys))
    for i in range(0, len(keys), CHUNK):
        rows = conn.execute(
            select(questions.c.qkey, questions.c.entry_id).where(
                questions.c.qkey.in_(keys[i : i + CHUNK])
            )
        )
        found.update({k: e for k, e in rows})
    return found


def find_entry(conn: Connection, question: str) -> EntryRow | None:
    key = question_key(question)
    entry_id = entry_ids_by_keys(conn, [key]).get(key) if key else None
    return None if entry_id is None else get_entry(conn, entry_id)


def counts(conn: Connection) -> dict[str, int]:
    def n(table) -> int:  # type: ignore[no-untyped-def]
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    return {
        "entries": n(entries),
        "questions": n(questions),
        "unanswered": n(unanswered),
        "version": read_version(conn),
    }


# -- unanswered questions and hits -------------------------------------------------------------


def record_unanswered(conn: Connection, question: str, now: float) -> None:
    """Count a question nobody has answered yet (one upsert, whichever database)."""
    key = question_key(question)
    if not key:
        return
    values = {
        "qkey": key,
        "question": question[:500],
        "count": 1,
        "first_asked_at": now,
        "last_asked_at": now,
    }
    if is_mysql(conn):
        stmt = mysql_insert(unanswered).values(**values)
        stmt = stmt.on_duplicate_key_update(count=unanswered.c.count + 1, last_asked_at=now)
    else:
        stmt = sqlite_insert(unanswered).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["qkey"],
            set_={"count": unanswered.c.count + 1, "last_asked_at": now},
        )
    conn.execute(stmt)


def forget_unanswered(conn: Connection, keys: Iterable[str]) -> None:
    keys = list(set(keys))
    for i in range(0, len(keys), CHUNK):
        conn.execute(delete(unanswered).where(unanswered.c.qkey.in_(keys[i : i + CHUNK])))


def _unanswered_dict(r: Any) -> dict[str, object]:
    return {
        "id": r.id,
        "question": r.question,
        "count": r.count,
        "first_asked_at": r.first_asked_at,
        "last_asked_at": r.last_asked_at,
    }


def list_unanswered(
    conn: Connection, offset: int = 0, limit: int = 20, newest_first: bool = False
) -> tuple[int, list[dict[str, object]]]:
    """Unanswered questions (each one counts its normalised duplicates), most asked first or
    most recently asked first."""
    total = conn.execute(select(func.count()).select_from(unanswered)).scalar_one()
    order = [unanswered.c.count.desc(), unanswered.c.last_asked_at.desc()]
    if newest_first:
        order.reverse()
    rows = conn.execute(
        select(unanswered).order_by(*order, unanswered.c.id.desc()).offset(offset).limit(limit)
    ).all()
    return int(total), [_unanswered_dict(r) for r in rows]


def count_unanswered(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(unanswered)).scalar_one())


def get_unanswered(conn: Connection, unanswered_id: int) -> dict[str, object] | None:
    row = conn.execute(select(unanswered).where(unanswered.c.id == unanswered_id)).first()
    return None if row is None else _unanswered_dict(row)


def delete_unanswered(conn: Connection, unanswered_id: int) -> bool:
    done = conn.execute(delete(unanswered).where(unanswered.c.id == unanswered_id))
    return done.rowcount > 0


def top_entries(conn: Connection, limit: int = 10) -> list[tuple[int, str, int]]:
    """(entry id, main question, hits) of the most answered entries."""
    rows = conn.execute(
        select(entries.c.id, entries.c.hits)
        .where(entries.c.hits > 0)
        .order_by(entries.c.hits.desc(), entries.c.id)
        .limit(limit)
    ).all()
    titles = main_questions(conn, [r.id for r in rows]) if rows else {}
    return [(r.id, titles.get(r.id, ""), int(r.hits)) for r in rows]


def add_hits(conn: Connection, hits: dict[int, int], now: float) -> None:
    """Add batched hit counts (entries deleted meanwhile simply match no row): one UPDATE
    per CHUNK entries, the counts in a CASE, rather than a statement (a round trip) each."""
    ids = sorted(hits)
    for i in range(0, len(ids), CHUNK):
        part = ids[i : i + CHUNK]
        added = case({e: hits[e] for e in part}, value=entries.c.id, else_=0)
        conn.execute(
            update(entries)
            .where(entries.c.id.in_(part))
            .values(hits=entries.c.hits + added, last_hit_at=now)
        )
