"""What the knowledge file formats read and write: records, items, errors, and lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
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


class _Restart:
    """In a streamed file's records (``Parsed.entries``): forget the records given so far."""

    def __repr__(self) -> str:
        return "RESTART"


# The file is being read again from its start (its encoding proved other than its first
# bytes said), or it is refused as a whole (its errors say why): what was read of it so far
# counts for nothing.
RESTART: object = _Restart()


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
    # A streamed file (formats.open_file, open_stream): its records are read as they are
    # taken (``entries``), never all held; ``records`` stays empty.
    stream: Callable[[], Iterator[object]] | None = field(default=None, repr=False)

    def entries(self) -> Iterator[object]:
        """The records, each a Record or RESTART (forget the records given so far: the file is
        read again from its start, or refused). A streamed file is read as they are taken
        (again from its start on every call); its errors, encoding and delimiter are final
        once they are all taken."""
        if self.stream is None:
            return iter(self.records)
        return self.stream()

    def collect(self) -> Parsed:
        """All of a streamed file read into ``records`` (the file is then no longer
        streamed); returns itself."""
        if self.stream is not None:
            records: list[Record] = []
            for record in self.stream():
                if record is RESTART:
                    records.clear()
                else:
                    records.append(record)  # type: ignore[arg-type]
            self.records, self.stream = records, None
        return self

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


class Lookahead:
    """Lines that can be read ahead from their start (to sniff a file's first row) and are
    then given once, from their start: the lines read ahead are kept until given again."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = iter(lines)
        self._kept: list[str] = []

    def again(self) -> Iterator[str]:
        """The lines from the start, reading (and keeping) more as they are taken."""
        at = 0
        while True:
            if at == len(self._kept):
                line = next(self._lines, None)
                if line is None:
                    return
                self._kept.append(line)
            yield self._kept[at]
            at += 1

    def __iter__(self) -> Iterator[str]:
        kept, self._kept = self._kept, []
        kept.reverse()
        while kept:
            yield kept.pop()  # (each line let go of as it is given)
        yield from self._lines
