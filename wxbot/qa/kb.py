"""The per-process knowledge base: an in-memory index kept fresh from the database.

The hot path for a question is ``refresh_if_stale(conn)`` — one indexed read of the version
row — then ``lookup(text)`` in memory (answers are held in memory too, so answering needs no
further query). When another process changed the knowledge, the changed entries are read and
re-indexed before answering, so an answer taught anywhere is used everywhere on the next
message. Only a full rebuild of a large index (an import of thousands of rows) happens in a
background thread, the old index answering meanwhile (freshness.py). Hit counts are summed in
memory and written in batches (``maybe_flush_hits``, hits.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from sqlalchemy import Connection, Engine

from wxbot.qa.embeddings import Semantic
from wxbot.qa.explain import LEARNED, WORDS, Explanation, Trace, explanation
from wxbot.qa.freshness import FreshIndex
from wxbot.qa.hits import HitCounter
from wxbot.qa.index import Hit
from wxbot.qa.models import MAX_QUESTION_CHARS
from wxbot.qa.rerank import Evidence, Reranker, group_marks
from wxbot.qa.text import (
    STOPWORD_WEIGHT,
    STOPWORDS,
    Analyzer,
    get_analyzer,
    normalize,
    question_key,
)


class Weights(NamedTuple):
    """How the rankers' evidence adds up to a candidate's score."""

    overlap: float  # word ranker: idf-weighted Dice overlap with the best question
    text: float  # character cosine with questions + answer start
    question: float  # character cosine with the questions alone
    share: float  # share of the query's words found in the answer


# Ranking: a candidate's score fuses the word ranker (overlap) with the character ranker
# (rerank.py); the weights were fitted on the development sets only (benchmarks/calibrate.py).
WEIGHTS = Weights(overlap=0.44, text=1.0, question=0.26, share=0.23)
RERANK_POOL = 12  # candidates of the word index scored by both rankers
# The decision (chosen on the development sets only: benchmarks/calibrate.py prints the
# trade-off): answer the best entry when its score is CONFIDENT and it leads the runner-up
# by MARGIN, or when it is SURE (near-identical); never when the runner-up is within TIE
# (two entries that fit equally well are a question to ask back). The runner-up scores at
# least RUNNER_UP_FLOOR, the score of a typical entry that does not answer a question (the
# median of dev questions whose entry was removed): a tiny base, with no real runner-up,
# does not turn half a match into a sure one.
CONFIDENT = 0.52
MARGIN = 0.15
SURE = 1.2
TIE = 0.05
RUNNER_UP_FLOOR = 0.38
SUGGEST = 0.3  # "did you mean" at or above this
# With semantic retrieval (embeddings.py), fusion.py decides from both rankings.
OTHER_LANGUAGE = 0.5  # score factor for an entry in another language than the user's
# A question is matched by its first MAX_QUERY_CHARS characters: the longest a stored question
# can be. Matching costs time in proportion to the text (normalising, cutting, a character
# ranker over its every gram and candidate): a 64 KiB message (~21,000 characters) took
# 0.3-0.5 s of the worker's CPU, the GIL held, against 7 ms for a p99 question at 100k
# entries; and a text that long is no question of the base anyway.
MAX_QUERY_CHARS = MAX_QUESTION_CHARS


@dataclass(frozen=True)
class Match:
    entry_id: int
    question: str  # the entry's main question
    answer: str
    confidence: float


@dataclass(frozen=True)
class Lookup:
    best: Match | None  # confident enough to answer
    suggestions: tuple[Match, ...] = ()  # near misses worth offering


class KnowledgeBase(FreshIndex):
    """Matching against the in-memory index (freshness.py) and the one answering decision."""

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        analyzer: Analyzer | None = None,
        confident: float = CONFIDENT,
        suggest: float = SUGGEST,
        margin: float = MARGIN,
        sure: float = SURE,
        tie: float = TIE,
        floor: float = RUNNER_UP_FLOOR,
        weights: Weights = WEIGHTS,
        semantic: Semantic | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(engine, analyzer or get_analyzer(), semantic)
        self.confident = confident
        self.suggest = suggest
        self.margin = margin
        self.sure = sure
        self.tie = tie
        self.floor = floor
        self.weights = weights
        self.hits = HitCounter(engine, clock)

    # -- matching ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._answers)

    def search(self, text: str, limit: int = 5, language: str | None = None) -> list[Hit]:
        """Ranked hits whatever their confidence (evaluation, admin tools, LLM grounding).

        The word index proposes RERANK_POOL candidates; each is scored by both rankers and
        the evidence fused (WEIGHTS) into ``confidence``. With ``language``, entries in another
        language score OTHER_LANGUAGE x their score (entries without one are for everyone)."""
        return self._search(text, limit, language, None)

    def _search(
        self, text: str, limit: int, language: str | None, trace: Trace | None
    ) -> list[Hit]:
        """search(); with a ``trace`` (explain), every candidate scored is noted in it with
        its evidence, the ones past ``limit`` too."""
        w = self.weights
        rescored = []
        scored = self.evidence(text, limit, language)
        for h, ev in scored:
            score = w.overlap * h.overlap + w.text * ev.text + w.question * ev.question
            score += w.share * ev.share
            rescored.append(replace(h, confidence=score * ev.language))
        rescored.sort(key=lambda h: (h.confidence, h.bm25), reverse=True)
        if trace is not None:
            trace.words(rescored, scored)
        return rescored[:limit]

    def evidence(
        self, text: str, limit: int = 5, language: str | None = None
    ) -> list[tuple[Hit, Evidence]]:
        """The candidates of the word index, each with the character rankers' evidence
        (unfused: search() adds it up; benchmarks/calibrate.py fits the weights on it)."""
        # The text cache first: an update assigns it last (freshness.py), so a cache read
        # here was made for the entries read below. Read after them, it could be a new
        # cache filled with an entry's text from before the update, kept until the next one.
        texts = self._texts
        index, languages = self._index, self._languages
        answers, questions, syn = self._answers, self._questions, self._synonyms
        text = text[:MAX_QUERY_CHARS]
        normalized = normalize(text)
        # kana that spell a kanji word of the base (「へんぴん」): that word's terms come along,
        # and the character ranker compares the kana as that word (返品)
        spelled = self._spellings.spell(normalized)
        q = self.analyzer.query(normalized, syn, spelled.words)
        hits = index.search(q.terms, max(limit + 1, RERANK_POOL), soft=q.soft)
        if not hits:
            return []
        function = self.analyzer.function_grams(normalized)
        rerank = Reranker(
            text if spelled.text is normalized else spelled.text,
            q.words,
            texts.idf,
            index.idf,
            syn.words_of,
            function,
            STOPWORD_WEIGHT,
            group_marks(syn),
        )
        out = []
        for h in hits:
            entry = h.entry_id
            ev = rerank.score(texts.get(entry, questions.get(entry, ""), answers.get(entry, "")))
            if language and languages.get(entry, language) != language:
                ev = ev._replace(language=OTHER_LANGUAGE)
            out.append((h, ev))
        return out

    def lookup(self, text: str, suggestions: int = 3, language: str | None = None) -> Lookup:
        """Match a question against the in-memory index (no database access).

        The one place that decides between answering and not (see ``answers``). Otherwise
        ``best`` is None and the entries scoring SUGGEST or more are offered. A wording
        learned from did-you-mean picks answers its entry when asked exactly, before any
        ranking (which never sees it: freshness.LearnedKeys).
        """
        return self._lookup(text, suggestions, language, None)

    def explain(self, text: str, language: str | None = None, suggestions: int = 3) -> Explanation:
        """The decision ``lookup`` makes for ``text`` (the very same: one code path), with
        what it was made from: the ranked candidates and their evidence, the semantic
        similarities where meaning was asked, the thresholds (explain.py). In memory; no hit
        is counted."""
        trace = Trace()
        found = self._lookup(text, suggestions, language, trace)
        return explanation(self, text[:MAX_QUERY_CHARS], language, found, trace)

    def _lookup(
        self, text: str, suggestions: int, language: str | None, trace: Trace | None
    ) -> Lookup:
        """lookup(); with a ``trace`` (explain), what the decision was made from is noted in
        it on the way (the decision itself does not look at it)."""
        if self.semantic is not None:  # questions left without a vector by a failed job
            self.semantic.retry_missing()
        text = text[:MAX_QUERY_CHARS]
        learned = self._learned_match(text)
        if learned is not None:
            if trace is not None:
                trace.by = LEARNED
            return Lookup(learned)
        pool = RERANK_POOL if self.semantic is not None else max(suggestions, 2)
        hits = self._search(text, pool, language, trace)
        sure = bool(hits) and self._sure(hits)
        near = self._semantic(text, language) if self.semantic is not None and not sure else None
        if trace is not None:
            trace.meaning(self.semantic is not None, sure, near)
        if near:
            return self._fused(hits, near, suggestions, trace)
        hits = hits[: max(suggestions, 2)]
        matches = [m for m in map(self._match, hits) if m is not None]
        if trace is not None:
            trace.by = WORDS
            trace.lead = self._lead(hits) if hits else None
        if hits and self.answers(hits) and matches and matches[0].entry_id == hits[0].entry_id:
            return Lookup(matches[0])
        return Lookup(None, tuple(m for m in matches if m.confidence >= self.suggest)[:suggestions])

    def is_stored_question(self, text: str) -> bool:
        """Is ``text`` (normalised, spaces aside) a learned wording of an entry, or one of
        the questions stored for its best hit? Lets a caller with its own routing (flow
        keywords) give way to the knowledge base when a user asks exactly what an entry
        answers."""
        text = text[:MAX_QUERY_CHARS]
        if self._learned_match(text) is not None:
            return True
        hits = self.search(text, limit=1)
        return bool(hits) and self.has_question(hits[0].entry_id, text)

    def has_question(self, entry_id: int, text: str) -> bool:
        """Is ``text`` (normalised) one of the questions entry ``entry_id`` has now (learned
        wordings included)?"""
        key = question_key(text)
        if not key:
            return False
        if self._learned.get(key) == entry_id:
            return entry_id in self._answers
        stored = self._questions.get(entry_id, "").split("\n")
        return any(question_key(q) == key for q in stored)

    def _learned_match(self, text: str) -> Match | None:
        """The entry ``text`` is a learned wording of (exactly, once normalised), if any:
        sure by definition (``sure``)."""
        learned = self._learned
        if not len(learned):
            return None
        entry_id = learned.get(question_key(text))
        return None if entry_id is None else self._entry(entry_id, self.sure)

    def answers(self, hits: list[Hit]) -> bool:
        """Is the best of these ranked hits confident enough to answer? (See CONFIDENT.)"""
        top = hits[0].confidence
        lead = self._lead(hits)
        if lead < self.tie:
            return False
        return top >= self.sure or (top >= self.confident and lead >= self.margin)

    def _lead(self, hits: list[Hit]) -> float:
        """How far the best hit leads the runner-up, or RUNNER_UP_FLOOR if that is higher."""
        return hits[0].confidence - max(hits[1].confidence if len(hits) > 1 else 0.0, self.floor)

    def _sure(self, hits: list[Hit]) -> bool:
        return hits[0].confidence >= self.sure and self.answers(hits)

    def _semantic(self, text: str, language: str | None) -> list[tuple[int, float]]:
        assert self.semantic is not None
        near = self.semantic.query(text, RERANK_POOL)
        if language and self._languages:
            near = [
                (e, c if self._languages.get(e, language) == language else c * OTHER_LANGUAGE)
                for e, c in near
            ]
            near.sort(key=lambda item: -item[1])
        return near

    def _fused(
        self,
        hits: list[Hit],
        near: list[tuple[int, float]],
        suggestions: int,
        trace: Trace | None = None,
    ) -> Lookup:
        assert self.semantic is not None
        lexical_answers = bool(hits) and self.answers(hits)
        decision = self.semantic.fusion.decide(hits, near, lexical_answers, self.suggest)
        if trace is not None:
            trace.fused(self.semantic.fusion, hits, near, lexical_answers, decision)
        chosen = (
            None if decision.answer is None else self._entry(decision.answer, decision.confidence)
        )
        if chosen is not None:
            return Lookup(chosen)
        offered = (self._entry(e, c) for e, c in decision.offered)
        return Lookup(None, tuple(m for m in offered if m is not None)[:suggestions])

    def _match(self, hit: Hit) -> Match | None:
        return self._entry(hit.entry_id, hit.confidence)

    def entry(self, entry_id: int) -> Match | None:
        return self._entry(entry_id, 1.0)

    def title(self, entry_id: int) -> str:
        """The entry's main question ("" if it has none now)."""
        return self._questions.get(entry_id, "").partition("\n")[0]

    def thresholds(self) -> dict[str, object]:
        """The decision's values in force (explain)."""
        return {
            "confident": self.confident,
            "suggest": self.suggest,
            "margin": self.margin,
            "sure": self.sure,
            "tie": self.tie,
            "floor": self.floor,
            "other_language": OTHER_LANGUAGE,
            "weights": self.weights._asdict(),
        }

    def _entry(self, entry_id: int, confidence: float) -> Match | None:
        answer = self._answers.get(entry_id)
        if answer is None:
            return None
        title = self._questions.get(entry_id, "").partition("\n")[0]
        return Match(entry_id, title, answer, confidence)

    def answer(self, conn: Connection, text: str) -> str | None:
        """Refresh, match, count the hit: the answer text or None (simple callers)."""
        self.refresh_if_stale(conn)
        found = self.lookup(text).best
        if found is None:
            return None
        self.record_hit(found.entry_id)
        self.maybe_flush_hits(conn)
        return found.answer

    def content_terms(self, text: str) -> set[str]:
        """Words and synonym groups of a text, function words and words a group stands for
        left out (grouping questions)."""
        syn = self._synonyms
        normalized = normalize(text[:MAX_QUERY_CHARS])
        spelled = self._spellings.spelled(normalized)
        words = self.analyzer.query(normalized, syn, spelled).words
        return {w for w in words if w not in STOPWORDS and w not in syn}

    # -- hit counters (hits.py) ----------------------------------------------------------------

    def flush_due(self) -> bool:
        """Would maybe_flush_hits write now? (So callers schedule a write only when due.)"""
        return self.hits.due()

    def record_hit(self, entry_id: int) -> None:
        self.hits.record(entry_id)

    def maybe_flush_hits(self, conn: Connection, force: bool = False) -> int:
        """Write summed hit counts when due, in the caller's transaction (HitCounter.flush)."""
        return self.hits.flush(conn, force)

    def flush_hits_now(self) -> None:
        """Write pending hit counts in a transaction of their own (shutdown, CLI)."""
        self.hits.flush_now()
