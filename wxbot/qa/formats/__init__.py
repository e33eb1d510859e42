"""Knowledge file formats: parsing (with ``file:line: reason`` errors) and writing.

An entry has one answer, any number of questions (the first is the main one, the others its
similar questions, 相似问法) and optionally a language (zh, en, th, tl, ja; none = any). Each
format has its module, which documents its rules and how it escapes what would not read back
(or, in CSV, what a spreadsheet would run as a formula):

- CSV (``csv_file``): ``question,answer`` rows, or named columns ``question``, ``answer``,
  ``similar``, ``language``;
- JSON Lines (``jsonl_file``): ``{"questions": [...], "answer": "..."}`` per line;
- Text (``txt_file``): blocks of ``Q:`` lines, an optional ``L:`` line, then ``A:``;
- Excel workbooks (``xlsx_file``): the CSV columns in the first sheet, header row required.

The text formats are read in UTF-8 (with or without a BOM), UTF-16 with a BOM, or GB18030
(GBK), decided from the bytes (``encoding``); CSV may be tab-separated. The format comes from
the extension (.csv, .jsonl/.json, .txt/.md, .xlsx) unless given; .xls is refused with a
hint. Every writer's output reads back to the same entries. ``FORMATS`` are the text formats
(``parse`` and ``write`` take text); ``ALL_FORMATS`` adds .xlsx, which is bytes.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from wxbot.qa.formats import csv_file, jsonl_file, txt_file
from wxbot.qa.formats.encoding import UTF16_BE, UTF16_LE, decode_text
from wxbot.qa.formats.records import MISSING, FormatError, Item, Parsed, Record, split_lines

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "ALL_FORMATS",
    "FORMATS",
    "MISSING",
    "FormatError",
    "Item",
    "Parsed",
    "Record",
    "decode",
    "decode_text",
    "detect_format",
    "export_items",
    "parse",
    "parse_bytes",
    "parse_file",
    "read_file",
    "split_lines",
    "write",
]

_MODULES = {"csv": csv_file, "jsonl": jsonl_file, "txt": txt_file}
FORMATS = tuple(_MODULES)  # the text formats
ALL_FORMATS = (*FORMATS, "xlsx")
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".txt": "txt",
    ".md": "txt",
    ".tsv": "csv",  # (the CSV reader tells tab-separated files by their first row)
    ".xlsx": "xlsx",
}
OLD_EXCEL = (".xls", ".et")  # binary Excel, and WPS's own format: neither is read


def detect_format(path: str, given: str | None = None) -> str:
    if given:
        if given not in ALL_FORMATS:
            raise FormatError(f"unknown format {given!r}; use one of {', '.join(ALL_FORMATS)}")
        return given
    ext = os.path.splitext(path)[1].lower()
    if ext in OLD_EXCEL:
        raise FormatError(
            f"{path}: {ext} workbooks cannot be read; open it in Excel or WPS and save it "
            "as .xlsx (Excel 工作簿) or as CSV"
        )
    if ext not in _EXTENSIONS:
        raise FormatError(
            f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
            "use .csv, .jsonl, .txt or .xlsx (or --format)"
        )
    return _EXTENSIONS[ext]


def decode(data: bytes, name: str) -> str:
    """A text file's content (see ``encoding`` for which encodings, and how it decides)."""
    return decode_text(data, name).text


def parse(text: str, name: str, fmt: str, encoding: str = "") -> Parsed:
    """A text format's content; ``encoding`` (as ``decode_text`` names it) lets CSV tell
    Excel's tab-separated Unicode text."""
    if fmt not in _MODULES:
        raise FormatError(f"{name}: {fmt} is not a text format")
    if fmt == "csv":
        utf16 = encoding in (UTF16_LE, UTF16_BE)
        parsed = csv_file.parse(text, name, prefer_tab=utf16 or name.lower().endswith(".tsv"))
    else:
        parsed = _MODULES[fmt].parse(text, name)
    parsed.name, parsed.encoding = name, encoding
    return parsed


# What is read from a pipe or a device (`wxbot kb import --format csv /dev/stdin`), which has
# no size to look at first: /dev/zero or `yes |` would fill the memory. A 10 MB CSV holds
# ~20k rows: 128 MB (as an .xlsx may unpack to) is ~250k, more than any import here.
MAX_STREAM_BYTES = 128 * 1024 * 1024


def read_file(path: str) -> bytes:
    """A file's bytes, for an import: all of a regular file; at most MAX_STREAM_BYTES of a
    pipe or device. Raises OSError (unreadable) or FormatError (a stream past the cap, or
    nothing but blanks: refused as the console refuses an empty upload, where it once said
    "imported: added 0")."""
    with open(path, "rb") as fh:
        if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            data = fh.read()
        else:
            data = _read_stream(fh, MAX_STREAM_BYTES + 1)
    if len(data) > MAX_STREAM_BYTES:
        raise FormatError(
            f"{path}: more than {MAX_STREAM_BYTES // 2**20} MB read from it, and it is not a"
            " regular file; save it to a file and import that"
        )
    if not data.strip():
        raise FormatError(f"{path}: the file is empty")
    return data


def parse_file(path: str, fmt: str | None = None) -> Parsed:
    try:
        data = read_file(path)
    except OSError as exc:
        return Parsed(errors=[f"{path}: cannot read ({exc.strerror})"])
    except FormatError as exc:
        return Parsed(errors=[str(exc)], name=path)
    return parse_bytes(data, path, fmt)


def _read_stream(fh: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes, a chunk at a time: read(limit) would take all of it at once,
    and joining a list of chunks would hold everything twice."""
    buffer = io.BytesIO()
    while buffer.tell() < limit and (chunk := fh.read(min(1 << 20, limit - buffer.tell()))):
        buffer.write(chunk)
    return buffer.getvalue()


def parse_bytes(data: bytes, name: str, fmt: str | None = None) -> Parsed:
    """Parse a file's content (an upload); ``name`` gives the format and the error prefix."""
    try:
        fmt = detect_format(name, fmt)
        if fmt == "xlsx":
            from wxbot.qa.formats import xlsx_file  # openpyxl: imported when needed (see write)

            return xlsx_file.parse(data, name)
        decoded = decode_text(data, name)
        utf16 = decoded.encoding in (UTF16_LE, UTF16_BE)
        # Excel's Unicode text export is named .txt: a tab-separated table. Its first line
        # could not start a Q:/A: file (that reader would refuse it), so nothing that reads
        # as Q:/A: text is ever taken for a table.
        if fmt == "txt" and csv_file.is_tab_table(decoded.text, utf16):
            fmt = "csv"
        return parse(decoded.text, name, fmt, decoded.encoding)
    except FormatError as exc:
        return Parsed(errors=[str(exc)], name=name)


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


def write(items: Iterable[Item], fmt: str, out: io.TextIOBase | IO[bytes]) -> int:
    """Write entries in ``fmt`` (to a text stream; .xlsx to a binary one); returns the number
    written. Reads back to the same entries."""
    if fmt == "xlsx":
        # Imported when a workbook is read or written, not with the package: openpyxl (and
        # the numpy and lxml it loads when installed) cost every worker ~25 MB and a
        # fifth of a second at start-up, for files only the import and export commands,
        # the console and the admin API ever read.
        from wxbot.qa.formats import xlsx_file

        return xlsx_file.write(items, out)  # type: ignore[arg-type]
    module = _MODULES.get(fmt)
    if module is None:
        raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(ALL_FORMATS)}")
    return module.write(items, out)  # type: ignore[no-any-return]
