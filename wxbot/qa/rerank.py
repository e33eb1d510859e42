"""Character evidence over an entry's whole text, for re-ranking the index's candidates.

The index ranks by words (and their characters) of the stored questions. Users' rewordings
often share more with the *answer* than with the question (「买理财保本吗」 vs an answer that
says 「不保本」), and segmentation can split what they share. So the best candidates are
re-scored by the cosine of character unigrams and bigrams (log tf x idf) between the query and
the entry's questions plus the start of its answer: the measure a plain TF-IDF baseline uses,
here only on a dozen candidates, computed on the fly (nothing more is kept in memory).

idf comes from the question index (a gram no question has counts as rare).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable

from wxbot.qa.text import normalize

ANSWER_CHARS = 300  # the start of an answer says what it is about; the rest costs time


def grams(compact: str) -> Counter[str]:
    return Counter([*compact, *(compact[i : i + 2] for i in range(len(compact) - 1))])


def compact(text: str) -> str:
    return normalize(text).replace(" ", "")


class CharScorer:
    """Cosine of one query against candidate entries' texts."""

    def __init__(self, query: str, idf: Callable[[str], float]) -> None:
        self._idf = idf
        self._cache: dict[str, float] = {}
        self.query = self._weights(grams(compact(query)))
        self._norm = math.sqrt(sum(w * w for w in self.query.values()))

    def _w(self, gram: str) -> float:
        w = self._cache.get(gram)
        if w is None:
            w = self._cache[gram] = self._idf(gram)
        return w

    def _weights(self, counts: Counter[str]) -> dict[str, float]:
        return {g: (1 + math.log(n)) * self._w(g) for g, n in counts.items()}

    def score(self, questions: Iterable[str], answer: str) -> float:
        if not self._norm:
            return 0.0
        text = compact(" ".join(questions)) + " " + compact(answer[:ANSWER_CHARS])
        doc = self._weights(grams(text.replace(" ", "")))
        norm = math.sqrt(sum(w * w for w in doc.values()))
        if not norm:
            return 0.0
        dot = sum(w * doc.get(g, 0.0) for g, w in self.query.items())
        return dot / (norm * self._norm)
