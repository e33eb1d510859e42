"""What the knowledge file formats read and write: records, items, errors, and lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Files are cut into lines at CR/LF only: str.splitlines() also cuts at U+2028, U+0085 ...,
# which json.dumps leaves raw inside strings, so an exported answer would not read back.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class FormatError(ValueError):
    pass


class _Missing:
    """The file says nothing about an entry's language (an update keeps the entry's)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: object = _Missing()


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
    # How the file was read, for the import summary (empty when it could not be read):
    name: str = ""
    encoding: str = ""  # "UTF-8", "GB18030", "UTF-16 LE" ... (formats.encoding); "" for .xlsx
    delimiter: str = ""  # CSV: "," or "\t"
    sheet: str = ""  # .xlsx: the sheet read
    sheets: int = 0  # .xlsx: how many sheets the workbook has

    @property
    def read_as(self) -> str:
        """``GB18030, tab-separated`` / ``Excel workbook, sheet 'FAQ' (1 of 3 sheets...)``."""
        if self.sheet:
            more = (
                f" (1 of {self.sheets} sheets; the others are not read)" if self.sheets > 1 else ""
            )
            return f"Excel workbook, sheet {self.sheet!r}{more}"
        return self.encoding + (", tab-separated" if self.delimiter == "\t" else "")


@dataclass
class Item:
    """One entry to write."""

    questions: list[str]
    answer: str
    language: str | None = None


def split_lines(text: str) -> list[str]:
    """``text`` cut into lines at LF, CRLF and CR only (see _LINE_BREAK); also used by the
    synonyms reader, whose lines may hold the other characters str.splitlines() cuts at."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the break that ends the last line starts no new one
    return lines
