r"""Text: blocks of one or more ``Q:`` lines, optionally an ``L: en`` line, then an ``A:`` line;
the answer continues on the following lines until the next ``Q:``. ``#`` starts a comment
line; full-width colons and ``问:``/``语言:``/``答:`` work too; markers and ``#`` count only
at the start of a line.

Escaping (what the writer does so that any answer reads back exactly):

* An answer line (after the first) that starts with ``Q:`` or ``#``, after any spaces, is
  written with one more space in front; the reader takes one space off such a line (one
  that starts with a space, then any spaces, then ``Q:``/``问:`` or ``#``). Other lines,
  and other leading whitespace, are read as they are.
* An answer's line breaks (LF) are the file's. An answer holding a carriage return (CR:
  typed in a Windows text box, or from a CSV cell) is written after ``A\:`` (``答\:``)
  instead of ``A:``: in such an answer ``\r`` stands for a CR and ``\\`` for a backslash
  (any other backslash is itself). Older readers refuse an ``A\:`` block rather than
  misread it; in ``A:`` answers a backslash is never special.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator

from wxbot.qa.formats.records import MISSING, Item, Parsed, Record, split_lines

_L_RE = re.compile(r"^(?:l|语言)\s*[:：]\s?(.*)$", re.IGNORECASE)
# Markers count only at the very start of a line: an indented "Q:" is answer text.
_Q_RE = re.compile(r"^(?:q|问)\s*[:：]\s?(.*)$", re.IGNORECASE)
_A_RE = re.compile(r"^(?:a|答)\s*(\\?)[:：]\s?(.*)$", re.IGNORECASE)  # "A\:": escaped (CRs)
# An answer line that would read as a question or a comment, after any spaces: the writer
# indents it by one more space, the reader takes that space off (no "^": matched from pos 1).
_SHIFTED = re.compile(r" *(?:#|(?:q|问)\s*[:：])", re.IGNORECASE)
_UNESCAPE = re.compile(r"\\([\\r])")
_BREAKS = re.compile(r"\r\n|\r|\n")  # (records.split_lines cuts a file at these only)


def parse(text: str, name: str) -> Parsed:
    out = Parsed()
    out.records = list(read(split_lines(text), name, out))
    return out


def read(lines: Iterable[str], name: str, out: Parsed) -> Iterator[Record]:
    """The records of a file's ``lines`` (with or without their line breaks), as they are
    read; errors are added to ``out.errors``."""
    questions: list[object] = []
    answer: list[str] | None = None
    escaped = False
    language: object = MISSING
    start = 0

    def finish() -> Record | None:
        nonlocal questions, answer, language
        record = None
        if questions and answer is None:
            out.errors.append(f"{name}:{start}: question(s) without an A: line")
        elif questions and answer is not None:
            text = "\n".join(answer).strip()
            if escaped:
                text = _UNESCAPE.sub(lambda m: "\r" if m.group(1) == "r" else "\\", text)
            record = Record(questions, text, name, start, language)
        questions, answer, language = [], None, MISSING
        return record

    for number, raw in enumerate(lines, 1):
        raw = raw.rstrip("\r\n")  # (a line holds one line break, at its end)
        if raw.startswith("#"):
            continue
        q = _Q_RE.match(raw)
        if q:
            if answer is not None and (record := finish()) is not None:
                yield record
            if not questions:
                start = number
            questions.append(q.group(1))
            continue
        lang = _L_RE.match(raw) if questions and answer is None else None
        if lang:
            language = lang.group(1).strip() or None
            continue
        a = _A_RE.match(raw)
        if a and answer is None:
            if not questions:
                out.errors.append(f"{name}:{number}: A: line without a Q: line before it")
                continue
            answer, escaped = [a.group(2)], bool(a.group(1))
            continue
        if answer is not None:
            if raw.startswith(" ") and _SHIFTED.match(raw, 1):
                raw = raw[1:]  # indented by the writer: not a question or a comment
            answer.append(raw)  # the answer goes on until the next Q:
        elif raw.strip():
            where = "between Q: and A:" if questions else "outside a Q:/A: block"
            out.errors.append(f"{name}:{number}: unexpected text {where}: {raw.strip()[:40]!r}")
    if (record := finish()) is not None:
        yield record


def write(items: Iterable[Item], out: io.TextIOBase) -> int:
    """Write entries as Q:/A: blocks; returns the number written."""
    count = 0
    for it in items:
        if count:
            out.write("\n")
        out.writelines(f"Q: {_one_line(q)}\n" for q in it.questions)
        if it.language:
            out.write(f"L: {it.language}\n")
        marker, answer = "A:", it.answer
        if "\r" in answer:  # a CR would read back as a line break: escape it
            marker, answer = "A\\:", answer.replace("\\", "\\\\").replace("\r", "\\r")
        lines = answer.split("\n")
        # Lines that would read back as a question or a comment are indented by one space.
        lines[1:] = [" " + ln if _SHIFTED.match(ln) else ln for ln in lines[1:]]
        out.write(f"{marker} " + "\n".join(lines) + "\n")
        count += 1
    return count


def _one_line(text: str) -> str:
    """A question on its Q: line: only the line breaks the reader cuts at become spaces (a
    question of the API or a JSONL file may hold one). Tabs and runs of spaces stay, so the
    question reads back as it was; they were collapsed to one space before."""
    return _BREAKS.sub(" ", text)
