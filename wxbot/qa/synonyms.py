"""Synonym groups: words that mean the same thing in customer questions (丢了 / 遗失 / 不见了).

A group's words are replaced by one index term (``~<id>``) wherever they occur, in stored
questions, answers and queries alike, so 「银行卡不见了」 and 「借记卡丢了」 become the same two
terms. Words of two or more characters are found in the normalised text before jieba cuts it
(it may cut 「不见了」 as 不见 + 了), the longest first; a single character only where jieba
kept it as a word of its own.

The groups live in ``kb_synonyms`` (seeded with knowledge/synonyms.txt by migration 0005;
edited through /admin/api/synonyms or ``wxbot kb import FILE`` for a synonyms file). A change
bumps the knowledge version with a "reload everything" change row, so every process
re-indexes with the new groups, like any other knowledge change.
"""

from __future__ import annotations

import io
import re
from collections.abc import Container, Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from wxbot.qa import store, versions
from wxbot.qa.formats import split_lines
from wxbot.qa.models import KbSynonym
from wxbot.qa.text import normalize

synonyms = KbSynonym.__table__

MAX_WORDS = 50
MAX_WORD_CHARS = 20
HEADER = "# wxbot synonyms"  # first line of a synonyms file (or "synonym" in its name)


class SynonymError(ValueError):
    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


# Between the words of a group typed as one string: whitespace, "|", and the commas and
# semicolons a Chinese keyboard types (「丢了，遗失、不见了」 is how a list is written there)
_SEPARATORS = re.compile(r"[\s|,，、;；]+")


def check_group(raw: object) -> list[str]:
    """Validated, normalised words of a group (order kept, duplicates dropped)."""
    if isinstance(raw, str):
        raw = _SEPARATORS.split(raw)
    if not isinstance(raw, list) or not all(isinstance(w, str) for w in raw):
        raise SynonymError('"words" must be a list of strings (or one string, space-separated)')
    words: list[str] = []
    for word in raw:
        norm = normalize(word).replace(" ", "")
        if not norm:
            if word.strip():
                raise SynonymError(f"the word {word!r} has no letters or digits")
            continue
        if _SEPARATORS.search(word.strip()):
            # A list item 「丢了，遗失」 or "credit card" was stored as one word 「丢了遗失」 /
            # "creditcard", which no text holds once normalised (「丢了 遗失」, "credit card"):
            # a word never found, accepted without a word. (Typed as one string, or read
            # from a file, the same text is split at these separators: several words.)
            raise SynonymError(
                f"the word {word!r} holds a separator (space, comma, 、, ; or |): give each"
                " word of the group as a word of its own"
            )
        if len(norm) > MAX_WORD_CHARS:
            raise SynonymError(f"the word {word!r} is longer than {MAX_WORD_CHARS} characters")
        if norm not in words:
            words.append(norm)
    if len(words) < 2:
        raise SynonymError("a synonym group needs at least two different words")
    if len(words) > MAX_WORDS:
        raise SynonymError(f"at most {MAX_WORDS} words per group")
    return words


def parse_text(text: str, name: str) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """(line, words) groups of a synonyms file, and ``file:line: reason`` errors."""
    groups: list[tuple[int, list[str]]] = []
    errors: list[str] = []
    # Not str.splitlines(): it also cuts at U+2028, U+0085, \x1c-\x1e, \v, \f, which may sit
    # inside a line (pasted text) and separate words there like any whitespace; cutting at
    # them would break a group in two and shift every later line number in the errors.
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            groups.append((number, check_group(line)))
        except SynonymError as exc:
            errors.append(f"{name}:{number}: {exc.reason}")
    return groups, errors


def write_text(groups: Iterable[list[str]], out: io.TextIOBase) -> int:
    """A synonyms file (what parse_text reads back): the header, then one group a line."""
    out.write(HEADER + "\n")
    count = 0
    for words in groups:
        out.write(" ".join(words) + "\n")
        count += 1
    return count


@dataclass(frozen=True)
class Group:
    id: int
    words: list[str]
    source: str

    @property
    def version(self) -> str:
        """The edit form's version and the API's ETag: changes with the words."""
        return store.content_version(self.words)

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "words": self.words, "source": self.source}


