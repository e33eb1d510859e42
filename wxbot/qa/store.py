"""Knowledge-base reads and writes with SQLAlchemy Core. Functions take a Connection inside
the caller's transaction and never commit.

Every write goes through ``versions.bump_version`` first: it updates the single ``kb_meta``
row, which both serialises knowledge writers (the row lock; SQLite's write lock) and tells
every process that its index is stale. The entries touched are logged in ``kb_changes`` under
that version. Because writers hold the version row until they commit, allocating entry ids as
MAX(id)+1 under it is safe, which lets bulk imports insert entries and questions with
executemany.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import Connection, case, func, or_, select, update

from wxbot.qa.models import CHUNK, KbEntry, KbQuestion, KbUnanswered
from wxbot.qa.text import question_key
from wxbot.qa.versions import read_version

entries = KbEntry.__table__
questions = KbQuestion.__table__
unanswered = KbUnanswered.__table__

# The origin of a wording learned from did-you-mean picks (learning.py): an exact key of its
# entry, left out of the ranking (freshness.py).
LEARNED = "learned"


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


# -- hits --------------------------------------------------------------------------------------


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
