"""Character evidence from an entry's whole text (answer included), for ranking candidates.

The word index (index.py) finds candidates by the words of stored questions. Users' rewordings
often share more *characters* with an entry than words (segmentation splits what they share,
typos, 「挂失我的借记卡」), and often share more with its *answer* than its question
(「买理财保本吗」 vs an answer that says 「不保本」). A plain character 1–2-gram TF-IDF over
question + answer is a strong ranker on such rewordings, so the candidates are scored by it as
a ranker of its own, fused with the word ranker in kb.py:

- ``text``: cosine (log tf × idf) between the query and the entry's questions plus the start
  of its answer;
- ``question``: the same cosine against the questions alone (a question-shaped match is better
  evidence than an answer that happens to mention the words);
- ``share``: the share of the query's words (idf mass) found in the answer, a synonym group
  counting when any of its words does.

idf is the *entry*-level document frequency of a gram over questions + answer starts
(``GramStats``): common service words of answers (办理, 可以, 窗口) then weigh what they are
worth. It is kept in a fixed hashed table (2 MB whatever the size), counted over every entry
up to ``SAMPLE`` entries and over a fixed sample of entry ids beyond, scaled: exact where it
matters (small bases), cheap at 100k. Entry texts are normalised on demand for the few
candidates and cached (nothing else is kept per entry).
"""

from __future__ import annotations

import math
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple

from wxbot.qa.synonyms import Synonyms
from wxbot.qa.text import normalize

ANSWER_CHARS = 300  # the start of an answer says what it is about; the rest costs time
CACHE_ENTRIES = 20_000  # entries whose normalised text is kept (a few MB)
SAMPLE = 4_000  # entries counted exactly for document frequencies; a sample beyond
BUCKETS = 1 << 19  # hashed document-frequency table: 2 MB of uint32


Marks = Callable[[str], str]  # the synonym-group marks of a compact text (see group_marks)


def entry_text(questions: str, answer: str, marks: Marks | None = None) -> tuple[str, int]:
    """(compact text of an entry's questions + answer start, length of the questions part),
    each part followed by the marks of the synonym groups it mentions."""
    q, a = compact(questions), compact(answer[:ANSWER_CHARS])
    if marks is not None:
        q, a = q + marks(q), a + marks(a)
    return q + a, len(q)


def group_marks(synonyms: Synonyms) -> Marks:
    """One private-use character per synonym-group word in a text: 「不见了」 and 「丢了」 then
    share a character, so the character ranker sees the equivalence too (the text itself
    stays: what it shares character by character still counts)."""

    def marks(text: str) -> str:
        return "".join(
            group_mark(int(token[1:])) for _, groups in synonyms.split(text) for token in groups
        )

    return marks


# Private-use code points: normalised text never holds one (text.normalize keeps letters,
# numbers and marks), so a group's mark meets only the same group's mark.
_PRIVATE_USE = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
_PRIVATE_USE_SIZE = sum(end - start + 1 for start, end in _PRIVATE_USE)


def group_mark(group_id: int) -> str:
    """The character that stands for a synonym group (its id) in the character ranker. Past
    the first 6,400 ids, the other private-use planes (0xE000 + id reached CJK compatibility
    ideographs and letters of real scripts at id 6,400, and raised ValueError past id
    1,056,767: no lookup or index build with that group's words went through); ids past all
    137,468 of them share marks, a little evidence rather than a failure."""
    n = group_id % _PRIVATE_USE_SIZE
    for start, end in _PRIVATE_USE:
        if n <= end - start:
            return chr(start + n)
        n -= end - start + 1
    raise AssertionError("unreachable")  # n < _PRIVATE_USE_SIZE


def grams(compact: str) -> Counter[str]:
    return Counter([*compact, *(compact[i : i + 2] for i in range(len(compact) - 1))])


def compact(text: str) -> str:
    return normalize(text).replace(" ", "")


class GramStats:
    """Document frequencies of character 1–2-grams over entry texts, in a hashed table.

    Counts every entry while the base is small; when built for a base larger than SAMPLE,
    only entries whose id falls in a fixed residue class (1 in ``stride``) are counted and
    their counts scaled. Hash collisions only ever raise a rare gram's count a little. The
    bucket is a CRC-32 of the gram (``bucket``), not Python's ``hash()``: that one is salted
    per process, so collisions, and with them idf and answers, would differ between
    processes. Updates are serialised by the knowledge base's lock; readers may run
    concurrently (a stale count is harmless).
    """

    def __init__(self, expected_entries: int = 0) -> None:
        self.stride = max(1, math.ceil(expected_entries / SAMPLE))
        self.entries = 0
        self._df = array("I", bytes(4 * BUCKETS))
        self._by_count: tuple[int, list[float]] = (-1, [])  # (entries, idf of small counts)

    def sampled(self, entry_id: int) -> bool:
        return entry_id % self.stride == 0

    def add(self, entry_id: int, text: str | None) -> None:
        """Count an entry (``text`` from entry_text; only needed when it is sampled)."""
        self.entries += 1
        if text is not None and self.sampled(entry_id):
            self._count(text, 1)

    def remove(self, entry_id: int, text: str | None) -> None:
        self.entries = max(0, self.entries - 1)
        if text is not None and self.sampled(entry_id):
            self._count(text, -1)

    def _count(self, text: str, step: int) -> None:
        df = self._df
        for g in {*text, *(text[i : i + 2] for i in range(len(text) - 1))}:  # (any order)
            i = bucket(g)
            df[i] = max(0, df[i] + step)

    def idf(self, gram: str) -> float:
        """Smoothed idf: ln((1 + N) / (1 + df)) + 1, as a TF-IDF baseline computes it."""
        count = self._df[bucket(gram)]
        entries, table = self._by_count
        if entries != self.entries:  # the base changed: idf of every small count, once
            table = [self._idf(c) for c in range(256)]
            self._by_count = (self.entries, table)
        return table[count] if count < 256 else self._idf(count)

    def _idf(self, count: int) -> float:
        df = count * self.stride
        return math.log((1 + max(self.entries, df)) / (1 + df)) + 1


