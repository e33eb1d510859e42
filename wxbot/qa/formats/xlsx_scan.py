"""Checks on an .xlsx file before openpyxl reads it, so that a hostile file is refused with a
reason instead of exhausting memory or time.

* The zip: at most ``MAX_MEMBERS`` parts, unpacking to at most ``MAX_UNPACKED_BYTES`` in
  all, and any part that openpyxl parses whole (styles, the workbook, ...) to at most
  ``MAX_PART_BYTES``. The sizes are the ones the zip declares: Python's zipfile never
  unpacks more than the declared size (it stops there), so a zip bomb cannot lie past them.
* The sheet, streamed with expat (constant memory): at most Excel's own limits of
  1,048,576 rows and 16,384 columns (openpyxl would otherwise pad a row numbered
  999999999 with that many empty rows, and a row of a million ``<c/>`` would be held at
  once), and two facts openpyxl's read-only, data-only reading cannot give: which cells
  hold a formula without a saved result (data-only mode reads them as empty), and the
  rightmost column holding something in each row (a value right of the named columns is a
  bad row, as in CSV).
"""

from __future__ import annotations

import zipfile
from array import array
from dataclasses import dataclass, field
from typing import IO
from xml.parsers import expat

from openpyxl.utils.cell import coordinate_to_tuple, range_boundaries

from wxbot.qa.formats.records import FormatError

MAX_UNPACKED_BYTES = 128 * 1024 * 1024  # ~100k rows of long answers; a 10 MB CSV is ~20k
MAX_PART_BYTES = 8 * 1024 * 1024  # styles.xml and the like, parsed whole by openpyxl
MAX_MEMBERS = 10_000
MAX_ROWS = 1_048_576  # Excel's own limits: no real workbook passes them
MAX_COLUMNS = 16_384
MAX_FORMULA_ERRORS = 10_000  # formulas without a saved result remembered one by one
MAX_MERGES = 100_000  # merged cells remembered one by one

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_ROW, _CELL, _FORMULA, _VALUE, _INLINE, _TEXT, _MERGE = (
    f"{_MAIN} {tag}" for tag in ("row", "c", "f", "v", "is", "t", "mergeCell")
)
# parts openpyxl streams (the sheets) or keeps only as strings (shared strings): big is fine
_STREAMED = ("xl/worksheets/", "xl/sharedStrings.xml")


def check_zip(archive: zipfile.ZipFile, name: str) -> None:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise FormatError(f"{name}: more than {MAX_MEMBERS:,} parts in the workbook")
    total = 0
    for info in members:
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise FormatError(
                f"{name}: the workbook unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB; "
                "split it, or save it as CSV"
            )
        if info.file_size > MAX_PART_BYTES and not info.filename.startswith(_STREAMED):
            raise FormatError(
                f"{name}: the part {info.filename} unpacks to {info.file_size / 2**20:.1f} MB, "
                f"more than the {MAX_PART_BYTES / 2**20:g} MB allowed; save the workbook "
                "again from Excel (or as CSV)"
            )


@dataclass
class SheetFacts:
    # rightmost[r]: the rightmost column of row r holding text or a value (0: none)
    rightmost: array = field(default_factory=lambda: array("I"))  # type: ignore[type-arg]
    no_result: set[tuple[int, int]] = field(default_factory=set)  # formula, nothing saved
    # Cells merged down several rows: (top row, column) -> bottom row. Excel keeps the value
    # in the top cell only; openpyxl reads the others as empty.
    merged_down: dict[tuple[int, int], int] = field(default_factory=dict)

    def last_row(self) -> int:
        for r in range(len(self.rightmost) - 1, 0, -1):
            if self.rightmost[r]:
                return r
        return 0

    def width(self, row: int) -> int:
        return self.rightmost[row] if row < len(self.rightmost) else 0


class _Refused(Exception):
    pass


