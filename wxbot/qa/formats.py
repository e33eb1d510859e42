"""Knowledge file formats: parsing (with ``file:line: reason`` errors) and writing.

- CSV: ``question,answer`` per row; more questions of the same answer separated by ``|`` in
  the question column; an optional header row ``question,answer`` (or ``问题,答案``).
- JSON Lines: one object per line, ``{"question": "...", "answer": "..."}`` or
  ``{"questions": ["...", "..."], "answer": "..."}``.
- Text: blocks of one or more ``Q:`` lines followed by an ``A:`` line; the answer continues
  on the following lines until the next ``Q:``. ``#`` starts a comment line; full-width
  colons and ``问:``/``答:`` work too; markers and ``#`` count only at the start of a line.

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

FORMATS = ("csv", "jsonl", "txt")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".md": "txt"}
_HEADERS = ({"question", "answer"}, {"问题", "答案"}, {"questions", "answer"})
# Markers count only at the very start of a line: an indented "Q:" is answer text.
_Q_RE = re.compile(r"^(?:q|问)\s*[:：]\s?(.*)$", re.IGNORECASE)
_A_RE = re.compile(r"^(?:a|答)\s*[:：]\s?(.*)$", re.IGNORECASE)


class FormatError(ValueError):
    pass


@dataclass
class Record:
    """One entry read from a file, not yet validated."""

    questions: list[object]
    answer: object
    file: str
    line: int

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


def _parse_csv(text: str, name: str) -> Parsed:
    out = Parsed()
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    first = True
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue
            if first:
                first = False
                if {c.strip().lower() for c in row} in _HEADERS:
                    continue
            if len(row) != 2:
                out.errors.append(
                    f"{name}:{line}: expected 2 columns (question,answer), found {len(row)}"
                    + ("; quote answers that contain commas" if len(row) > 2 else "")
                )
                continue
            questions = [q for q in row[0].split("|")]
            out.records.append(Record(questions, row[1], name, line))
    except csv.Error as exc:
        out.errors.append(f"{name}:{reader.line_num}: broken CSV ({exc})")
    return out


def _parse_jsonl(text: str, name: str) -> Parsed:
    out = Parsed()
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.errors.append(f"{name}:{number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            out.errors.append(f"{name}:{number}: expected a JSON object")
            continue
        unknown = set(obj) - {"question", "questions", "answer", "id"}
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
        if not isinstance(qs, list):
            out.errors.append(f'{name}:{number}: "questions" must be a list of strings')
            continue
        out.records.append(Record(list(qs), obj["answer"], name, number))
    return out


def _parse_txt(text: str, name: str) -> Parsed:
    out = Parsed()
    questions: list[object] = []
    answer: list[str] | None = None
    start = 0

    def finish() -> None:
        nonlocal questions, answer
        if questions and answer is None:
            out.errors.append(f"{name}:{start}: question(s) without an A: line")
        elif questions and answer is not None:
            out.records.append(Record(questions, "\n".join(answer).strip(), name, start))
        questions, answer = [], None

    for number, raw in enumerate(text.splitlines(), 1):
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
        a = _A_RE.match(raw)
        if a and answer is None:
            if not questions:
                out.errors.append(f"{name}:{number}: A: line without a Q: line before it")
                continue
            answer = [a.group(1)]
            continue
        if answer is not None:
            answer.append(raw)  # the answer goes on until the next Q:
        elif raw.strip():
            where = "between Q: and A:" if questions else "outside a Q:/A: block"
            out.errors.append(f"{name}:{number}: unexpected text {where}: {raw.strip()[:40]!r}")
    finish()
    return out


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


def write(items: Iterable[tuple[list[str], str]], fmt: str, out: io.TextIOBase) -> int:
    """Write (questions, answer) pairs in ``fmt``; returns the number written."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["question", "answer"])
        for qs, answer in items:
            writer.writerow(["|".join(q.replace("|", "/") for q in qs), answer])
            count += 1
    elif fmt == "jsonl":
        for qs, answer in items:
            out.write(json.dumps({"questions": qs, "answer": answer}, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "txt":
        for qs, answer in items:
            if count:
                out.write("\n")
            out.writelines(f"Q: {_one_line(q)}\n" for q in qs)
            lines = answer.split("\n")
            # Lines that would read back as a marker or a comment are indented by one space.
            lines[1:] = [
                " " + ln if _Q_RE.match(ln) or ln.startswith("#") else ln for ln in lines[1:]
            ]
            out.write("A: " + "\n".join(lines) + "\n")
            count += 1
    else:
        raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return count


def _one_line(text: str) -> str:
    return " ".join(text.split())
