r"""Excel workbooks (.xlsx), read with openpyxl in read-only, data-only mode and written in
write-only mode (both stream).

Reading: the first visible sheet (the import summary names it and says when the workbook has
others, which are not read). Its first row holding anything is the header, required, with the
columns a CSV header names: ``question`` (may repeat), ``answer``, ``similar``
(``|``-separated similar questions), ``language``; or 问题, 答案, 相似问法, 语言. A question
cell may also hold several ``|``-separated questions. Blank rows are skipped, trailing ones
ignored; errors name the sheet's own row numbers.

Cells become text as Excel shows them where that is unambiguous: a whole number stored as a
number reads ``12306`` (not ``12306.0``; a ``0000``-style format keeps its leading zeros),
other numbers with up to 15 significant digits (Excel's precision), dates ``2024-05-01``
(``2024-05-01 09:30`` with a time), TRUE/FALSE. A formula reads as the result Excel saved
with the file; a formula without one (a file written by a program, never opened in Excel)
and an error value (#N/A ...) are bad rows.

Excel's escape ``_xHHHH_`` (``_x000D_`` is a carriage return, ``_x005F_`` an underscore) is
read as Excel reads it, and written for the characters XML cannot carry (a CR would read back
as a line feed).

Writing: the CSV header and columns, every value as a string cell (type ``s``), so that no
value is ever a formula: a question that starts with ``=`` is shown, and read back, as that
text. Those starting with a formula character also get Excel's 「以文本形式存储」 flag
(quotePrefix), so that editing the cell does not turn it into a formula either. Unlike
CSV, no ``'`` is added: a spreadsheet cell has a type, a CSV field has none.
"""

from __future__ import annotations

import datetime
import io
import re
import warnings
import zipfile
from collections.abc import Iterable
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.cell import get_column_letter

from wxbot.qa.formats import csv_file
from wxbot.qa.formats.records import MISSING, FormatError, Item, Parsed, Record
from wxbot.qa.formats.xlsx_scan import (
    MAX_ROWS,
    MAX_UNPACKED_BYTES,
    SheetFacts,
    check_zip,
    scan_sheet,
)

# openpyxl warns about what it does not read (data validation extensions, default styles):
# nothing an import needs, and the warnings would only reach a log or the operator's console.
warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")

_ZIP = b"PK\x03\x04"
_OLE2 = bytes.fromhex("d0cf11e0a1b11ae1")  # .xls, and .xlsx files protected by a password
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
# What XML 1.0 cannot carry, and the CR that XML reads back as a line feed
_UNWRITABLE_CHARS = "[\x00-\x08\x0b-\x0d\x0e-\x1f\ufffe\uffff]"
_UNWRITABLE = re.compile(_UNWRITABLE_CHARS)
_LITERAL_ESCAPE = re.compile(f"_(?=x[0-9A-Fa-f]{{4}}(?:_|{_UNWRITABLE_CHARS}))")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_HEADER_HELP = "name the columns question, answer, similar, language (问题, 答案, 相似问法, 语言)"


def parse(data: bytes, name: str) -> Parsed:
    try:
        return _parse(data, name)
    except FormatError as exc:
        return Parsed(errors=[str(exc)], name=name)
    except Exception as exc:  # noqa: BLE001 - a damaged zip fails inside zipfile/zlib (bad
        # CRC, bad deflate data) while a part is streamed: the operator gets a reason, not a
        # traceback
        return Parsed(errors=[f"{name}: a damaged .xlsx file ({_short(exc)})"], name=name)


