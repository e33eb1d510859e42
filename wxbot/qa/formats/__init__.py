"""Knowledge file formats: parsing (with ``file:line: reason`` errors) and writing.

An entry has one answer, any number of questions (the first is the main one, the others its
similar questions, 相似问法) and optionally a language (zh, en, th, tl, ja; none = any). Each
format has its module, which documents its rules and how it escapes what would not read back
(or, in CSV, what a spreadsheet would run as a formula):

- CSV (``csv_file``): ``question,answer`` rows, or named columns ``question``, ``answer``,
  ``similar``, ``language``;
- JSON Lines (``jsonl_file``): ``{"questions": [...], "answer": "..."}`` per line;
- Text (``txt_file``): blocks of ``Q:`` lines, an optional ``L:`` line, then ``A:``.

All UTF-8, with or without a BOM. The format comes from the extension (.csv, .jsonl/.json,
.txt/.md) unless given. Every writer's output reads back to the same entries.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wxbot.qa.formats import csv_file, jsonl_file, txt_file
from wxbot.qa.formats.records import MISSING, FormatError, Item, Parsed, Record, split_lines

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = [
    "FORMATS",
    "MISSING",
    "FormatError",
    "Item",
    "Parsed",
    "Record",
    "decode",
    "detect_format",
    "export_items",
    "parse",
    "parse_bytes",
    "parse_file",
    "split_lines",
    "write",
]

_MODULES = {"csv": csv_file, "jsonl": jsonl_file, "txt": txt_file}
FORMATS = tuple(_MODULES)
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "txt", ".md": "txt"}


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
    return _MODULES[fmt].parse(text, name)  # type: ignore[no-any-return]


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
    module = _MODULES.get(fmt)
    if module is None:
        raise FormatError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return module.write(items, out)  # type: ignore[no-any-return]
