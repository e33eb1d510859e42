r"""CSV: ``question,answer`` per row; more questions of the same answer separated by ``|`` in
the question column. With a header row the columns are named: ``question`` (may repeat),
``answer``, ``similar`` (``|``-separated similar questions), ``language``; Chinese names
(问题, 答案, 相似问法, 语言) work too.

Delimiter: a comma, or a tab for tab-separated files (Excel's 「Unicode 文本」 export is
UTF-16 and tab-separated; operators also paste sheets into text editors). Decided from the
file's first non-blank row, read both ways (quotes respected):

* it is a header read with commas -> commas; a header read with tabs -> tabs;
* else it holds a tab and no comma (one column with commas, several with tabs) -> tabs;
* else the file is UTF-16 (only Excel's Unicode text makes such files) or named .tsv, and
  the row holds a tab -> tabs;
* else commas.

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
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

from wxbot.qa.formats.records import MISSING, Item, Lookahead, Parsed, Record

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
# CSV injection (OWASP): a spreadsheet opening an export runs a cell that starts with one of
# these as a formula, and questions are partly users' own wordings (learning.py).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The writer puts a "'" before a value starting with one of these, the "'" itself included so
# that the reader's undoing it is unambiguous (see the module docstring).
_CSV_ESCAPED = (*_FORMULA_START, "'")
_HEADER_HELP = (
    "name the columns question, answer, similar, language (问题, 答案, 相似问法, 语言) or "
    "delete the others"
)
# how a line of a Q:/A: text file starts (txt_file): such a file is never a table
_TEXT_START = re.compile(r"#|(?:q|问|a|答|l|语言)\s*\\?[:：]", re.IGNORECASE)


def column_role(name: str) -> str | None:
    """``question``, ``answer``, ``similar`` or ``language`` for a header cell, else None."""
    return _COLUMNS.get(name.strip().lower())


def header_roles(row: list[str]) -> list[str] | None:
    """Column roles of a header row, or None if the row is data."""
    while row and not row[-1].strip():
        row = row[:-1]  # Excel ends rows with empty cells ("问题,答案,,") for a wider sheet
    roles = [column_role(c) for c in row]
    if None in roles or "question" not in roles or roles.count("answer") != 1:
        return None
    return roles  # type: ignore[return-value]


def header_problem(row: list[str]) -> str | None:
    """Why a row that names a question and an answer column is still no header (an unknown
    or unnamed column), or None. Such a row was read as data before: every line of the file
    was then "expected 2 columns ..., found 3; quote answers that contain commas", which
    named neither the column nor the fix."""
    roles = [column_role(c) for c in row]
    if header_roles(row) is not None or "question" not in roles or "answer" not in roles:
        return None
    for number, (role, cell) in enumerate(zip(roles, row, strict=True), 1):
        if role is None:
            what = f"unknown column {cell.strip()[:40]!r}" if cell.strip() else "no name"
            return f"column {number} of the header row has {what}"
    return "the header names more than one answer column"


def _first_row(text: str | Lookahead, delimiter: str) -> list[str]:
    """The first row with anything in it, read with ``delimiter`` ([] if none or broken).
    ``text``: a file's text, or its lines read ahead (only as far as that row)."""
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text.again()
    try:
        for row in csv.reader(lines, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                return row
    except csv.Error:
        pass  # the real reading reports it
    return []


def sniff_delimiter(text: str | Lookahead, prefer_tab: bool = False) -> str:
    """The delimiter, "," or a tab (see the module docstring)."""
    commas = _first_row(text, ",")
    if not commas or header_roles(commas) is not None:
        return ","
    tabs = _first_row(text, "\t")
    if header_roles(tabs) is not None:
        return "\t"
    if len(tabs) > 1 and (len(commas) == 1 or prefer_tab):
        return "\t"
    return ","


def is_tab_table(text: str | Lookahead, utf16: bool) -> bool:
    """A .txt file that is really a tab-separated table: Excel's 「Unicode 文本」 export is
    named .txt. True when its first row is a header read with tabs, or the file is UTF-16
    and that row holds a tab (and does not start as a Q:/A: file's first line does)."""
    tabs = _first_row(text, "\t")
    if header_roles(tabs) is not None:
        return True
    first = tabs[0].lstrip() if tabs else ""
    return utf16 and len(tabs) > 1 and not _TEXT_START.match(first)


def parse(text: str, name: str, prefer_tab: bool = False) -> Parsed:
    """``prefer_tab``: the file was UTF-16 or named .tsv (a tab in its first row then means
    tab-separated, whatever else the row holds)."""
    out = Parsed()
    out.records = list(read(io.StringIO(text, newline=""), name, out, prefer_tab))
    return out


def read(
    lines: Iterable[str], name: str, out: Parsed, prefer_tab: bool = False
) -> Iterator[Record]:
    """The records of a CSV file's ``lines`` (each with its line break, as a file opened with
    ``newline=""`` gives them), as they are read: the file is never held whole (only its
    first row is read ahead, to tell the delimiter). Its errors are added to ``out.errors``
    (a file refused as a whole has no records, and one error), its delimiter set."""
    ahead = Lookahead(lines)
    delimiter = out.delimiter = sniff_delimiter(ahead, prefer_tab)
    # Excel quotes a cell holding a comma only in a comma-separated file: the hint would
    # mislead in a tab-separated one.
    hint = "; quote answers that contain commas" if delimiter == "," else ""
    reader = csv.reader(ahead, delimiter=delimiter)
    start = 1
    roles: list[str] | None = None
    first = True
    given = 0  # records given so far
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or all(not cell.strip() for cell in row):
                continue
            if first:
                first = False
                roles = header_roles(row)
                if roles is not None:
                    continue
                problem = header_problem(row)
                if problem is not None:
                    out.errors.append(f"{name}:{line}: {problem}; {_HEADER_HELP}")
                    return  # every row would be read against the wrong columns
            elif header_roles(row) is not None:
                if not given:
                    # a title row above the header (「常见问题列表」): every line so far
                    # was an error that did not say so
                    out.errors[:] = [
                        f"{name}:{line}: this is the header row, but the header must be the"
                        " first row: delete the line(s) above it (a title?)"
                    ]
                    return
                # (two files pasted together): it was read as an entry 「问题」 -> 「答案」
                out.errors.append(f"{name}:{line}: a header row below the first row; delete it")
                continue
            if roles is None:
                if len(row) != 2:
                    out.errors.append(
                        f"{name}:{line}: expected 2 columns (question,answer), found {len(row)}"
                        + (hint if len(row) > 2 else "")
                    )
                    continue
                questions = [_csv_unescape(q) for q in row[0].split("|")]
                given += 1
                yield Record(questions, _csv_unescape(row[1]), name, line)
                continue
            while len(row) > len(roles) and not row[-1].strip():
                row = row[:-1]
            short = {"question", "answer"} & set(roles[len(row) :])  # optional ones may go
            if len(row) > len(roles) or short:
                out.errors.append(
                    f"{name}:{line}: expected {len(roles)} columns ({','.join(roles)}), "
                    f"found {len(row)}" + (hint if len(row) > len(roles) else "")
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
            given += 1
            yield Record(questions, answer, name, line, language)
    except csv.Error as exc:
        out.errors.append(f"{name}:{reader.line_num}: broken CSV ({exc})")


def write(items: Iterable[Item], out: io.TextIOBase) -> int:
    """Write entries as CSV with a header row; returns the number written."""
    count = 0
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
    return count


def _csv_escape(value: str) -> str:
    """``value`` as the CSV writer writes it: never starting with a formula character."""
    return "'" + value if value.startswith(_CSV_ESCAPED) else value


def _csv_unescape(value: str) -> str:
    """A value the writer escaped, as it was; one the writer could not have written that way
    (a "'" followed by anything else, e.g. 'abc) is left as it is."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_CSV_ESCAPED) else value
