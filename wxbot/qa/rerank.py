"""Evidence from an entry's whole text (answer included), for re-ranking the index's candidates.

The index ranks by words (and their characters) of the stored questions. Users' rewordings
often share more with the *answer* than with the question (「买理财保本吗」 vs an answer that
says 「不保本」), and segmentation can split what they share. So the best candidates are
re-scored by the cosine of character unigrams and bigrams (log tf x idf) between the query and
the entry's questions plus the start of its answer: the measure a plain TF-IDF baseline uses,
here only on a dozen candidates, computed on the fly (nothing more is kept in memory).

The answer also counts on its own, as weak evidence: the share of the query's words (idf
mass) that occur in it, a synonym group counting when any of its words does. Both are computed
on the fly for the few candidates: answers need no index (no memory, no start-up time).

idf comes from the question index (a gram no question has counts as rare).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import NamedTuple

from wxbot.qa.text import normalize

ANSWER_CHARS = 300  # the start of an answer says what it is about; the rest costs time
CACHE_ENTRIES = 20_000  # entries whose normalised text is kept (a few MB)
CACHE_GRAMS = 100_000  # idf values kept (~10 MB)


class EntryText(NamedTuple):
    text: str  # questions and the start of the answer, normalised, no spaces
    answer: str  # the start of the answer alone
    norm: float  # length of the text's gram vector (idf as when it was cached)


class TextCache:
    """Normalised entry texts and their vector lengths, for recent candidates (normalising
    and weighing a text costs more than scoring it); idf of grams, shared by all queries.
    Bounded: cleared when full. Replaced whenever the index is (idf moves with it)."""

    def __init__(self, idf: Callable[[str], float], size: int = CACHE_ENTRIES) -> None:
        self._index_idf = idf
        self._size = size
        self._texts: dict[int, EntryText] = {}
        self._idf: dict[str, float] = {}

    def idf(self, gram: str) -> float:
        w = self._idf.get(gram)
        if w is None:
            if len(self._idf) >= CACHE_GRAMS:
                self._idf.clear()
            w = self._idf[gram] = self._index_idf(gram)
        return w

    def get(self, entry_id: int, questions: str, answer: str) -> EntryText:
        text = self._texts.get(entry_id)
        if text is None:
            if len(self._texts) >= self._size:
                self._texts.clear()  # crude, but bounded and lock-free
            ans = compact(answer[:ANSWER_CHARS])
            full = compact(questions) + ans
            idf = self.idf
            norm = math.sqrt(sum(((1 + math.log(n)) * idf(g)) ** 2 for g, n in grams(full).items()))
            text = self._texts[entry_id] = EntryText(full, ans, norm)
        return text

    def forget(self, entry_id: int) -> None:
        self._texts.pop(entry_id, None)


def grams(compact: str) -> Counter[str]:
    return Counter([*compact, *(compact[i : i + 2] for i in range(len(compact) - 1))])


def compact(text: str) -> str:
    return normalize(text).replace(" ", "")


class Reranker:
    """Scores one query against candidate entries' texts: (character cosine, answer share)."""

    def __init__(
        self,
        query: str,
        words: Iterable[str],
        idf: Callable[[str], float],
        group_words: Callable[[str], tuple[str, ...]],
    ) -> None:
        self._idf = idf
        self._cache: dict[str, float] = {}
        self.query = self._weights(grams(compact(query)))
        self._norm = math.sqrt(sum(w * w for w in self.query.values()))
        # each query word with its idf and the strings that stand for it in an answer
        self._words = [
            (self._w(w), group_words(w) if w[0] == "~" else (w,)) for w in dict.fromkeys(words)
        ]
        self._mass = sum(w for w, _ in self._words)

    def _w(self, gram: str) -> float:
        w = self._cache.get(gram)
        if w is None:
            w = self._cache[gram] = self._idf(gram)
        return w

    def _weights(self, counts: Counter[str]) -> dict[str, float]:
        return {g: (1 + math.log(n)) * self._w(g) for g, n in counts.items()}

    def score(self, entry: EntryText) -> tuple[float, float]:
        ans = entry.answer
        covered = sum(w for w, forms in self._words if any(f in ans for f in forms))
        share = covered / self._mass if self._mass else 0.0
        if not self._norm or not entry.norm:
            return 0.0, share
        text, log = entry.text, math.log
        dot = 0.0
        for gram, w in self.query.items():
            n = text.count(gram)  # in C: cheaper than keeping every entry's grams
            if n:
                dot += w * (1 + log(n)) * self._w(gram)
        return dot / (entry.norm * self._norm), share
