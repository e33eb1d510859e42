"""A sparse BM25 index over question terms, in plain Python arrays, with incremental updates.

Each question (alias) is one document; documents belong to entries. A term's postings are one
``array`` of document ids (ascending, because ids only grow); term frequency is binary, so the
BM25 weight is idf × one number per document. 100k questions cost tens of MB, not hundreds.

Search stays fast at 100k+ documents because common terms are not scanned: query terms are
taken rarest first and their postings accumulated until a budget is spent; the remaining
(common, low-idf) terms are then added only for the best candidates, by binary search in
their sorted posting arrays. Candidates are finally re-ranked by an idf-weighted Dice overlap of
the query's and the question's term sets, which is also the confidence in [0, 1]: BM25 scores
are unbounded and not comparable across queries, the overlap is.

Updates: deleting marks documents dead (skipped when ranking, their df is given back); adding
appends. Dead postings cost memory until the next full rebuild (``dead_fraction`` tells when).
Not thread-safe for concurrent writers: the owner serialises updates with a lock; readers may
run concurrently with an update (arrays and dicts are only appended to / set, never shrunk).
"""

from __future__ import annotations

import bisect
import heapq
import math
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from wxbot.qa.text import WEAK

K1 = 1.2
B = 0.75
SCAN_BUDGET = 3_000  # postings scanned exhaustively per query before switching to lookups
RESCORE_CANDIDATES = 64  # candidates that get the common terms' contribution by lookup
RERANK = 12  # best BM25 candidates re-ranked by overlap (at least; more for a larger limit)


@dataclass(frozen=True)
class Hit:
    entry_id: int
    doc_id: int
    bm25: float
    confidence: float  # the ranking score (the overlap here; the KB adds re-ranking evidence)
    overlap: float = 0.0  # idf-weighted Dice overlap of query and best question terms, 0..1


