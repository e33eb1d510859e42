"""Which text encoding a knowledge file is in, decided from its bytes alone.

Operators' files come from Chinese Windows machines as often as from anywhere: Excel saves a
CSV as GBK (「CSV（逗号分隔）」), as UTF-8 with a BOM (「CSV UTF-8」) or, as 「Unicode 文本」,
as tab-separated UTF-16 LE with a BOM. The rule, in this order (deterministic, no guessing
from statistics):

1. a byte order mark decides: UTF-8 (EF BB BF), UTF-16 LE (FF FE) or UTF-16 BE (FE FF);
   UTF-32 marks are refused (FF FE 00 00 is UTF-32 LE, not UTF-16 text starting with NUL);
2. bytes that are valid UTF-8 are UTF-8, always (ASCII included);
3. otherwise bytes that are valid GB18030 (a superset of GBK and GB2312) are GB18030;
4. otherwise the file is refused, naming the line and byte where reading stopped.

A file without a BOM whose text holds a NUL character is refused too: that is UTF-16
without a BOM, which would otherwise read as valid UTF-8 full of NULs.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from wxbot.qa.formats.records import FormatError

UTF8 = "UTF-8"
UTF8_BOM = "UTF-8 with BOM"
UTF16_LE = "UTF-16 LE"
UTF16_BE = "UTF-16 BE"
GB18030 = "GB18030"

# (mark, name in the summary, Python codec, name in an error); codec None: refused
_BOMS: tuple[tuple[bytes, str, str | None, str], ...] = (
    # UTF-32 LE before UTF-16 LE: its mark starts with the same two bytes
    (codecs.BOM_UTF32_LE, "UTF-32 LE", None, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE", None, "UTF-32"),
    (codecs.BOM_UTF8, UTF8_BOM, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, UTF16_LE, "utf-16-le", UTF16_LE),
    (codecs.BOM_UTF16_BE, UTF16_BE, "utf-16-be", UTF16_BE),
)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # one of the names above, as the import summary says it


def decode_text(data: bytes, name: str) -> Decoded:
    """``data`` as text (without its BOM), and the encoding it was read in; FormatError
    ("name:line: reason") when it is in none of them."""
    for bom, label, codec, what in _BOMS:
        if not data.startswith(bom):
            continue
        if codec is None:
            raise FormatError(f"{name}:1: {what} text; save the file as UTF-8")
        body = data[len(bom) :]
        try:
            return Decoded(body.decode(codec), label)
        except UnicodeDecodeError as exc:
            line = body[: exc.start].decode(codec, "ignore").count("\n") + 1
            raise FormatError(
                f"{name}:{line}: not {what} (byte {len(bom) + exc.start}) although it starts "
                f"with a {what} byte order mark; save the file as UTF-8"
            ) from None
    try:
        text, label = data.decode("utf-8"), UTF8
    except UnicodeDecodeError as utf8_error:
        try:
            text, label = data.decode("gb18030"), GB18030
        except UnicodeDecodeError as gb_error:
            # Name where the likelier encoding stopped: the one that read further (a GBK
            # file with one damaged byte reads as GB18030 up to that byte, not as UTF-8).
            where = max(utf8_error.start, gb_error.start)
            line = data[:where].count(b"\n") + 1  # LF is never inside a UTF-8 or GB character
            raise FormatError(
                f"{name}:{line}: not UTF-8 or GB18030 (byte {where}); save the file as UTF-8"
            ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise FormatError(
            f"{name}:{line}: a NUL character (is it UTF-16 without a byte order mark?); "
            "save the file as UTF-8"
        )
    return Decoded(text, label)


def head_text(data: bytes) -> str:
    """The start of a file as text, leniently (its first line is sniffed, e.g. for
    ``# wxbot synonyms``); never raises."""
    for bom, _label, codec, _what in _BOMS:
        if data.startswith(bom):
            return "" if codec is None else data[len(bom) :].decode(codec, "ignore")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut by the end of the head
            return data[: exc.start].decode("utf-8")
    return data.decode("gb18030", "ignore")
