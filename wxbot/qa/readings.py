"""Kana readings of the kanji words in Japanese text, so that a question typed in kana
(「そうりょう」, 「へんぴん」) can meet one stored in kanji (送料, 返品).

Optional: pykakasi (``pip install 'wxbot[japanese]'``; GPL-3.0-or-later, so it is not a plain
dependency of this MIT project, and 120 MB of dictionary in every process that reads
Japanese). Without it ``readings`` returns nothing and the word index works as before.

Normalised text is simplified Chinese where traditional and Japanese forms differ (「予約」 is
予约 after ``text.normalize``), and pykakasi knows only Japanese and traditional forms, so its
characters are first turned back, one for one, into their traditional or Japanese forms
(opencc's tables; pykakasi folds traditional variants such as 會 / 條 to 会 / 条 itself).
The readings are the analyzer's (text.Analyzer.spelled); a query never needs pykakasi.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

MIN_READING = 3  # kana: shorter readings (ひ, かい, びん) sit inside too many kana strings
# Kanji of words that are grammar however they are written, and usually written in kana
# (出来ます, 下さい, 頂けます, 致します, 幾ら, 御座います, 宜しく, 有る / 無い, 為る, 成る, 居る,
# 言う, 良い, 何時, 何処, 所, 事, 物, 迄, 等, 位, 程, 頃): a word made of these alone gets no
# reading, or every query's 「ください」 or 「できますか」 would meet the one question that
# spells it in kanji. Japanese and simplified forms alike (normalised text is simplified).
_GRAMMAR_KANJI = frozenset(
    "出来下頂顶戴致幾几御座宜有無无為为成居言良何処处故時时事物所迄等位程頃顷又及並并是非其此彼然"
)
_IDEOGRAPH_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
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