def scan_sheet(source: IO[bytes], name: str) -> SheetFacts:
    facts = SheetFacts()
    state = {"row": 0, "col": 0, "cells": 0, "type": "n", "f": False, "v": False, "text": False}
    inside = [False]  # in a <v>, or a <t> of an inline string: its characters are the value
    parser = expat.ParserCreate(namespace_separator=" ")

    def refuse_dtd(*_args: object) -> None:
        # a real sheet has none; a DTD is how entity-expansion attacks start
        raise _Refused(f"{name}: the sheet declares a DTD, which no workbook does")

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == _ROW:
            r = attrs.get("r")
            state["row"] = _number(r, name) if r else state["row"] + 1
            state["col"] = state["cells"] = 0
            if state["row"] > MAX_ROWS:
                raise _Refused(f"{name}: a row numbered past {MAX_ROWS:,} (Excel's limit)")
        elif tag == _CELL:
            ref = attrs.get("r")
            if ref:
                try:
                    state["col"] = coordinate_to_tuple(ref)[1]
                except (ValueError, TypeError):
                    raise _Refused(f"{name}:{state['row']}: a cell named {ref[:20]!r}") from None
            else:
                state["col"] += 1
            state["cells"] += 1
            if state["col"] > MAX_COLUMNS or state["cells"] > MAX_COLUMNS:
                raise _Refused(f"{name}:{state['row']}: more than {MAX_COLUMNS:,} columns")
            state.update(type=attrs.get("t", "n"), f=False, v=False, text=False)
        elif tag == _FORMULA:
            state["f"] = True
        elif tag == _MERGE:
            _merge(facts, attrs.get("ref", ""), name)
        elif tag in (_VALUE, _INLINE):
            state["v"] = True
            inside[0] = tag == _VALUE
        elif tag == _TEXT:
            inside[0] = True

    def data(text: str) -> None:
        if inside[0] and text:
            state["text"] = True

    def end(tag: str) -> None:
        if tag in (_VALUE, _TEXT):
            inside[0] = False
        if tag != _CELL:
            return
        row, col = state["row"], state["col"]
        if state["text"]:
            _mark(facts.rightmost, row, col)
        # A formula's result is saved in <v>; an empty <v> is an empty text result only
        # for a text-typed cell ("str"), never a number.
        if state["f"] and (not state["v"] or (not state["text"] and state["type"] != "str")):
            if len(facts.no_result) >= MAX_FORMULA_ERRORS:
                raise _Refused(
                    f"{name}: more than {MAX_FORMULA_ERRORS:,} formulas without a saved "
                    "result; open the file in Excel or WPS and save it again"
                )
            facts.no_result.add((row, col))

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.ParseFile(source)
    except _Refused as exc:
        raise FormatError(str(exc)) from None
    except expat.ExpatError as exc:
        raise FormatError(f"{name}: the sheet is damaged ({expat.ErrorString(exc.code)})") from None
    return facts


def _merge(facts: SheetFacts, ref: str, name: str) -> None:
    """Remember a merged range that spans rows (``B2:B4``, ``A2:C3``)."""
    try:
        left, top, _right, bottom = range_boundaries(ref)
    except (ValueError, TypeError):
        raise _Refused(f"{name}: merged cells named {ref[:20]!r}") from None
    if not (top and left and bottom) or bottom <= top:
        return  # within one row (or whole columns): nothing to carry down
    if len(facts.merged_down) >= MAX_MERGES:
        raise _Refused(f"{name}: more than {MAX_MERGES:,} merged cells; unmerge them")
    facts.merged_down[(top, left)] = min(bottom, MAX_ROWS)


def _number(text: str, name: str) -> int:
    try:
        return int(float(text))  # openpyxl accepts "5.0" too
    except (ValueError, OverflowError):
        raise _Refused(f"{name}: a row numbered {text[:20]!r}") from None


def _mark(rightmost: array, row: int, col: int) -> None:  # type: ignore[type-arg]
    if row >= len(rightmost):
        rightmost.extend([0] * (row + 1 - len(rightmost)))
    if col > rightmost[row]:
        rightmost[row] = col