def bucket(gram: str) -> int:
    """The gram's slot in the document-frequency table: the same in every process (unlike
    ``hash()``, salted per process by PYTHONHASHSEED)."""
    return zlib.crc32(gram.encode("utf-8", "surrogatepass")) & (BUCKETS - 1)


class EntryText(NamedTuple):
    text: str  # questions and the start of the answer, normalised, no spaces
    cut: int  # where the answer starts in text
    norm: float  # length of the text's gram vector (idf as when it was cached)
    q_norm: float  # length of the questions' gram vector


class TextCache:
    """Normalised entry texts and their vector lengths, for recent candidates (normalising
    and weighing a text costs more than scoring it). Bounded: cleared when full. Replaced
    whenever the statistics move."""

    def __init__(
        self, idf: Callable[[str], float], marks: Marks | None = None, size: int = CACHE_ENTRIES
    ) -> None:
        self.idf = idf
        self._marks = marks
        self._size = size
        self._texts: dict[int, EntryText] = {}

    def get(self, entry_id: int, questions: str, answer: str) -> EntryText:
        text = self._texts.get(entry_id)
        if text is None:
            if len(self._texts) >= self._size:
                self._texts.clear()  # crude, but bounded and lock-free
            full, cut = entry_text(questions, answer, self._marks)
            text = self._texts[entry_id] = EntryText(full, cut, *self._norms(full, cut))
        return text

    def _norms(self, text: str, cut: int) -> tuple[float, float]:
        """Lengths of the gram vectors of ``text`` and of ``text[:cut]`` (one idf look-up per
        gram: this is most of what a candidate not asked about recently costs)."""
        idf, log = self.idf, math.log
        weights: dict[str, float] = {}
        full = 0.0
        for g, n in grams(text).items():
            w = weights[g] = idf(g)
            full += (w if n == 1 else (1 + log(n)) * w) ** 2
        questions = 0.0
        for g, n in grams(text[:cut]).items():
            w = weights[g]
            questions += (w if n == 1 else (1 + log(n)) * w) ** 2
        return math.sqrt(full), math.sqrt(questions)


class Evidence(NamedTuple):
    text: float  # character cosine with questions + answer start
    question: float  # character cosine with the questions alone
    share: float  # share of the query's words found in the answer
    language: float = 1.0  # score factor: OTHER_LANGUAGE for an entry in another language


class Reranker:
    """Scores one query against candidate entries' texts."""

    def __init__(
        self,
        query: str,
        words: Iterable[str],
        idf: Callable[[str], float],
        word_idf: Callable[[str], float],
        group_words: Callable[[str], tuple[str, ...]],
        function: frozenset[str] = frozenset(),
        function_weight: float = 1.0,
        marks: Marks | None = None,
    ) -> None:
        self._idf = idf
        self._cache: dict[str, float] = {}
        text = compact(query)
        self.query = self._weights(grams(text + marks(text) if marks else text))
        for g in function.intersection(self.query):  # the question's form, not its topic
            self.query[g] *= function_weight
        self._norm = math.sqrt(sum(w * w for w in self.query.values()))
        # each query word with its (word index) idf and the strings that stand for it
        self._words = [
            (word_idf(w), group_words(w) if w[0] == "~" else (w,)) for w in dict.fromkeys(words)
        ]
        self._mass = sum(w for w, _ in self._words)

    def _w(self, gram: str) -> float:
        w = self._cache.get(gram)
        if w is None:
            w = self._cache[gram] = self._idf(gram)
        return w

    def _weights(self, counts: Counter[str]) -> dict[str, float]:
        return {g: (1 + math.log(n)) * self._w(g) for g, n in counts.items()}

    def score(self, entry: EntryText) -> Evidence:
        ans = entry.text[entry.cut :]
        covered = sum(w for w, forms in self._words if any(f in ans for f in forms))
        share = covered / self._mass if self._mass else 0.0
        if not self._norm:
            return Evidence(0.0, 0.0, share)
        questions = entry.text[: entry.cut]
        return Evidence(
            self._cosine(entry.text, entry.norm), self._cosine(questions, entry.q_norm), share
        )

    def _cosine(self, text: str, norm: float) -> float:
        if not norm:
            return 0.0
        log, dot = math.log, 0.0
        for gram, w in self.query.items():
            n = text.count(gram)  # in C: cheaper than keeping every entry's grams
            if n:
                dot += w * (1 + log(n)) * self._w(gram)
        return dot / (norm * self._norm)
