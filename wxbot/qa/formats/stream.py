"""A knowledge file's text, decoded and cut into lines as it is read, a block at a time.

An import reads files of up to hundreds of megabytes (200k rows are 71 MB of CSV). Read
whole, the file, its text and the lines were all held at once before the first row was
checked: about 370 MB above the process's own for that file. Here only a block of bytes, the
text decoded from it and the line being read are held.

The encoding is decided as ``encoding.decode_text`` decides it for the whole file (a byte
order mark; else UTF-8 if every byte is; else GB18030; else refused), and with the same
errors, but from the bytes as they come: a file without a BOM is read as UTF-8 until a byte
proves it is not, and then read again from its start as GB18030 (``Redecode``): the reader
of its lines is told (``RESTART`` in the records) to forget what it read. Never a guess, and
never a file read half in one encoding and half in the other. Errors about the whole file
(not UTF-8 or GB18030; a NUL character; empty; a pipe past its cap) are known only once it
is read to its end, and win over whatever its rows said, as when it was decoded at once.

A file that cannot be read again (a pipe) is copied to a temporary file as it is read, for
the case it has to be (``ByteSource``).
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

from wxbot.qa.formats.encoding import _BOMS, GB18030, UTF8
from wxbot.qa.formats.records import FormatError

READ_BLOCK = 1 << 20  # bytes read (and decoded) at a time
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.strip() strips: a file of only these is empty
_LINE_END = re.compile(r"\r\n|\r|\n")


class Redecode(Exception):  # noqa: N818 - a signal, not an error: read again as GB18030
    """The file is not UTF-8 (the byte at ``where``, on line ``line``): read it again from
    its start as GB18030."""

    def __init__(self, where: int, line: int) -> None:
        super().__init__(where, line)
        self.where, self.line = where, line


class ByteSource:
    """A file's bytes a block at a time, readable again from the start (``rewind``): a
    seekable file is sought back; the bytes of one that is not (a pipe) are copied to a
    temporary file as they are first read, and read from there again.

    ``cap``: at most this many bytes (a pipe: ``yes |`` would never end), else FormatError.
    ``check_empty``: at the end of a file holding nothing but spaces and line breaks,
    FormatError ("the file is empty"), as an import refuses one."""

    def __init__(
        self, fh: IO[bytes], name: str, *, cap: int | None = None, check_empty: bool = False
    ) -> None:
        self.name = name
        self._fh = fh
        self._seekable = fh.seekable()
        self._start = fh.tell() if self._seekable else 0
        self._cap = cap
        self._check_empty = check_empty
        self._copy: IO[bytes] | None = None  # a pipe's bytes read so far
        self._copied = 0
        self._at = 0  # where the next read starts, from the start of the file
        self._taken = 0  # how far the file has been read
        self.content = False  # a byte other than whitespace seen

    def rewind(self) -> None:
        self._at = 0
        if self._seekable:
            self._fh.seek(self._start)

    def read(self, size: int = 0) -> bytes:
        """The next block (up to ``size`` bytes, READ_BLOCK if 0; b"" at the end)."""
        size = size or READ_BLOCK
        if not self._seekable and self._at < self._copied:
            assert self._copy is not None
            self._copy.seek(self._at)
            block = self._copy.read(min(size, self._copied - self._at))
        else:
            block = self._fh.read(size)
            if not self._seekable and block:
                if self._copy is None:
                    self._copy = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
                self._copy.seek(self._copied)
                self._copy.write(block)
                self._copied += len(block)
        self._at += len(block)
        if self._at > self._taken:
            self._taken = self._at
            if self._cap is not None and self._taken > self._cap:
                raise FormatError(
                    f"{self.name}: more than {self._cap // 2**20} MB read from it, and it is "
                    "not a regular file; save it to a file and import that"
                )
        if not self.content and block.strip(_WHITESPACE):
            self.content = True
        if not block and self._check_empty and not self.content:
            raise FormatError(f"{self.name}: the file is empty")
        return block

    def read_at_least(self, size: int) -> bytes:
        """A block of at least ``size`` bytes unless the file is shorter (a pipe may give
        fewer bytes than asked for)."""
        block = self.read()
        while 0 < len(block) < size and (more := self.read()):
            block += more
        return block

    def read_all(self) -> bytes:
        """The rest of the file (a workbook is read whole: openpyxl needs it all)."""
        blocks = []
        while block := self.read():
            blocks.append(block)
        return b"".join(blocks)

    def drain(self) -> None:
        """Read on (keeping nothing) as far as a refusal of the whole file could still come
        from: to the end of a pipe (its cap), or until a byte that is not blank (emptiness)."""
        while self._cap is not None or (self._check_empty and not self.content):
            if not self.read():
                break

    def close(self) -> None:
        if self._copy is not None:
            self._copy.close()
            self._copy = None


class TextReader:
    """A file's lines (``lines``), decoded as its bytes are read; ``open`` (which reads the
    first block) tells the encoding (the names of ``encoding``). ``utf8_failed``: the file
    was found not to be UTF-8 (``Redecode``): read it as GB18030 unless a BOM says
    otherwise."""

    def __init__(self, source: ByteSource, name: str, utf8_failed: Redecode | None = None) -> None:
        self.source = source
        self.name = name
        self.encoding = ""
        self._utf8_failed = utf8_failed
        self._first = b""
        self._bom = b""
        self._codec = ""
        self._what = ""

    def open(self) -> str:
        """Read the first block, decide the encoding, and return its name (FormatError for
        a UTF-32 file)."""
        self.source.rewind()
        self._first = self.source.read_at_least(4)
        for bom, label, codec, what in _BOMS:
            if self._first.startswith(bom):
                if codec is None:
                    raise FormatError(f"{self.name}:1: {what} text; save the file as UTF-8")
                self._bom, self._codec, self._what, self.encoding = bom, codec, what, label
                break
        else:
            self._codec, self.encoding = (
                ("gb18030", GB18030) if self._utf8_failed else ("utf-8", UTF8)
            )
        return self.encoding

    def lines(self) -> Iterator[str]:
        """Every line with its line break (LF, CRLF or CR: as a file opened with
        ``newline=""`` gives them; U+2028 and the like are no line break); raises Redecode
        or FormatError when the bytes say so (see the module docstring)."""
        return split_lines(self._texts())

    def _texts(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self._codec)("strict")
        block = self._first[len(self._bom) :]
        self._first = b""
        given = len(self._bom)  # bytes given to the decoder before ``block``
        lf_bytes = 0  # LF bytes among them
        lf_text = 0  # LF characters in the text decoded from them
        nul_line = 0  # the line of the first NUL character (refused once all is decoded)
        while True:
            final = not block
            pending = decoder.getstate()[0]  # the bytes of a character cut by a block's end
            try:
                text = decoder.decode(block, final)
            except UnicodeDecodeError as exc:
                raise self._failure(
                    exc,
                    pending + block,
                    given - len(pending),
                    lf_text,
                    lf_bytes - pending.count(b"\n"),
                ) from None
            given += len(block)
            lf_bytes += block.count(b"\n")
            if not self._bom and not nul_line and (nul := text.find("\x00")) >= 0:
                # refused, but only once the file is known to decode: a file that does
                # not is refused for that, as when it was decoded at once
                nul_line = lf_text + text.count("\n", 0, nul) + 1
            lf_text += text.count("\n")
            if text and not nul_line:
                yield text
            if final:
                break
            block = self.source.read()
        if nul_line:
            raise FormatError(
                f"{self.name}:{nul_line}: a NUL character (is it UTF-16 without a byte order "
                "mark?); save the file as UTF-8"
            )

    def _failure(
        self, exc: UnicodeDecodeError, data: bytes, offset: int, lf_text: int, lf_bytes: int
    ) -> Exception:
        """What a decoding error means: ``data`` (starting at byte ``offset`` of the file,
        after ``lf_text`` LF characters and ``lf_bytes`` LF bytes) failed at exc.start."""
        where = offset + exc.start
        if self._bom:
            line = lf_text + data[: exc.start].decode(self._codec, "ignore").count("\n") + 1
            what = self._what
            return FormatError(
                f"{self.name}:{line}: not {what} (byte {where}) although it starts with a "
                f"{what} byte order mark; save the file as UTF-8"
            )
        line = lf_bytes + data[: exc.start].count(b"\n") + 1  # LF is never inside a character
        if self._utf8_failed is None:
            return Redecode(where, line)
        # Where the likelier encoding stopped: the one that read further (a GBK file with
        # one damaged byte reads as GB18030 up to that byte, not as UTF-8).
        if self._utf8_failed.where > where:
            where, line = self._utf8_failed.where, self._utf8_failed.line
        return FormatError(
            f"{self.name}:{line}: not UTF-8 or GB18030 (byte {where}); save the file as UTF-8"
        )


def split_lines(texts: Iterable[str]) -> Iterator[str]:
    """The lines of a text given in pieces, each with its line break (LF, CRLF or CR), as
    io.StringIO(text, newline="") gives them: a CRLF cut between two pieces is one break."""
    partial: list[str] = []  # the start of a line whose end is in a later piece
    held = ""  # a CR ending a piece: a line break, or the start of a CRLF
    for piece in texts:
        if held:
            piece, held = held + piece, ""
        if piece.endswith("\r"):
            piece, held = piece[:-1], "\r"
        at = 0
        for match in _LINE_END.finditer(piece):
            line = piece[at : match.end()]
            if partial:
                partial.append(line)
                line = "".join(partial)
                partial.clear()
            yield line
            at = match.end()
        if at < len(piece):
            partial.append(piece[at:])
    tail = "".join(partial) + held
    if tail:
        yield tail
