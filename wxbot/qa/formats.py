r"""Knowledge file formats: parsing (with ``file:line: reason`` errors) and writing.

An entry has one answer, any number of questions (the first is the main one, the others its
similar questions, 相似问法) and optionally a language (zh, en, th, tl, ja; none = any).

- CSV: ``question,answer`` per row; more questions of the same answer separated by ``|`` in
  the question column. With a header row the columns are named: ``question`` (may repeat),
  ``answer``, ``similar`` (``|``-separated similar questions), ``language``; Chinese names
  (问题, 答案, 相似问法, 语言) work too.

  Escaping (against CSV/formula injection: a spreadsheet runs a cell that starts with ``=``,
  ``+``, ``-``, ``@``, a tab or a CR as a formula, and questions may be users' own words):

  * The writer puts a ``'`` in front of every value (main question, each similar question of
    the ``|``-separated ``similar`` cell, answer, language) that starts with ``=``, ``+``,
    ``-``, ``@``, a tab, a CR or ``'``. So no cell of an export starts with a formula
    character, and a spreadsheet shows such a cell as text.
  * The reader takes one ``'`` off every such value (each ``|``-separated question, the
    answer, the language) that starts with ``'`` followed by one of those characters
    (``'`` included): ``'=1+1`` reads ``=1+1``, ``''x`` reads ``'x``. A value starting with
    ``'`` and then anything else (``'abc``) is read as it is, and so is every value without
    a leading ``'``: hand-written files mean what they did. The one change: a hand-written
    value that really starts with ``'=`` (``'-``, ``''`` ...) loses its first ``'``; write
    it ``''=`` to keep it.
  * Only the start of a value counts; a ``'`` or ``=`` further in is never touched.

- JSON Lines: one object per line, ``{"question": "...", "answer": "..."}`` or
  ``{"questions": ["...", "..."], "answer": "..."}``, optionally ``"similar": [...]`` and
  ``"language": "en"``.
- Text: blocks of one or more ``Q:`` lines, optionally an ``L: en`` line, then an ``A:`` line;
  the answer continues on the following lines until the next ``Q:``. ``#`` starts a comment
  line; full-width colons and ``问:``/``语言:``/``答:`` work too; markers and ``#`` count only
  at the start of a line.

  Escaping (what the writer does so that any answer reads back exactly):

  * An answer line (after the first) that starts with ``Q:`` or ``#``, after any spaces, is
    written with one more space in front; the reader takes one space off such a line (one
    that starts with a space, then any spaces, then ``Q:``/``问:`` or ``#``). Other lines,
    and other leading whitespace, are read as they are.
  * An answer's line breaks (LF) are the file's. An answer holding a carriage return (CR:
    typed in a Windows text box, or from a CSV cell) is written after ``A\:`` (``答\:``)
    instead of ``A:``: in such an answer ``\r`` stands for a CR and ``\\`` for a backslash
    (any other backslash is itself). Older readers refuse an ``A\:`` block rather than
    misread it; in ``A:`` answers a backslash is never special.

All UTF-8, with or without a BOM. The format comes from the extension (.csv, .jsonl/.json,
.txt/.md) unless given.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection

FORMATS = ("csv", "jsonl", "txt")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".md": "txt"}
_COLUMNS = {
    "question": "question",
    "questions": "question",
    "问题": "question",
    "answer": "answer",
    "答案": "answer",
    "similar": "similar",
    "相似问法": "similar",
    "相似问题": "similar",
    "language": "language",
    "语言": "language",
}
_L_RE = re.compile(r"^(?:l|语言)\s*[:：]\s?(.*)$", re.IGNORECASE)
# Files are cut into lines at CR/LF only: str.splitlines() also cuts at U+2028, U+0085 ...,
# which json.dumps leaves raw inside strings, so an exported answer would not read back.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _Missing:
    """The file says nothing about an entry's language (an update keeps the entry's)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()
# Markers count only at the very start of a line: an indented "Q:" is answer text.
_Q_RE = re.compile(r"^(?:q|问)\s*[:：]\s?(.*)$", re.IGNORECASE)
_A_RE = re.compile(r"^(?:a|答)\s*(\\?)[:：]\s?(.*)$", re.IGNORECASE)  # "A\:": escaped (CRs)
# An answer line that would read as a question or a comment, after any spaces: the writer
# indents it by one more space, the reader takes that space off (no "^": matched from pos 1).
_SHIFTED = re.compile(r" *(?:#|(?:q|问)\s*[:：])", re.IGNORECASE)
_UNESCAPE = re.compile(r"\\([\\r])")
# CSV injection (OWASP): a spreadsheet opening an export runs a cell that starts with one of
# these as a formula, and questions are partly users' own wordings (learning.py).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The writer puts a "'" before a value starting with one of these, the "'" itself included so
# that the reader's undoing it is unambiguous (see the module docstring).
_CSV_ESCAPED = (*_FORMULA_START, "'")


