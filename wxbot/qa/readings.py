"""Kana readings of the kanji words in Japanese text, so that a question typed in kana
(「そうりょう」, 「へんぴん」) can meet one stored in kanji (送料, 返品).

Optional: pykakasi (``pip install 'wxbot[japanese]'``; GPL-3.0-or-later, so it is not a plain
dependency of this MIT project, and 120 MB of dictionary in every process that reads
Japanese). Without it ``readings`` returns nothing and the word index works as before.

Normalised text is simplified Chinese where traditional and Japanese forms differ (「予約」 is
予约 after ``text.normalize``), and pykakasi knows only Japanese and traditional forms, so its
characters are first turned back, one for one, into their traditional or Japanese forms
(opencc's tables; pykakasi folds traditional variants such as 會 / 條 to 会 / 条 itself).
``Spellings`` keeps the readings of one index's Japanese questions (freshness.py builds and
updates it with the index), so a query's kana can be matched to them; a query never needs
pykakasi.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from wxbot.qa.text import _IDEOGRAPH_RE, _TO_HIRAGANA
from wxbot.qa.text import _KANA_RE as KANA
from wxbot.qa.text import _RUN_RE as RUN

MIN_READING = 3  # kana: shorter readings (ひ, かい, びん) sit inside too many kana strings
MAX_READING = 10  # kana: longer stretches of a query are not tried
# Kanji of words that are grammar however they are written, and usually written in kana
# (出来ます, 下さい, 頂けます, 致します, 幾ら, 御座います, 宜しく, 有る / 無い, 為る, 成る, 居る,
# 言う, 良い, 何時, 何処, 所, 事, 物, 迄, 等, 位, 程, 頃): a word made of these alone gets no
# reading, or every query's 「ください」 or 「できますか」 would meet the one question that
# spells it in kanji. Japanese and simplified forms alike (normalised text is simplified).
_GRAMMAR_KANJI = frozenset(
    "出来下頂顶戴致幾几御座宜有無无為为成居言良何処处故時时事物所迄等位程頃顷又及並并是非其此彼然"
)
_KANA_CHARS = "".join(map(chr, range(0x3040, 0x3100)))


class _Reader:
    def __init__(self) -> None:
        import pykakasi

        self._kakasi = pykakasi.kakasi()
        self._japanese = _japanese_forms()

    def __call__(self, normalized: str) -> list[tuple[str, str]]:
        text = normalized.translate(self._japanese)  # same length: positions agree
        out: list[tuple[str, str]] = []
        at = 0
        for part in self._kakasi.convert(text):
            reading, word = part["hira"], part["orig"]
            found = text.find(word, at)
            if found < 0:
                continue
            at = found + len(word)
            if len(reading) < MIN_READING or not _IDEOGRAPH_RE.search(word):
                continue
            word = normalized[found:at]
            if _GRAMMAR_KANJI.issuperset(_IDEOGRAPH_RE.findall(word)):
                continue
            out.append((reading, word))
            # and without the kana that follow its kanji (確認し → 確認, かくにん), as they
            # change with the form of the verb
            tail = len(word) - len(word.rstrip(_KANA_CHARS))
            if tail and reading.endswith(word[-tail:]) and len(reading) - tail >= MIN_READING:
                out.append((reading[:-tail], word[:-tail]))
        return out


def _japanese_forms() -> dict[int, str]:
    """Simplified character -> its Japanese form (予约 -> 予約, 确认 -> 確認, 录 -> 録): opencc's
    traditional character (the first it lists), then its Japanese variant where it has one
    (錄 -> 録). One character for one: the text keeps its length."""
    import opencc

    folder = Path(opencc.__file__).with_name("dictionary")

    def table(name: str) -> dict[str, str]:
        pairs = {}
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            source, _, targets = line.partition("\t")
            target = targets.split(" ")[0]
            if len(source) == 1 and len(target) == 1 and source != target:
                pairs[source] = target
        return pairs

    japanese = table("JPVariants.txt")
    return {ord(s): japanese.get(t, t) for s, t in table("STCharacters.txt").items()}


_reader: _Reader | None = None
_missing = False
_lock = threading.Lock()


def _get() -> _Reader | None:
    global _reader, _missing
    if _reader is None and not _missing:
        with _lock:
            if _reader is None and not _missing:
                try:
                    _reader = _Reader()
                except ImportError:
                    _missing = True
    return _reader


def available() -> bool:
    """Is pykakasi installed (readings are given)?"""
    return _get() is not None


def readings(normalized: str) -> list[tuple[str, str]]:
    """(hiragana reading, word) of each kanji word of a normalised Japanese text whose
    reading has ``MIN_READING`` kana or more, in order, the word as it is in the text
    (simplified); none without pykakasi. Kanji spellings of grammar (下さい, 出来ます,
    頂けます: _GRAMMAR_KANJI) are left out: their kana are in most questions."""
    reader = _get()
    return reader(normalized) if reader is not None else []


class Spelled(NamedTuple):
    """What a query's kana spell: the kanji words (for the word index) and the query with
    those kana written as the first of them (for a ranker that compares characters; the
    same object when nothing is spelled)."""

    words: list[str]
    text: str


class Spellings:
    """The kana readings of the kanji words of one index's Japanese questions (「へんぴん」 →
    返品, 「そうりょう」 → 送料), and the words a query's kana spell out. Not kana grams of
    readings: こう, しょう, かい sit in every other word and in the endings a query's
    hiragana is made of (why hiragana grams are weak terms); whole readings of MIN_READING
    kana or more, longest first. Counted per entry, so an edit that removes a word removes
    its reading: a process that has applied edits for months holds exactly what one that
    read the base afresh does, and scores a query alike. Written under the index's lock;
    read concurrently (every store replaces a whole tuple)."""

    def __init__(self) -> None:
        self._words: dict[str, tuple[str, ...]] = {}  # reading -> its words, sorted
        self._entries: dict[str, Counter[str]] = {}  # reading -> word -> entries with it
        self._by_entry: dict[int, list[tuple[str, str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._words)

    def set_entry(self, entry_id: int, questions: Iterable[str]) -> None:
        """The entry's normalised questions (a Chinese one has no kana: never read)."""
        self.remove_entry(entry_id)
        pairs = list(
            dict.fromkeys(
                pair
                for q in questions
                if KANA.search(q) and _IDEOGRAPH_RE.search(q)
                for pair in readings(q)
            )
        )
        if pairs:
            self._by_entry[entry_id] = pairs
        for reading, word in pairs:
            counts = self._entries.setdefault(reading, Counter())
            counts[word] += 1
            if counts[word] == 1:
                self._store(reading, counts)

    def remove_entry(self, entry_id: int) -> None:
        for reading, word in self._by_entry.pop(entry_id, ()):
            counts = self._entries[reading]
            counts[word] -= 1
            if not counts[word]:
                del counts[word]
                self._store(reading, counts)

    def _store(self, reading: str, counts: Counter[str]) -> None:
        # sorted, not in the order learnt: the choice among homophones (交換 / 好感) must not
        # depend on the order the entries came in
        if counts:
            self._words[reading] = tuple(sorted(counts))
        else:
            del self._entries[reading]
            self._words.pop(reading, None)

    def spell(self, normalized: str) -> Spelled:
        """The kanji words that the text's kana spell out, longest reading first from left to
        right (「よやくしたしょうひん」 → 予约, 商品: normalised, so simplified), every word of
        a reading the base writes several ways; and the text with those kana written as the
        first word of each (in code-point order). One pass over the kana for both."""
        words: list[str] = []
        pieces: list[str] = []
        done = 0
        for match in self._kana_runs(normalized):
            for i, j, found in self._spell(match.group()):
                words.extend(found)
                pieces.append(normalized[done : match.start() + i])
                pieces.append(found[0])
                done = match.start() + j
        return Spelled(words, "".join(pieces) + normalized[done:] if pieces else normalized)

    def spelled(self, normalized: str) -> list[str]:
        """The kanji words that the text's kana spell out (``spell``)."""
        return self.spell(normalized).words

    def respell(self, normalized: str) -> str:
        """The text with the kana that spell a kanji word written as that word (``spell``)."""
        return self.spell(normalized).text

    def _kana_runs(self, normalized: str) -> list[re.Match[str]]:
        if not self._words or not KANA.search(normalized):
            return []
        return [m for m in RUN.finditer(normalized) if KANA.match(m.group())]

    def _spell(self, run: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, words) of each stretch of a kana run that spells a reading."""
        words_of = self._words
        folded = run.translate(_TO_HIRAGANA)
        found: list[tuple[int, int, tuple[str, ...]]] = []
        i = 0
        while i <= len(run) - MIN_READING:
            for j in range(min(len(run), i + MAX_READING), i + MIN_READING - 1, -1):
                words = words_of.get(folded[i:j])
                if words:
                    found.append((i, j, words))
                    i = j
                    break
            else:
                i += 1
        return found