def _parse(data: bytes, name: str) -> Parsed:
    if data.startswith(_OLE2):
        raise FormatError(
            f"{name}: an old .xls workbook, or one protected by a password; open it in "
            "Excel or WPS and save it as .xlsx (Excel 工作簿) without a password, or as CSV"
        )
    if not data.startswith(_ZIP):
        raise FormatError(
            f"{name}: not an Excel .xlsx workbook (not a zip file); a CSV or text file "
            "needs its own extension (.csv, .txt)"
        )
    if len(data) > MAX_UNPACKED_BYTES:
        raise FormatError(f"{name}: larger than {MAX_UNPACKED_BYTES // 2**20} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise FormatError(f"{name}: a damaged .xlsx file (not a readable zip)") from None
    with archive:
        check_zip(archive, name)
        try:
            # read_only streams the sheet; data_only gives formulas' saved results
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # a hostile or foreign zip can fail anywhere inside openpyxl
            raise FormatError(f"{name}: not an Excel .xlsx workbook ({_short(exc)})") from None
        try:
            sheets = book.worksheets
            if not sheets:
                raise FormatError(f"{name}: the workbook has no worksheet")
            sheet = next((s for s in sheets if s.sheet_state == "visible"), sheets[0])
            # The sheet's part in the zip, for the scan: openpyxl's own attribute (there since
            # 2.x; no public one exists). Were it renamed, every workbook would be refused as
            # "missing", which the tests would show at once.
            path = getattr(sheet, "_worksheet_path", "").lstrip("/")
            try:
                with archive.open(path) as source:
                    facts = scan_sheet(source, name)
            except KeyError:
                raise FormatError(f"{name}: the sheet {sheet.title!r} is missing") from None
            out = Parsed(name=name, sheet=sheet.title, sheets=len(sheets))
            _read_rows(sheet, facts, name, out)
            return out
        finally:
            book.close()


def _read_rows(sheet: Any, facts: SheetFacts, name: str, out: Parsed) -> None:
    last = facts.last_row()
    first = next((r for r in range(1, last + 1) if facts.width(r)), 0)
    if not first:
        raise FormatError(f"{name}: the sheet {sheet.title!r} is empty")
    sheet.reset_dimensions()  # the file's own <dimension> may lie: the scan's figures do not
    header_rows = sheet.iter_rows(min_row=first, max_row=first, max_col=facts.width(first))
    header_cells = next(header_rows)
    header_rows.close()  # (its generator holds the sheet's stream open)
    roles = _header(header_cells, first, name, facts)
    width = len(roles)
    rows = sheet.iter_rows(min_row=first + 1, max_row=last, max_col=width)
    merges = _Merges(facts, roles)
    try:
        for number, cells in enumerate(rows, first + 1):
            if not facts.width(number):
                continue  # a blank row
            try:
                texts = merges.fill(number, _texts(cells, roles, number, name, facts))
                top = merges.continues(number)
                if top is not None:
                    _continue(out, texts, roles, top, number, name)
                    continue
                record = _record(texts, roles, number, name)
            except FormatError as exc:
                out.errors.append(str(exc))
                continue
            if record is not None:
                out.records.append(record)
    except FormatError:
        raise
    except Exception as exc:  # damaged XML past the scan's reach (a bad shared string index...)
        out.errors.append(f"{name}: the sheet is damaged ({_short(exc)})")


def _header(cells: tuple[Any, ...], row: int, name: str, facts: SheetFacts) -> list[str]:
    texts = [_text(c, row, name, facts) for c in cells]
    while texts and not texts[-1].strip():
        texts.pop()
    roles: list[str] = []
    for col, text in enumerate(texts, 1):
        role = csv_file.column_role(text)
        where = f"{name}:{row}: column {get_column_letter(col)}"
        if not text.strip():
            raise FormatError(f"{where} of the header row has no name; {_HEADER_HELP}")
        if role is None:
            if not roles and col == 1:
                raise FormatError(f"{name}:{row}: the first row must be a header; {_HEADER_HELP}")
            raise FormatError(f"{where}: unknown column {text.strip()[:40]!r}; {_HEADER_HELP}")
        roles.append(role)
    if "question" not in roles or roles.count("answer") != 1:
        raise FormatError(
            f"{name}:{row}: the header needs a question column and one answer column; "
            + _HEADER_HELP
        )
    return roles


class _Merges:
    """Cells merged down several rows, as the operator sees them: Excel keeps the value in
    the top cell only (openpyxl reads the others as empty), so an answer merged over the
    rows of three questions was "the answer is empty" for two of them. A merged cell reads
    as its value in every row it spans; a row whose question cells are all inside merged
    cells from the row above continues that row's entry (its similar questions join it)."""

    def __init__(self, facts: SheetFacts, roles: list[str]) -> None:
        self._down = facts.merged_down
        self._questions = [i for i, role in enumerate(roles) if role == "question"]
        self._open: dict[int, tuple[int, int, str]] = {}  # column -> (top, bottom, text)

    def fill(self, row: int, texts: list[str]) -> list[str]:
        for column, text in enumerate(texts):
            bottom = self._down.get((row, column + 1))
            if bottom is not None:
                self._open[column] = (row, bottom, text)
                continue
            top, end, value = self._open.get(column, (0, 0, ""))
            if top and row <= end and not text:
                texts[column] = value
        return texts

    def continues(self, row: int) -> int | None:
        """The top row of the merged question cells this row lies inside, if any."""
        tops = set()
        for column in self._questions:
            top, end, _ = self._open.get(column, (0, 0, ""))
            if not (top and top < row <= end):
                return None
            tops.add(top)
        return tops.pop() if len(tops) == 1 else None


def _continue(
    out: Parsed, texts: list[str], roles: list[str], top: int, row: int, name: str
) -> None:
    """Add a row inside merged question cells to the entry of the merge's top row."""
    record = out.records[-1] if out.records else None
    if record is None or record.line != top:
        return  # the top row was refused: its error stands for the whole entry
    more = _record(texts, roles, row, name)
    if more is None:
        return
    if more.answer.strip() and more.answer != record.answer:  # type: ignore[union-attr]
        raise FormatError(
            f"{name}:{row}: inside the merged question cell of row {top} but with an answer "
            f"of its own; merge its answer cell with row {top}'s too, or unmerge the question"
        )
    if more.language not in (MISSING, None) and more.language != record.language:
        raise FormatError(
            f"{name}:{row}: inside the merged question cell of row {top} but with a language "
            f"of its own; merge its language cell with row {top}'s too, or unmerge the question"
        )
    record.questions.extend(q for q in more.questions if q not in record.questions)


def _texts(
    cells: tuple[Any, ...], roles: list[str], row: int, name: str, facts: SheetFacts
) -> list[str]:
    if facts.width(row) > len(roles):
        column = get_column_letter(facts.width(row))
        raise FormatError(
            f"{name}:{row}: expected {len(roles)} columns ({','.join(roles)}), found a value "
            f"in column {column}; name that column in the header or clear it"
        )
    texts = [_text(cell, row, name, facts) for cell in cells[: len(roles)]]
    return texts + [""] * (len(roles) - len(texts))


def _record(texts: list[str], roles: list[str], row: int, name: str) -> Record | None:
    questions: list[object] = []
    language: object = MISSING
    answer = ""
    if not any(text.strip() for text in texts):
        return None  # only spaces: a blank row, as in CSV (it was "give at least one question")
    for role, text in zip(roles, texts, strict=False):
        if role == "question":
            if text.strip():
                questions.extend(text.split("|"))
        elif role == "similar":
            questions.extend(q for q in text.split("|") if q.strip())
        elif role == "language":
            language = text.strip() or None
        else:
            answer = text
    return Record(questions, answer, name, row, language)


def _text(cell: Any, row: int, name: str, facts: SheetFacts) -> str:
    """A cell's value as the text it stands for (see the module docstring)."""
    column = getattr(cell, "column", None)
    if column is not None and (row, column) in facts.no_result:
        raise FormatError(
            f"{name}:{row}: cell {get_column_letter(column)}{row} holds a formula without a "
            "saved result; open the file in Excel or WPS and save it again (or paste values)"
        )
    value = cell.value
    if value is None:
        return ""
    if cell.data_type == "e":
        raise FormatError(f"{name}:{row}: cell {cell.coordinate} holds the error {value}")
    if isinstance(value, str):
        return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _padded(str(value), cell)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return _padded(str(int(value)), cell)
        return format(value, ".15g")
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0):
            return value.date().isoformat()
        return value.isoformat(" ", "seconds" if value.second else "minutes")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.isoformat("seconds" if value.second else "minutes")
    if isinstance(value, datetime.timedelta):
        minutes, seconds = divmod(round(value.total_seconds()), 60)
        return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"
    return str(value)