class Synonyms:
    """Finds the groups a normalised text mentions (immutable: rebuilt when groups change)."""

    def __init__(self, groups: Iterable[tuple[int, list[str]]] = ()) -> None:
        self._phrases: dict[str, tuple[str, ...]] = {}
        self._singles: dict[str, tuple[str, ...]] = {}
        self._words: dict[str, tuple[str, ...]] = {}
        lengths: set[int] = set()
        seen: set[frozenset[str]] = set()
        for gid, words in groups:
            # The same words twice (a POST retried through the API, a PUT copying another
            # group) are one group: each word standing for two tokens weighed double, and
            # moved 17 of the 84 dev rewordings' decisions when every group was doubled.
            if frozenset(words) in seen:
                continue
            seen.add(frozenset(words))
            token = f"~{gid}"
            self._words[token] = tuple(words)
            for w in words:
                target = self._singles if len(w) == 1 else self._phrases
                target[w] = (*target.get(w, ()), token)
                if len(w) > 1:
                    lengths.add(len(w))
        self._lengths = sorted(lengths, reverse=True)
        self._starts = frozenset(w[:2] for w in self._phrases)  # a cheap test per position

    def __bool__(self) -> bool:
        return bool(self._phrases or self._singles)

    def __contains__(self, word: str) -> bool:
        return word in self._phrases or word in self._singles

    def split(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """``text`` cut into (plain text, ()) and (group word, its group tokens) pieces, the
        longest group word first at each position. Latin words match only whole."""
        phrases, lengths, starts = self._phrases, self._lengths, self._starts
        if not phrases:
            return [(text, ())]
        out: list[tuple[str, tuple[str, ...]]] = []
        start = i = 0
        n = len(text)
        while i < n:
            if text[i : i + 2] not in starts:
                i += 1
                continue
            for length in lengths:
                word = text[i : i + length]
                hit = phrases.get(word) if len(word) == length else None
                if hit and (not word.isascii() or _whole(text, i, i + length)):
                    if start < i:
                        out.append((text[start:i], ()))
                    out.append((word, hit))
                    i = start = i + length
                    break
            else:
                i += 1
        if start < n:
            out.append((text[start:], ()))
        return out

    def words_of(self, token: str) -> tuple[str, ...]:
        """The words of the group a ``~id`` token stands for."""
        return self._words.get(token, ())

    def single(self, word: str) -> tuple[str, ...]:
        """The group tokens of a one-character word (empty if none)."""
        return self._singles.get(word, ())


def _whole(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


# -- storage ----------------------------------------------------------------------------------


def load(conn: Connection) -> list[Group]:
    rows = conn.execute(
        select(synonyms.c.id, synonyms.c.words, synonyms.c.source).order_by(synonyms.c.id)
    )
    return [Group(r.id, [w for w in r.words.split("|") if w], r.source) for r in rows]


def _changed(conn: Connection, now: float) -> None:
    """Bump the knowledge version; every process re-indexes everything (NULL change row)."""
    version = versions.bump_version(conn, now)
    versions.log_changes(conn, version, None, now)


def create(conn: Connection, words: object, *, now: float, source: str = "api") -> int:
    return create_once(conn, words, now=now, source=source, unique=False)[0]


def create_once(
    conn: Connection, words: object, *, now: float, source: str = "api", unique: bool = True
) -> tuple[int, bool]:
    """(group id, created): ``unique``: a group with the same words already stored is
    returned instead (a form sent twice adds one group, not two identical ones)."""
    group = check_group(words)
    version = versions.bump_version(conn, now)  # the write lock first: two sendings serialise
    if unique:
        same = next((g.id for g in load(conn) if set(g.words) == set(group)), None)
        if same is not None:
            return same, False  # nothing logged under this version: no process re-indexes
    versions.log_changes(conn, version, None, now)
    result = conn.execute(
        insert(synonyms).values(
            words="|".join(group), source=source, created_at=now, updated_at=now
        )
    )
    return int(result.inserted_primary_key[0]), True


def replace(
    conn: Connection,
    group_id: int,
    words: object,
    *,
    now: float,
    expected: Container[str] | None = None,
) -> None:
    """``expected``: the versions the caller's view may have (None: last write wins)."""
    group = check_group(words)
    _changed(conn, now)
    if expected is not None:
        _check_version(conn, group_id, expected, after=store.content_version(group))
    done = conn.execute(
        update(synonyms)
        .where(synonyms.c.id == group_id)
        .values(words="|".join(group), updated_at=now)
    )
    if done.rowcount == 0:
        raise SynonymError(f"no synonym group {group_id}", status=404)


def remove(
    conn: Connection, group_id: int, *, now: float, expected: Container[str] | None = None
) -> None:
    _changed(conn, now)
    if expected is not None:
        _check_version(conn, group_id, expected, after=None)
    done = conn.execute(delete(synonyms).where(synonyms.c.id == group_id))
    if done.rowcount == 0:
        raise SynonymError(f"no synonym group {group_id}", status=404)


def _check_version(
    conn: Connection, group_id: int, expected: Container[str], after: str | None
) -> None:
    """Refuse (412) a write decided on words that are no longer the group's, unless it
    would leave the group as it is (``after``: its version once written)."""
    row = conn.execute(select(synonyms.c.words).where(synonyms.c.id == group_id)).first()
    if row is None:
        raise SynonymError(f"no synonym group {group_id}", status=404)
    current = store.content_version([w for w in row.words.split("|") if w])
    if current not in expected and after != current:
        raise SynonymError(
            f"synonym group {group_id} changed since it was read (its version is now {current})",
            status=412,
        )


def import_groups(conn: Connection, groups: list[list[str]], *, now: float) -> tuple[int, int]:
    """Add the groups not stored yet (same set of words = the same group). (added, unchanged)"""
    existing = {frozenset(g.words) for g in load(conn)}
    new = []
    for words in groups:
        if frozenset(words) not in existing:
            existing.add(frozenset(words))
            new.append(words)
    if new:
        _changed(conn, now)
        conn.execute(
            insert(synonyms),
            [
                {"words": "|".join(w), "source": "import", "created_at": now, "updated_at": now}
                for w in new
            ],
        )
    return len(new), len(groups) - len(new)
