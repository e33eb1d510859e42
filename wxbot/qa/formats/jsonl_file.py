"""JSON Lines: one object per line, ``{"question": "...", "answer": "..."}`` or
``{"questions": ["...", "..."], "answer": "..."}``, optionally ``"similar": [...]`` and
``"language": "en"``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator

from wxbot.qa.formats.records import MISSING, Item, Parsed, Record, split_lines


def parse(text: str, name: str) -> Parsed:
    out = Parsed()
    out.records = list(read(split_lines(text), name, out))
    return out


def read(lines: Iterable[str], name: str, out: Parsed) -> Iterator[Record]:
    """The records of a file's ``lines`` (with or without their line breaks), as they are
    read; errors are added to ``out.errors``."""
    for number, raw in enumerate(lines, 1):
        raw = raw.rstrip("\r\n")  # (a line holds one line break, at its end)
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            out.errors.append(f"{name}:{number}: invalid JSON ({exc.msg})")
            continue
        except RecursionError:
            out.errors.append(f"{name}:{number}: invalid JSON (nested too deeply)")
            continue
        except ValueError:
            # Python refuses integers of more than 4,300 digits (int_max_str_digits)
            out.errors.append(f"{name}:{number}: invalid JSON (a number too long)")
            continue
        if not isinstance(obj, dict):
            out.errors.append(f"{name}:{number}: expected a JSON object")
            continue
        unknown = set(obj) - {"question", "questions", "similar", "answer", "language", "id"}
        if unknown:
            out.errors.append(f"{name}:{number}: unknown field(s) {', '.join(sorted(unknown))}")
            continue
        if ("question" in obj) == ("questions" in obj):
            out.errors.append(f'{name}:{number}: give exactly one of "question" or "questions"')
            continue
        if "answer" not in obj:
            out.errors.append(f'{name}:{number}: missing "answer"')
            continue
        qs = obj["questions"] if "questions" in obj else [obj["question"]]
        similar = obj.get("similar", [])
        if not isinstance(qs, list) or not isinstance(similar, list):
            out.errors.append(f'{name}:{number}: "questions" must be a list of strings')
            continue
        language = obj.get("language", MISSING)
        yield Record([*qs, *similar], obj["answer"], name, number, language)


def write(items: Iterable[Item], out: io.TextIOBase) -> int:
    """Write entries as JSON Lines; returns the number written."""
    count = 0
    for it in items:
        obj: dict[str, object] = {"questions": it.questions, "answer": it.answer}
        if it.language:
            obj["language"] = it.language
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        count += 1
    return count
