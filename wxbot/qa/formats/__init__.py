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

An import streams its files (``open_file``, ``open_stream``): their records are read as the
import takes them (``Parsed.entries``), a block of bytes at a time (``stream``), so neither
the file, its text nor its records are ever all held. ``parse_file`` and ``parse_bytes``
read the same way into a list of records.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING

from wxbot.qa.formats import csv_file, jsonl_file, txt_file
from wxbot.qa.formats.encoding import UTF16_BE, UTF16_LE, decode_text
from wxbot.qa.formats.records import (
    MISSING,
    RESTART,
    FormatError,
    Item,
    Lookahead,
    Parsed,
    Record,
    split_lines,
)
from wxbot.qa.formats.stream import ByteSource, Redecode, TextReader

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "ALL_FORMATS",
    "FORMATS",
    "MISSING",
    "RESTART",
    "FormatError",
    "Item",
    "Parsed",
    "Record",
    "decode",
    "decode_text",
    "detect_format",
    "export_items",
    "open_file",
    "open_stream",
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
    """A file's records, all read (``open_file`` reads them as they are taken)."""
    return open_file(path, fmt).collect()


def open_file(path: str, fmt: str | None = None) -> Parsed:
    """A file to import, read as its records are taken (``Parsed.entries``): opened then,
    and read a block at a time. What ``read_file`` refuses is refused the same (an empty
    file; more than MAX_STREAM_BYTES of a pipe), and so is what ``parse_bytes`` refuses."""
    parsed = Parsed(name=path)

    def records() -> Iterator[object]:
        parsed.name = path
        try:
            with open(path, "rb") as fh:
                regular = stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
                source = ByteSource(
                    fh, path, cap=None if regular else MAX_STREAM_BYTES, check_empty=True
                )
                try:
                    yield from _records(parsed, source, fmt)
                finally:
                    source.close()
        except OSError as exc:
            yield RESTART
            _refused(parsed, f"{path}: cannot read ({exc.strerror})")
            parsed.name = ""

    parsed.stream = records
    return parsed


def open_stream(fh: IO[bytes], name: str, fmt: str | None = None) -> Parsed:
    """Content read from a binary file object as its records are taken (an upload, spooled
    to a file); ``name`` gives the format and the error prefix, as for ``parse_bytes``. A
    file object that cannot seek is copied to a temporary file as it is read (a file
    whose encoding is told late is read again from its start); one that can is read from
    where it stood, on every Parsed.entries."""
    parsed = Parsed(name=name)
    start = fh.tell() if fh.seekable() else None

    def records() -> Iterator[object]:
        if start is not None:
            fh.seek(start)
        source = ByteSource(fh, name)
        try:
            yield from _records(parsed, source, fmt)
        finally:
            source.close()

    parsed.stream = records
    return parsed


def _refused(parsed: Parsed, error: str) -> None:
    """The file refused as a whole: that error alone, and no encoding to name."""
    parsed.errors = [error]
    parsed.encoding = parsed.delimiter = ""


def _records(parsed: Parsed, source: ByteSource, fmt: str | None) -> Iterator[object]:
    """The records of ``source`` into ``parsed`` (see Parsed.entries)."""
    name = parsed.name
    parsed.errors, parsed.encoding, parsed.delimiter, parsed.sheet = [], "", "", ""
    try:
        try:
            fmt = detect_format(name, fmt)
        except FormatError:
            source.drain()  # an empty file (or a pipe past its cap) says so first
            raise
        if fmt == "xlsx":
            from wxbot.qa.formats import xlsx_file  # openpyxl: imported when needed

            # openpyxl reads a workbook's sheet as a stream, from the whole zip in memory
            book = xlsx_file.parse(source.read_all(), name)
            parsed.errors, parsed.sheet, parsed.sheets = book.errors, book.sheet, book.sheets
            yield from book.records
            return
        utf8_failed: Redecode | None = None
        while True:
            reader = TextReader(source, name, utf8_failed)
            parsed.encoding = reader.open()
            lines = reader.lines()
            try:
                yield from _text_records(parsed, lines, fmt)
                for _ in lines:
                    pass  # the rest decoded too: a file that does not decode is refused
                return
            except Redecode as exc:
                utf8_failed = exc  # not UTF-8: read again from the start, as GB18030
                yield RESTART
                parsed.errors, parsed.delimiter = [], ""
    except FormatError as exc:
        error = str(exc)
        try:
            source.drain()  # a pipe past its cap is refused for that, whatever it held
        except FormatError as past_cap:
            error = str(past_cap)
        yield RESTART
        _refused(parsed, error)


def _text_records(parsed: Parsed, lines: Iterator[str], fmt: str) -> Iterator[Record]:
    name = parsed.name
    utf16 = parsed.encoding in (UTF16_LE, UTF16_BE)
    if fmt == "txt":
        # Excel's Unicode text export is named .txt: a tab-separated table. Its first line
        # could not start a Q:/A: file (that reader would refuse it), so nothing that reads
        # as Q:/A: text is ever taken for a table.
        ahead = Lookahead(lines)
        if csv_file.is_tab_table(ahead, utf16):
            yield from csv_file.read(ahead, name, parsed, prefer_tab=utf16)
            return
        lines = iter(ahead)
    if fmt == "csv":
        prefer_tab = utf16 or name.lower().endswith(".tsv")
        yield from csv_file.read(lines, name, parsed, prefer_tab=prefer_tab)
    elif fmt == "txt":
        yield from txt_file.read(lines, name, parsed)
    else:
        yield from jsonl_file.read(lines, name, parsed)


def _read_stream(fh: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes, a chunk at a time: read(limit) would take all of it at once,
    and joining a list of chunks would hold everything twice."""
    buffer = io.BytesIO()
    while buffer.tell() < limit and (chunk := fh.read(min(1 << 20, limit - buffer.tell()))):
        buffer.write(chunk)
    return buffer.getvalue()


def parse_bytes(data: bytes, name: str, fmt: str | None = None) -> Parsed:
    """Parse a file's content (an upload); ``name`` gives the format and the error prefix."""
    return open_stream(io.BytesIO(data), name, fmt).collect()


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
