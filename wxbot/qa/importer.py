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
import json
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from wxbot.qa import store, unanswered, versions
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.formats import (
    MISSING,
    FormatError,
    Parsed,
    Record,
    decode_text,
    parse_file,
    read_file,
)
from wxbot.qa.formats.encoding import head_text
from wxbot.qa.text import question_key
from wxbot.qa.writer import (
    MAX_QUESTIONS,
    KnowledgeError,
    check_answer,
    check_language,
    check_questions,
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


@dataclass
class _Row:
    record: Record
    questions: list[str]
    keys: list[str]
    answer: str
    language: object  # a code, None (any), or MISSING (keep the entry's)


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
        files.append(parse_file(path, fmt))
    return files, errors


def check_parsed(
    files: Sequence[Parsed], checked: Callable[[int], object] | None = None
) -> tuple[list[_Row], list[str]]:
    """Validate parsed files; duplicates across the whole import are errors too.
    ``checked(n)`` is told of every ``BATCH`` rows checked (the check is most of an import's
    time: 200k rows were 30 s of a progress bar standing at 0)."""
    rows: list[_Row] = []
    count = 0
    errors: list[str] = []
    first_seen: dict[str, str] = {}
    for parsed in files:
        errors.extend(parsed.errors)
        if not parsed.records and not parsed.errors:
            # a header and nothing under it, only comments: "imported: added 0", exit 0,
            # as if the file had been read (an empty file is refused the same way)
            errors.append(f"{parsed.name}: no entries in the file (only a header or comments)")
        for rec in parsed.records:
            count += 1
            if checked is not None and count % BATCH == 0:
                checked(BATCH)
            try:
                qs = check_questions(rec.questions)
                answer = check_answer(rec.answer)
                language = rec.language
                if language is not MISSING:
                    language = check_language(language)
            except KnowledgeError as exc:
                errors.append(f"{rec.where}: {exc.reason}")
                continue
            keys = [question_key(q) for q in qs]
            clash = next((k for k in keys if k in first_seen), None)
            if clash is not None:
                q = qs[keys.index(clash)]
                errors.append(f"{rec.where}: the question {q!r} is already at {first_seen[clash]}")
                continue
            first_seen.update(dict.fromkeys(keys, rec.where))
            rows.append(_Row(rec, qs, keys, answer, language))
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


def _upsert(
    conn: Connection,
    rows: list[_Row],
    report: ImportReport,
    now: float,
    progress: Callable[[int, str], object] | None,
    planned: Callable[[int], object] | None = None,
    basis: str | None = None,
) -> None:
    version = versions.bump_version(conn, now)  # the knowledge write lock
    owners_by_key = store.entry_ids_by_keys(conn, [k for r in rows for k in r.keys])
    current = store.load_entries(conn, set(owners_by_key.values()))
    languages = store.load_languages(conn, current)
    report.basis = _basis(owners_by_key, current, languages)
    current_keys = {e: {question_key(q) for q in qs} for e, (_, qs) in current.items()}
    sizes = {e: len(qs) for e, (_, qs) in current.items()}  # with the rows planned so far
    new_rows: list[_Row] = []
    updates: list[dict[str, object]] = []
    extra_questions: list[dict[str, object]] = []
    for row in rows:
        owners = {owners_by_key[k] for k in row.keys if k in owners_by_key}
        if len(owners) > 1:
            ids = ", ".join(str(e) for e in sorted(owners))
            report.errors.append(
                f"{row.record.where}: its questions belong to different entries ({ids})"
            )
            report.rejected += 1
            continue
        if not owners:
            new_rows.append(row)
            continue
        entry_id = owners.pop()
        answer, _ = current[entry_id]
        language = languages.get(entry_id) if row.language is MISSING else row.language
        missing = [(q, k) for q, k in zip(row.questions, row.keys, strict=True)]
        missing = [(q, k) for q, k in missing if k not in current_keys[entry_id]]
        if missing and sizes[entry_id] + len(missing) > MAX_QUESTIONS:
            report.errors.append(
                f"{row.record.where}: entry {entry_id} has {sizes[entry_id]} questions; "
                f"adding {len(missing)} would pass the limit of {MAX_QUESTIONS} per entry"
            )
            report.rejected += 1
            continue
        if answer == row.answer and not missing and language == languages.get(entry_id):
            report.unchanged += 1
            continue
        report.updated += 1
        updates.append({"eid": entry_id, "answer": row.answer, "now": now, "lang": language})
        extra_questions.extend(
            {"entry_id": entry_id, "question": q, "qkey": k, "position": sizes[entry_id] + i}
            for i, (q, k) in enumerate(missing)
        )
        sizes[entry_id] += len(missing)
    report.added = len(new_rows)
    first_id = int(conn.execute(select(func.max(store.entries.c.id))).scalar() or 0) + 1
    entry_rows: list[dict[str, object]] = []
    question_rows: list[dict[str, object]] = list(extra_questions)
    for offset, row in enumerate(new_rows):
        entry_id = first_id + offset
        entry_rows.append(
            {
                "id": entry_id,
                "answer": row.answer,
                "source": "import",
                "source_ref": os.path.basename(row.record.file)[:255],
                "taught_by": None,
                "created_at": now,
                "updated_at": now,
                "hits": 0,
                "language": None if row.language is MISSING else row.language,
            }
        )
        question_rows.extend(
            {"entry_id": entry_id, "question": q, "qkey": k, "position": i}
            for i, (q, k) in enumerate(zip(row.questions, row.keys, strict=True))
        )
    if basis is not None and basis != report.basis:
        report.stale = True  # the counts above say what it would do now
        raise BasisChanged
    if planned is not None:
        planned(len(entry_rows) + len(question_rows) + len(updates))
    _executemany(conn, insert(store.entries), entry_rows, "entries", progress)
    _executemany(conn, insert(store.questions), question_rows, "questions", progress)
    stmt = (
        update(store.entries)
        .where(store.entries.c.id == bindparam("eid"))
        .values(answer=bindparam("answer"), updated_at=bindparam("now"), language=bindparam("lang"))
    )
    _executemany(conn, stmt, updates, "updates", progress)
    unanswered.forget_unanswered(conn, [r["qkey"] for r in question_rows])  # type: ignore[misc]
    touched = [r["id"] for r in entry_rows] + [u["eid"] for u in updates]
    if touched:
        many = len(touched) > LOG_EACH_LIMIT
        versions.log_changes(conn, version, None if many else touched, now)  # type: ignore[arg-type]


def _basis(
    owners: dict[str, int], current: dict[int, tuple[str, list[str]]], languages: dict[int, str]
) -> str:
    """A hash of what the plan rests on: which of the rows' questions exist and whose, and
    the answer, questions and language of those entries."""
    digest = hashlib.sha256()
    for key in sorted(owners):
        digest.update(f"{key}\x00{owners[key]}\x01".encode())
    for entry_id in sorted(current):
        answer, questions = current[entry_id]
        item = [entry_id, answer, questions, languages.get(entry_id)]
        digest.update(json.dumps(item, ensure_ascii=False).encode() + b"\x02")
    return digest.hexdigest()[:24]


def _executemany(
    conn: Connection,
    stmt: object,
    rows: list[dict[str, object]],
    what: str,
    progress: Callable[[int, str], object] | None,
) -> None:
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        conn.execute(stmt, chunk)  # type: ignore[call-overload]
        if progress is not None:
            progress(len(chunk), what)