def _padded(digits: str, cell: Any) -> str:
    """A whole number under a ``0000`` format keeps the leading zeros Excel shows."""
    fmt = getattr(cell, "number_format", "") or ""
    if re.fullmatch(r"0+", fmt) and not digits.startswith("-"):
        return digits.zfill(len(fmt))
    return digits


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


# -- writing -----------------------------------------------------------------------------------


def write(items: Iterable[Item], out: IO[bytes]) -> int:
    """Write entries as a workbook of one sheet with a header row; returns the number written.
    Nothing is written to ``out`` if they do not fit in a sheet."""
    items = list(items)  # (counted first: a write-only sheet cannot be abandoned halfway)
    if len(items) >= MAX_ROWS:
        raise FormatError(
            f"more than {MAX_ROWS - 1:,} entries: more than a sheet holds; export as CSV"
        )
    book = Workbook(write_only=True)
    sheet = book.create_sheet("knowledge")
    for letter, width in zip("ABCD", (40, 80, 60, 10), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.append(["question", "answer", "similar", "language"])
    for it in items:
        qs = [q.replace("|", "/") for q in it.questions]  # "|" separates questions: as CSV
        row = [qs[0], it.answer, "|".join(qs[1:]), it.language or ""]
        sheet.append([_cell(sheet, value) for value in row])
    book.save(out)
    return len(items)


def _cell(sheet: Any, value: str) -> WriteOnlyCell | None:
    if not value:
        return None
    # An underscore that would read as the start of an escape is itself escaped: before
    # "x0041_" (a literal "_x0041_"), and before "x0041" + a character escaped next,
    # whose escape starts with "_" (a literal "_x0041" followed by a CR).
    text = _LITERAL_ESCAPE.sub("_x005F_", value)
    text = _UNWRITABLE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # openpyxl would make "=..." a formula
    if value.startswith(_FORMULA_START):
        cell.quotePrefix = True
    return cell
