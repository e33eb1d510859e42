"""Batch import: validate every row first, then upsert in bulk in one transaction.

Knowledge files (see the formats package) and synonyms files (one group per line; a file
whose name contains "synonym" or whose first line is ``# wxbot synonyms``) may be mixed in
one import.

Nothing is written unless every row is good (or ``skip_bad``); ``dry_run`` plans and rolls
back. Rows are matched to existing entries by their normalised questions, so importing the
same file again changes nothing (all rows "unchanged"). An imported row whose question exists
updates that entry's answer and adds its other questions; entries are never deleted by an
import, and one never takes an entry past ``MAX_QUESTIONS`` questions (a row that would is
a bad row, reported with its file and line). Inserts use executemany in chunks (100k rows in
seconds, not minutes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from wxbot.qa import store, unanswered, versions
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.formats import (
    MISSING,
    RESTART,
    FormatError,
    Parsed,
    Record,
    decode_text,
    open_file,
    read_file,
)
from wxbot.qa.formats.encoding import head_text
from wxbot.qa.writer import (
    MAX_QUESTIONS,
    KnowledgeError,
    check_answer,
    check_language,
    checked_questions,
)

BATCH = 2_000
LOG_EACH_LIMIT = 2_000  # more changed entries than this: readers reload in full


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    written: bool = False
    synonyms_added: int = 0
    synonyms_unchanged: int = 0
    synonyms: list[list[str]] = field(default_factory=list)  # the groups read
    # (file, how it was read: "GB18030, tab-separated", "Excel workbook, sheet 'FAQ'" ...)
    read_as: list[tuple[str, str]] = field(default_factory=list)
    # What the plan was made from: a hash of the stored entries the rows touch. Given back
    # to a later import of the same rows (``basis=``), it refuses to write if they changed.
    basis: str = ""
    stale: bool = False  # refused: the entries changed since ``basis`` (nothing written)

    def summary(self) -> str:
        text = (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}"
        )
        if self.synonyms:
            text += (
                f"; synonym groups: added {self.synonyms_added}, "
                f"unchanged {self.synonyms_unchanged}"
            )
        return text


class ImportAborted(Exception):
    """Raised inside the transaction to roll it back (bad rows, or a dry run)."""


class BasisChanged(ImportAborted):
    """The entries the rows touch are not as they were when the import was checked."""


@dataclass(slots=True)  # one per row of the file: 200k rows, 200k of them
class _Row:
    file: str  # where the row is (not its Record: the rows read are not kept, see check_parsed)
    line: int
    questions: list[str]
    keys: list[str]
    answer: str
    language: object  # a code, None (any), or MISSING (keep the entry's)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def named_synonyms(path: str) -> bool:
    """A synonyms file by its name alone ("synonym" in it): told without reading it."""
    return "synonym" in os.path.basename(path).lower()


def is_synonyms_file(path: str) -> bool:
    if named_synonyms(path):
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False  # a pipe is read once, by its import: sniffing it would block or eat it
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return False
    return head_text(head).lower().startswith(synonym_store.HEADER)


def read_synonyms(path: str) -> tuple[list[list[str]], list[str], str]:
    """The groups of a synonyms file, its errors, and the encoding it was read in."""
    try:
        decoded = decode_text(read_file(path), path)
    except OSError as exc:
        return [], [f"{path}: cannot read ({exc.strerror})"], ""
    except FormatError as exc:
        return [], [str(exc)], ""
    groups, errors = synonym_store.parse_text(decoded.text, path)
    return [words for _, words in groups], errors, decoded.encoding


def read_files(
    paths: Sequence[str], fmt: str | None = None, synonyms: list[list[str]] | None = None
) -> tuple[list[_Row], list[str]]:
    """Parse and validate; duplicates across the whole import are errors too. Groups read
    from synonyms files are appended to ``synonyms`` when given."""
    files, errors = _parse_paths(paths, fmt, synonyms)
    rows, problems = check_parsed(files)
    return rows, errors + problems


def _parse_paths(
    paths: Sequence[str],
    fmt: str | None,
    synonyms: list[list[str]] | None,
    read_as: list[tuple[str, str]] | None = None,
) -> tuple[list[Parsed], list[str]]:
    """Knowledge files parsed; synonyms files read into ``synonyms`` (their errors returned,
    the encoding each was read in appended to ``read_as``)."""
    files: list[Parsed] = []
    errors: list[str] = []
    for path in paths:
        if fmt in (None, "synonyms") and (fmt == "synonyms" or is_synonyms_file(path)):
            groups, problems, encoding = read_synonyms(path)
            errors.extend(problems)
            if synonyms is not None:
                synonyms.extend(groups)
            if encoding and read_as is not None:
                read_as.append((path, f"{encoding} (synonym groups)"))
            continue
        files.append(open_file(path, fmt))  # read as it is checked
    return files, errors


def check_parsed(
    files: Sequence[Parsed], checked: Callable[[int], object] | None = None
) -> tuple[list[_Row], list[str]]:
    """Validate parsed files; duplicates across the whole import are errors too.
    ``checked(n)`` is told of every ``BATCH`` rows checked (the check is most of an import's
    time: 200k rows were 30 s of a progress bar standing at 0).

    A streamed file (formats.open_file) is read as its rows are checked, and each row read
    is let go of once checked: only the checked rows are kept. Its errors (which come before
    the rows' own, as the file's) are known once it is read to its end; when it is read
    again from its start (RESTART: its encoding proved other than its start said) or
    refused as a whole, the rows checked from it so far are forgotten."""
    rows: list[_Row] = []
    count = 0
    errors: list[str] = []
    first_seen: dict[str, _Row] = {}  # question key -> the row it was first seen in
    for parsed in files:
        mark = len(rows)  # this file's rows start here
        found = 0  # its records
        bad: list[str] = []  # its rows' errors
        for rec in parsed.entries():
            if rec is RESTART:
                for row in rows[mark:]:
                    for key in row.keys:
                        del first_seen[key]
                del rows[mark:]
                found = 0
                bad.clear()
                continue
            assert isinstance(rec, Record)
            found += 1
            count += 1
            if checked is not None and count % BATCH == 0:
                checked(BATCH)
            try:
                keyed = checked_questions(rec.questions)  # each key computed once
                answer = check_answer(rec.answer)
                language = rec.language
                if language is not MISSING:
                    language = check_language(language)
            except KnowledgeError as exc:
                bad.append(f"{rec.where}: {exc.reason}")
                continue
            clash = next((k for k in keyed if k in first_seen), None)
            if clash is not None:
                q = keyed[clash]
                where = first_seen[clash].where
                bad.append(f"{rec.where}: the question {q!r} is already at {where}")
                continue
            row = _Row(rec.file, rec.line, list(keyed.values()), list(keyed), answer, language)
            first_seen.update(dict.fromkeys(keyed, row))
            rows.append(row)
        errors.extend(parsed.errors)
        if not found and not parsed.errors:
            # a header and nothing under it, only comments: "imported: added 0", exit 0,
            # as if the file had been read (an empty file is refused the same way)
            errors.append(f"{parsed.name}: no entries in the file (only a header or comments)")
        errors.extend(bad)
    if checked is not None and count % BATCH:
        checked(count % BATCH)
    return rows, errors


def import_files(
    engine: Engine,
    paths: Sequence[str],
    *,
    now: float,
    skip_bad: bool = False,
    dry_run: bool = False,
    fmt: str | None = None,
    progress: Callable[[int, str], object] | None = None,
    planned: Callable[[int], object] | None = None,
    checked: Callable[[int], object] | None = None,
) -> ImportReport:
    groups: list[list[str]] = []
    read_as: list[tuple[str, str]] = []
    files, errors = _parse_paths(paths, fmt, groups, read_as)
    return import_parsed(
        engine,
        files,
        now=now,
        skip_bad=skip_bad,
        dry_run=dry_run,
        progress=progress,
        planned=planned,
        checked=checked,
        synonyms=groups,
        errors=errors,
        read_as=read_as,
    )


def import_parsed(
    engine: Engine,
    files: Sequence[Parsed],
    *,
    now: float,
    skip_bad: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, str], object] | None = None,
    planned: Callable[[int], object] | None = None,
    synonyms: Sequence[list[str]] = (),
    errors: Sequence[str] = (),
    read_as: Sequence[tuple[str, str]] = (),
    basis: str | None = None,
    checked: Callable[[int], object] | None = None,
) -> ImportReport:
    """Import already parsed files (``import_files`` reads them from paths; the web console
    from an upload) and synonym groups. ``planned(n)`` is told how many rows will be written
    before the writes start, ``progress(n, what)`` after each batch of them, ``checked(n)``
    as the rows are checked, before that (see check_parsed); ``errors`` are
    problems found before parsing (unreadable synonyms files), ``read_as`` how the synonyms
    files were read (the report adds the knowledge files'). ``basis``: the report's basis
    of an earlier check of the same rows; if the entries they touch changed since, nothing
    is written and the report (``stale``) says what the import would do now."""
    groups = list(synonyms)
    rows, problems = check_parsed(files, checked)
    errors = [*errors, *problems]
    report = ImportReport(errors=errors, rejected=len(errors), synonyms=groups)
    report.read_as = [*read_as, *((p.name, p.read_as) for p in files if p.read_as)]
    if errors and not skip_bad:
        return report
    try:
        with engine.begin() as conn:
            if groups:
                report.synonyms_added, report.synonyms_unchanged = synonym_store.import_groups(
                    conn, groups, now=now
                )
            if rows:
                _upsert(conn, rows, report, now, progress, planned, basis)
            if report.errors and not skip_bad:
                raise ImportAborted
            if dry_run:
                raise ImportAborted
            report.written = True
            if not (report.added or report.updated or report.synonyms_added):
                raise ImportAborted  # nothing changed: no new version for every process
    except ImportAborted:
        pass
    return report


@dataclass(slots=True)
class _Update:
    """A row that changes a stored entry, as planned."""

    index: int  # the row's place in the import (updates are written in the rows' order)
    row: _Row
    entry_id: int
    language: object
    adds: list[tuple[str, str]]  # (question, key) the entry does not have yet
    first: int  # the position of the first of them


def _upsert(
    conn: Connection,
    rows: list[_Row],
    report: ImportReport,
    now: float,
    progress: Callable[[int, str], object] | None,
    planned: Callable[[int], object] | None = None,
    basis: str | None = None,
) -> None:
    """Plan every row against the stored entries (read ``BATCH`` entries at a time), then
    write. The database rows are built a batch at a time as they are written: all of them
    at once (200k entries, 500k questions as dicts) were most of a large import's memory.
    All in the caller's transaction: a refusal anywhere leaves nothing written."""
    version = versions.bump_version(conn, now)  # the knowledge write lock
    owners_by_key = store.entry_ids_by_keys(conn, (k for r in rows for k in r.keys))
    refused: list[tuple[int, str]] = []  # (row index, reason): reported in the rows' order
    targets: list[int] = []  # per row: the entry it updates, 0 a new entry, -1 refused
    for i, row in enumerate(rows):
        owners = {owners_by_key[k] for k in row.keys if k in owners_by_key}
        if len(owners) > 1:
            ids = ", ".join(str(e) for e in sorted(owners))
            refused.append((i, f"{row.where}: its questions belong to different entries ({ids})"))
            targets.append(-1)
            continue
        targets.append(owners.pop() if owners else 0)
    digest = _basis_digest(owners_by_key)
    # The rows that update entries, grouped by entry (in the rows' order within one), are
    # planned as their entries are read, in order of id.
    order = sorted((i for i, t in enumerate(targets) if t > 0), key=targets.__getitem__)
    entry_ids = sorted(set(owners_by_key.values()))
    updates: list[_Update] = []
    at = 0
    for start in range(0, len(entry_ids), BATCH):
        chunk = entry_ids[start : start + BATCH]
        current = store.load_entries(conn, chunk)
        languages = store.load_languages(conn, current)
        _basis_update(digest, current, languages)
        sizes = {e: len(qs) for e, (_, qs) in current.items()}  # with the rows planned so far
        while at < len(order) and targets[order[at]] <= chunk[-1]:
            i = order[at]
            at += 1
            row = rows[i]
            entry_id = targets[i]
            answer, _ = current[entry_id]
            stored_language = languages.get(entry_id)
            language = stored_language if row.language is MISSING else row.language
            # A stored question key belongs to the entry that holds the question (qkey is
            # unique): the keys of this row's entry are those found, the rest are new to it.
            adds = [(q, k) for q, k in zip(row.questions, row.keys, strict=True)]
            adds = [(q, k) for q, k in adds if k not in owners_by_key]
            if adds and sizes[entry_id] + len(adds) > MAX_QUESTIONS:
                refused.append(
                    (
                        i,
                        f"{row.where}: entry {entry_id} has {sizes[entry_id]} questions; "
                        f"adding {len(adds)} would pass the limit of {MAX_QUESTIONS} per entry",
                    )
                )
                continue
            if answer == row.answer and not adds and language == stored_language:
                report.unchanged += 1
                continue
            updates.append(_Update(i, row, entry_id, language, adds, sizes[entry_id]))
            sizes[entry_id] += len(adds)
        del current, languages, sizes
    report.basis = digest.hexdigest()[:24]
    refused.sort(key=lambda item: item[0])
    report.errors.extend(reason for _, reason in refused)
    report.rejected += len(refused)
    updates.sort(key=lambda u: u.index)
    new_rows = [row for row, target in zip(rows, targets, strict=True) if target == 0]
    del targets, order, entry_ids, owners_by_key
    report.added = len(new_rows)
    report.updated = len(updates)
    first_id = int(conn.execute(select(func.max(store.entries.c.id))).scalar() or 0) + 1
    if basis is not None and basis != report.basis:
        report.stale = True  # the counts above say what it would do now
        raise BasisChanged
    questions = sum(len(u.adds) for u in updates) + sum(len(r.keys) for r in new_rows)
    if planned is not None:
        planned(len(new_rows) + questions + len(updates))
    source_refs: dict[str, str] = {}

    def source_ref(path: str) -> str:
        if path not in source_refs:
            source_refs[path] = os.path.basename(path)[:255]
        return source_refs[path]

    entry_rows = (
        {
            "id": first_id + offset,
            "answer": row.answer,
            "source": "import",
            "source_ref": source_ref(row.file),
            "taught_by": None,
            "created_at": now,
            "updated_at": now,
            "hits": 0,
            "language": None if row.language is MISSING else row.language,
        }
        for offset, row in enumerate(new_rows)
    )
    # the questions added to stored entries, then those of the new entries
    extra_questions = (
        {"entry_id": u.entry_id, "question": q, "qkey": k, "position": u.first + i}
        for u in updates
        for i, (q, k) in enumerate(u.adds)
    )
    new_questions = (
        {"entry_id": first_id + offset, "question": q, "qkey": k, "position": i}
        for offset, row in enumerate(new_rows)
        for i, (q, k) in enumerate(zip(row.questions, row.keys, strict=True))
    )

    def forget(chunk: list[dict[str, object]]) -> None:
        unanswered.forget_unanswered(conn, [r["qkey"] for r in chunk])  # type: ignore[misc]

    _executemany(conn, insert(store.entries), entry_rows, "entries", progress)
    question_rows = itertools.chain(extra_questions, new_questions)
    _executemany(conn, insert(store.questions), question_rows, "questions", progress, forget)
    stmt = (
        update(store.entries)
        .where(store.entries.c.id == bindparam("eid"))
        .values(answer=bindparam("answer"), updated_at=bindparam("now"), language=bindparam("lang"))
    )
    update_rows = (
        {"eid": u.entry_id, "answer": u.row.answer, "now": now, "lang": u.language} for u in updates
    )
    _executemany(conn, stmt, update_rows, "updates", progress)
    if new_rows or updates:
        many = len(new_rows) + len(updates) > LOG_EACH_LIMIT
        touched = [first_id + offset for offset in range(len(new_rows))]
        touched += [u.entry_id for u in updates]
        versions.log_changes(conn, version, None if many else touched, now)


def _basis_digest(owners: dict[str, int]) -> hashlib._Hash:
    """A hash of what the plan rests on: which of the rows' questions exist and whose, and
    (_basis_update, in order of id) the answer, questions and language of those entries."""
    digest = hashlib.sha256()
    for key in sorted(owners):
        digest.update(f"{key}\x00{owners[key]}\x01".encode())
    return digest


def _basis_update(
    digest: hashlib._Hash, current: dict[int, tuple[str, list[str]]], languages: dict[int, str]
) -> None:
    for entry_id in sorted(current):
        answer, questions = current[entry_id]
        item = [entry_id, answer, questions, languages.get(entry_id)]
        digest.update(json.dumps(item, ensure_ascii=False).encode() + b"\x02")


def _executemany(
    conn: Connection,
    stmt: object,
    rows: Iterable[dict[str, object]],
    what: str,
    progress: Callable[[int, str], object] | None,
    after: Callable[[list[dict[str, object]]], object] | None = None,
) -> None:
    """``rows`` written ``BATCH`` at a time (built as they are taken); ``after(chunk)`` once
    each is written."""
    rows = iter(rows)
    while chunk := list(itertools.islice(rows, BATCH)):
        conn.execute(stmt, chunk)  # type: ignore[call-overload]
        if after is not None:
            after(chunk)
        if progress is not None:
            progress(len(chunk), what)