class Bm25Index:
    def __init__(
        self,
        down_weighted: frozenset[str] = frozenset(),
        down_weight: float = 1.0,
        group_weight: float = 1.0,
    ) -> None:
        # Terms whose idf is scaled by down_weight (function words: see text.STOPWORDS).
        self._down = down_weighted
        self._down_weight = down_weight
        # Synonym-group terms (``~id``) stand for a whole word with its characters and
        # bigrams on the other side, so one of them weighs group_weight x its idf.
        self._group_weight = group_weight
        self._post_docs: dict[str, array] = {}
        self._dead_df: dict[str, int] = {}  # postings of dead documents, per term
        self._doc_entry = array("q")
        self._doc_len = array("i")
        self._doc_w = array("f")  # the BM25 tf part of every term of the document
        self._doc_terms: list[tuple[str, ...]] = []  # unique terms, for the overlap
        self._alive = bytearray()
        self._entry_docs: dict[int, tuple[int, ...]] = {}
        self._n_alive = 0
        self._len_alive = 0

    # -- updates ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_alive

    @property
    def documents(self) -> int:
        """Documents indexed since the index was built, the dead ones included."""
        return len(self._alive)

    @property
    def dead_fraction(self) -> float:
        total = len(self._alive)
        return 0.0 if total == 0 else 1.0 - self._n_alive / total

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._entry_docs

    def entry_count(self) -> int:
        return len(self._entry_docs)

    def add_entry(self, entry_id: int, questions_terms: Iterable[list[str]]) -> None:
        """Index an entry's questions (each a list of terms); replaces any earlier version."""
        if entry_id in self._entry_docs:
            self.remove_entry(entry_id)
        docs = tuple(self._add_doc(entry_id, terms) for terms in questions_terms if terms)
        if docs:
            self._entry_docs[entry_id] = docs

    def _add_doc(self, entry_id: int, terms: list[str]) -> int:
        doc = len(self._alive)
        # Term frequency is binary: questions are short and a repeated term is more often
        # an artefact of tokenising (a word and its own characters) than emphasis. So one
        # weight per document, and a posting is just a document id (half the memory).
        unique = tuple(dict.fromkeys(map(sys.intern, terms)))  # shared string objects
        dl = len(unique)
        self._n_alive += 1
        self._len_alive += dl
        # The length normalisation uses the average length at insertion time; it drifts a
        # little as the base grows and is exact again after a rebuild.
        norm = K1 * (1 - B + B * dl / (self._len_alive / self._n_alive))
        # The document's own arrays first, postings last: a concurrent search that finds the
        # new id in a posting list can then always look the document up.
        self._doc_entry.append(entry_id)
        self._doc_len.append(dl)
        self._doc_w.append((K1 + 1) / (1 + norm))
        self._doc_terms.append(unique)
        self._alive.append(1)
        post_docs = self._post_docs
        for t in unique:
            docs = post_docs.get(t)
            if docs is None:
                docs = post_docs[t] = array("i")
            docs.append(doc)
        return doc

    def remove_entry(self, entry_id: int) -> bool:
        docs = self._entry_docs.pop(entry_id, None)
        if docs is None:
            return False
        dead_df = self._dead_df
        for doc in docs:
            if not self._alive[doc]:
                continue
            self._alive[doc] = 0
            self._n_alive -= 1
            self._len_alive -= self._doc_len[doc]
            for t in self._doc_terms[doc]:
                dead_df[t] = dead_df.get(t, 0) + 1
        return True

    # -- search ----------------------------------------------------------------------------

    def df(self, term: str) -> int:
        docs = self._post_docs.get(term)
        return 0 if docs is None else len(docs) - self._dead_df.get(term, 0)

    def idf(self, term: str) -> float:
        df = self.df(term)
        idf = math.log(1 + (self._n_alive - df + 0.5) / (df + 0.5))
        if term[0] == "~":
            return idf * self._group_weight
        if term[0] == WEAK:  # a group word's own word or character: see text.WEAK
            return idf * self._down_weight
        return idf * self._down_weight if term in self._down else idf

    def search(
        self, query_terms: list[str], limit: int = 5, *, soft: Iterable[str] = ()
    ) -> list[Hit]:
        """Best entries for the query (one hit per entry), best first.

        ``soft`` terms count only where a question has them (see Analyzer.query).
        """
        if not query_terms or self._n_alive == 0:
            return []
        unique = list(dict.fromkeys(query_terms))
        idf = {t: self.idf(t) for t in unique}
        post_docs, doc_w = self._post_docs, self._doc_w
        soft_known = {t: self.idf(t) for t in soft if t not in idf and t in post_docs}
        # Rarest first; terms as rare as each other in a fixed order (the term itself), so the
        # scores add up in the same order, and the same terms fit the budget, however the
        # caller ordered them (a set of strings iterates in a per-process order).
        known = sorted(
            (t for t in (*unique, *soft_known) if t in post_docs),
            key=lambda t: (len(post_docs[t]), t),
        )
        weights = {**idf, **soft_known}
        acc: dict[int, float] = {}
        scanned = 0
        rest: list[str] = []
        for i, t in enumerate(known):
            docs = post_docs[t]
            # The rarest term is always scanned; more only while within the budget.
            if i > 0 and scanned + len(docs) > SCAN_BUDGET:
                rest = known[i:]
                break
            w_idf = weights[t]
            get = acc.get
            for d in docs:
                acc[d] = get(d, 0.0) + w_idf * doc_w[d]
            scanned += len(docs)
        alive = self._alive
        if rest:
            # Tuples compare in C: much faster than nlargest(key=...) over thousands.
            cands = [
                d
                for _, d in heapq.nlargest(RESCORE_CANDIDATES, zip(acc.values(), acc, strict=True))
            ]
            for t in rest:
                docs, w_idf = post_docs[t], weights[t]
                n = len(docs)
                for d in cands:
                    j = bisect.bisect_left(docs, d)
                    if j < n and docs[j] == d:
                        acc[d] += w_idf * doc_w[d]
            scored = [(acc[d], d) for d in cands]
        else:
            scored = list(zip(acc.values(), acc, strict=True))
        pool = max(RERANK, limit + limit // 2)
        top = [d for _, d in heapq.nlargest(pool + 8, scored) if alive[d]][:pool]
        q_mass = sum(idf.values())
        best: dict[int, Hit] = {}
        for d in top:
            d_mass = 0.0
            shared = 0.0
            extra = 0.0  # soft terms this question has
            for t in self._doc_terms[d]:
                w = idf.get(t)
                if w is None:
                    w = soft_known.get(t)
                    if w is None:
                        d_mass += self.idf(t)
                        continue
                    extra += w
                d_mass += w
                shared += w
            total = q_mass + extra + d_mass
            conf = 2 * shared / total if total else 0.0
            entry = self._doc_entry[d]
            old = best.get(entry)
            if old is None or (conf, acc[d]) > (old.overlap, old.bm25):
                best[entry] = Hit(entry, d, acc[d], conf, conf)
        ranked = sorted(best.values(), key=lambda h: (h.confidence, h.bm25), reverse=True)
        return ranked[:limit]

    def postings_count(self) -> int:
        """Total postings held (alive and dead): a rough size measure for the benchmark."""
        return sum(len(a) for a in self._post_docs.values())

    def vocabulary_size(self) -> int:
        return len(self._post_docs)
