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


class EntryText(NamedTuple):
    questions: str  # normalised, no spaces, all questions run together
    answer: str  # normalised, no spaces, the first ANSWER_CHARS characters


def entry_text(questions: Iterable[str], answer: str) -> EntryText:
    return EntryText(compact("".join(questions)), compact(answer[:ANSWER_CHARS]))


class TextCache:
    """Normalised entry texts of recent candidates (normalising costs more than scoring)."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._size = size
        self._texts: dict[int, EntryText] = {}

    def get(self, entry_id: int, questions: Iterable[str], answer: str) -> EntryText:
        text = self._texts.get(entry_id)
        if text is None:
            if len(self._texts) >= self._size:
                self._texts.clear()  # crude, but bounded and lock-free
            text = self._texts[entry_id] = entry_text(questions, answer)
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

    def score(self, text: EntryText) -> tuple[float, float]:
        ans = text.answer
        covered = sum(w for w, forms in self._words if any(f in ans for f in forms))
        share = covered / self._mass if self._mass else 0.0
        if not self._norm:
            return 0.0, share
        doc = self._weights(grams(text.questions + ans))
        norm = math.sqrt(sum(w * w for w in doc.values()))
        if not norm:
            return 0.0, share
        dot = sum(w * doc.get(g, 0.0) for g, w in self.query.items())
        return dot / (norm * self._norm), share