class FormatError(ValueError):
    pass


@dataclass
class Record:
    """One entry read from a file, not yet validated."""

    questions: list[object]
    answer: object
    file: str
    line: int
    language: object = MISSING  # MISSING: not given (an update keeps the entry's)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Parsed:
    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: reason"


def detect_format(path: str, given: str | None = None) -> str:
    if given:
        if given not in FORMATS:
            raise FormatError(f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise FormatError(
            f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
            "use .csv, .jsonl or .txt (or --format)"
        )
    return _EXTENSIONS[ext]


def decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormatError(
            f"{name}:{line}: not UTF-8 (byte {exc.start}); save the file as UTF-8"
        ) from None


def parse(text: str, name: str, fmt: str) -> Parsed:
    return {"csv": _parse_csv, "jsonl": _parse_jsonl, "txt": _parse_txt}[fmt](text, name)


def _header(row: list[str]) -> list[str] | None:
    """Column roles of a header row, or None if the row is data."""
    roles = [_COLUMNS.get(c.strip().lower()) for c in row]
    if None in roles or "question" not in roles or roles.count("answer") != 1:
        return None
    return roles  # type: ignore[return-value]


def _parse_csv(text: str, name: str) -> Parsed:
    out = Parsed()
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    roles: list[str] | None = None
    first = True
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue
            if first:
                first = False
                roles = _header(row)
                if roles is not None:
                    continue
            if roles is None:
                if len(row) != 2:
                    out.errors.append(
                        f"{name}:{line}: expected 2 columns (question,answer), found {len(row)}"
                        + ("; quote answers that contain commas" if len(row) > 2 else "")
                    )
                    continue
                questions = [_csv_unescape(q) for q in row[0].split("|")]
                out.records.append(Record(questions, _csv_unescape(row[1]), name, line))
                continue
            while len(row) > len(roles) and not row[-1].strip():
                row = row[:-1]
            short = {"question", "answer"} & set(roles[len(row) :])  # optional ones may go
            if len(row) > len(roles) or short:
                out.errors.append(
                    f"{name}:{line}: expected {len(roles)} columns ({','.join(roles)}), "
                    f"found {len(row)}"
                    + ("; quote answers that contain commas" if len(row) > len(roles) else "")
                )
                continue
            row = row + [""] * (len(roles) - len(row))
            questions: list[object] = []
            language: object = MISSING
            answer = ""
            for role, cell in zip(roles, row, strict=True):
                if role == "question":
                    pieces = [_csv_unescape(q) for q in cell.split("|")]
                    if "|".join(pieces).strip():  # (the cell itself, when nothing was escaped)
                        questions.extend(pieces)
                elif role == "similar":
                    pieces = [_csv_unescape(q) for q in cell.split("|")]
                    questions.extend(q for q in pieces if q.strip())
                elif role == "language":
                    language = _csv_unescape(cell).strip() or None
                elif role == "answer":
                    answer = _csv_unescape(cell)
            out.records.append(Record(questions, answer, name, line, language))
    except csv.Error as exc:
        out.errors.append(f"{name}:{reader.line_num}: broken CSV ({exc})")
    return out


def _csv_escape(value: str) -> str:
    """``value`` as the CSV writer writes it: never starting with a formula character."""
    return "'" + value if value.startswith(_CSV_ESCAPED) else value


def _csv_unescape(value: str) -> str:
    """A value the writer escaped, as it was; one the writer could not have written that way
    (a "'" followed by anything else, e.g. 'abc) is left as it is."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_CSV_ESCAPED) else value


def _parse_jsonl(text: str, name: str) -> Parsed:
    out = Parsed()
    for number, raw in enumerate(split_lines(text), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.errors.append(f"{name}:{number}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            out.errors.append(f"{name}:{number}: invalid JSON (nested too deeply)")
            continue
        if not isinstance(obj, dict):
            out.errors.append(f"{name}:{number}: expected a JSON object")
            continue
        unknown = set(obj) - {"question", "questions", "similar", "answer", "language", "id"}
        if unknown:
            out.errors.append(f"{name}:{number}: unknown field(s) {', '.join(sorted(unknown))}")
            continue
        if ("question" in obj) == ("questions" in obj):
            out.errors.append(f'{name}:{number}: give exactly one of "question" or "questions"')
            continue
        if "answer" not in obj:
            out.errors.append(f'{name}:{number}: missing "answer"')
            continue
        qs = obj["questions"] if "questions" in obj else [obj["question"]]
        similar = obj.get("similar", [])
        if not isinstance(qs, list) or not isinstance(similar, list):
            out.errors.append(f'{name}:{number}: "questions" must be a list of strings')
            continue
        language = obj.get("language", MISSING)
        out.records.append(Record([*qs, *similar], obj["answer"], name, number, language))
    return out


def _parse_txt(text: str, name: str) -> Parsed:
    out = Parsed()
    questions: list[object] = []
    answer: list[str] | None = None
    escaped = False
    language: object = MISSING
    start = 0

    def finish() -> None:
        nonlocal questions, answer, language
        if questions and answer is None:
            out.errors.append(f"{name}:{start}: question(s) without an A: line")
        elif questions and answer is not None:
            text = "\n".join(answer).strip()
            if escaped:
                text = _UNESCAPE.sub(lambda m: "\r" if m.group(1) == "r" else "\\", text)
            out.records.append(Record(questions, text, name, start, language))
        questions, answer, language = [], None, MISSING

    for number, raw in enumerate(split_lines(text), 1):
        if raw.startswith("#"):
            continue
        q = _Q_RE.match(raw)
        if q:
            if answer is not None:
                finish()
            if not questions:
                start = number
            questions.append(q.group(1))
            continue
        lang = _L_RE.match(raw) if questions and answer is None else None
        if lang:
            language = lang.group(1).strip() or None
            continue
        a = _A_RE.match(raw)
        if a and answer is None:
            if not questions:
                out.errors.append(f"{name}:{number}: A: line without a Q: line before it")
                continue
            answer, escaped = [a.group(2)], bool(a.group(1))
            continue
        if answer is not None:
            if raw.startswith(" ") and _SHIFTED.match(raw, 1):
                raw = raw[1:]  # indented by the writer: not a question or a comment
            answer.append(raw)  # the answer goes on until the next Q:
        elif raw.strip():
            where = "between Q: and A:" if questions else "outside a Q:/A: block"
            out.errors.append(f"{name}:{number}: unexpected text {where}: {raw.strip()[:40]!r}")
    finish()
    return out


def split_lines(text: str) -> list[str]:
    """``text`` cut into lines at LF, CRLF and CR only (see _LINE_BREAK); also used by the
    synonyms reader, whose lines may hold the other characters str.splitlines() cuts at."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the break that ends the last line starts no new one
    return lines


def parse_file(path: str, fmt: str | None = None) -> Parsed:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return Parsed(errors=[f"{path}: cannot read ({exc.strerror})"])
    return parse_bytes(data, path, fmt)


def parse_bytes(data: bytes, name: str, fmt: str | None = None) -> Parsed:
    """Parse a file's content (an upload); ``name`` gives the format and the error prefix."""
    try:
        return parse(decode(data, name), name, detect_format(name, fmt))
    except FormatError as exc:
        return Parsed(errors=[str(exc)])


# -- writing -------------------------------------------------------------------------------------


@dataclass
class Item:
    """One entry to write."""

    questions: list[str]
    answer: str
    language: str | None = None


def export_items(conn: Connection) -> list[Item]:
    """Every entry of the knowledge base as an Item, oldest first (what an export writes)."""
    from wxbot.qa import store

    entries = store.load_entries(conn)
    languages = store.load_languages(conn)
    return [
        Item(qs, answer, languages.get(entry_id))
        for entry_id, (answer, qs) in sorted(entries.items())
        if qs
    ]


def write(items: Iterable[Item], fmt: str, out: io.TextIOBase) -> int:
    """Write entries in ``fmt``; returns the number written. Reads back to the same entries."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        # QUOTE_MINIMAL quotes only the line terminator's characters: a cell with a lone CR
        # would be cut in two on reading, so rows holding one are quoted in full.
        quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(["question", "answer", "similar", "language"])
        for it in items:
            qs = [q.replace("|", "/") for q in it.questions]  # (the same question key)
            # Every value is escaped, each similar question too: only a cell's start matters
            # to a spreadsheet, but a value is then always escaped the same way wherever it
            # sits (a "|"-separated question read back is unescaped on its own).
            qs = [_csv_escape(q) for q in qs]
            row = [qs[0], _csv_escape(it.answer), "|".join(qs[1:]), _csv_escape(it.language or "")]
            (quoted if any("\r" in cell for cell in row) else writer).writerow(row)
            count += 1
    elif fmt == "jsonl":
        for it in items:
            obj: dict[str, object] = {"questions": it.questions, "answer": it.answer}
            if it.language:
                obj["language"] = it.language
            out.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "txt":
        for it in items:
            if count:
                out.write("\n")
            out.writelines(f"Q: {_one_line(q)}\n" for q in it.questions)
            if it.language:
                out.write(f"L: {it.language}\n")
            marker, answer = "A:", it.answer
            if "\r" in answer:  # a CR would read back as a line break: escape it
                marker, answer = "A\\:", answer.replace("\\", "\\\\").replace("\r", "\\r")
            lines = answer.split("\n")
            # Lines that would read back as a question or a comment are indented by one space.
            lines[1:] = [" " + ln if _SHIFTED.match(ln) else ln for ln in lines[1:]]
            out.write(f"{marker} " + "\n".join(lines) + "\n")
            count += 1
    else:
        raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return count


def _one_line(text: str) -> str:
    return " ".join(text.split())
