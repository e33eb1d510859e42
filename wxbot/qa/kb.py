"""The per-process knowledge base: an in-memory index kept fresh from the database.

The hot path for a question is ``refresh_if_stale(conn)`` — one indexed read of the version
row — then ``lookup(text)`` in memory (answers are held in memory too, so answering needs no
further query). When another process changed the knowledge, the changed entries are read and
re-indexed before answering, so an answer taught anywhere is used everywhere on the next
message. Only a full rebuild of a large index (an import of thousands of rows) happens in a
background thread, the old index answering meanwhile. Hit counts are summed in memory and
written in batches (``maybe_flush_hits``).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, inspect

from wxbot.qa import store
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.embeddings import Semantic, load_vectors
from wxbot.qa.index import Bm25Index, Hit
from wxbot.qa.rerank import Evidence, GramStats, Reranker, TextCache, entry_text, group_marks
from wxbot.qa.synonyms import Synonyms
from wxbot.qa.text import (
    STOPWORD_WEIGHT,
    STOPWORDS,
    Analyzer,
    get_analyzer,
    normalize,
    question_key,
)

log = logging.getLogger(__name__)


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
GROUP_WEIGHT = 2.0  # a synonym group's term weighs this x its idf (see Bm25Index)
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
INCREMENTAL_LIMIT = 5_000  # more changed entries than this: rebuild the whole index
BACKGROUND_REBUILD_OVER = 5_000  # entries; a larger index is rebuilt in a background thread
FLUSH_EVERY_HITS = 2000  # or FLUSH_EVERY_SECONDS, whichever comes first
FLUSH_EVERY_SECONDS = 30.0


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


class _Snapshot(NamedTuple):
    """Everything the index is built from, read in one go."""

    rows: dict[int, tuple[str, list[str]]]
    languages: dict[int, str]
    synonyms: Synonyms
    questions: dict[int, str]  # filled by _build: questions joined by newlines
    vectors: dict[str, Any]  # question key -> unit vector (with an embedding service)


class KnowledgeBase:
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
        self.engine = engine
        self.analyzer = analyzer or get_analyzer()
        self.confident = confident
        self.suggest = suggest
        self.margin = margin
        self.sure = sure
        self.tie = tie
        self.floor = floor
        self.weights = weights
        self.semantic = semantic
        # an entry's questions joined by newlines (one string: lean), for re-ranking and
        # did-you-mean titles
        self._questions: dict[int, str] = {}
        self._synonyms = Synonyms()
        self._languages: dict[int, str] = {}
        self.clock = clock
        self.version = -1  # nothing loaded yet
        self._index = _new_index()
        self._stats = GramStats()
        self._texts = TextCache(self._stats.idf, group_marks(self._synonyms))
        self._answers: dict[int, str] = {}
        self._lock = threading.Lock()  # serialises index updates
        self._hits_lock = threading.Lock()
        self._checked = threading.local()
        self._rebuilt = threading.Event()  # cleared while a background rebuild runs
        self._rebuilt.set()  # the transaction whose version this thread read
        self._hits: Counter[int] = Counter()
        self._last_flush = time.monotonic()

    # -- freshness -----------------------------------------------------------------------------

    def load_at_start(self) -> None:
        """Load the index now (start-up), unless the schema does not exist yet."""
        if self.engine is None:
            return
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("kb_meta"):
                    return  # `wxbot init-db` not run yet: the first request loads
                self.refresh_if_stale(conn)
        except Exception:  # start-up must not fail on it: the first request retries
            log.exception("loading the knowledge base at start-up failed")

    def version_column(self) -> Any:
        """The knowledge version as a labelled scalar subquery (``kb_version``), for the
        engine to read in the same round trip as the user's context."""
        return store.version_subquery().label("kb_version")

    def refresh_if_stale(self, conn: Connection, version: int | None = None) -> bool:
        """Catch up with the database if it moved on. ``version``: already read by the caller
        (e.g. folded into the engine's context query); then no query is made here. Called again
        in the same transaction, it does nothing: one version read per message at most.

        Returns True if anything was reloaded.
        """
        tx = conn.get_transaction()
        seen = getattr(self._checked, "tx", None)
        if version is None and tx is not None and seen is not None and seen() is tx:
            return False  # already checked in this transaction (e.g. by the engine)
        current = store.read_version(conn) if version is None else version
        if tx is not None:
            self._checked.tx = weakref.ref(tx)
        if current == self.version:
            return False
        with self._lock:
            if current == self.version:
                return False
            changed = None
            if 0 <= self.version < current:  # (a lower version: the database was replaced)
                changed = store.changed_since(conn, self.version, INCREMENTAL_LIMIT)
            if changed is not None:
                self._apply(conn, changed)
            elif self._rebuild_in_background():
                return False  # the current index serves until the new one is ready
            else:
                self._swap(self._build(self._read_all(conn)))
            self.version = current
        return True

    def _read_all(self, conn: Connection) -> _Snapshot:
        groups = synonym_store.load(conn)
        rows = store.load_entries(conn)
        vectors = {}
        if self.semantic is not None:
            keys = (question_key(q) for _, qs in rows.values() for q in qs)
            vectors = load_vectors(conn, self.semantic.client.model, keys)
        return _Snapshot(
            rows,
            store.load_languages(conn),
            Synonyms((g.id, g.words) for g in groups),
            {},
            vectors,
        )

    def _build(self, snap: _Snapshot) -> _Built:
        started = time.monotonic()
        index = _new_index()
        stats = GramStats(len(snap.rows))
        answers: dict[int, str] = {}
        for entry_id, (answer, qs) in snap.rows.items():
            self._index_entry(index, entry_id, answer, qs, snap.synonyms)
            answers[entry_id] = answer
            joined = snap.questions[entry_id] = "\n".join(qs)
            stats.add(entry_id, _sampled_text(stats, entry_id, joined, answer, snap.synonyms))
        rows = len(snap.rows)
        log.info("knowledge index: %d entries in %.2fs", rows, time.monotonic() - started)
        return _Built(index, stats, answers, snap)

    def _index_entry(
        self, index: Bm25Index, entry_id: int, answer: str, qs: list[str], syn: Synonyms
    ) -> None:
        terms = self.analyzer.terms
        index.add_entry(entry_id, [terms(normalize(q), syn) for q in qs])

    def _swap(self, built: _Built) -> None:
        index, stats, answers, snap = built
        # Whole objects: a concurrent reader keeps using the old, consistent set.
        self._index, self._stats, self._answers = index, stats, answers
        self._languages, self._synonyms = snap.languages, snap.synonyms
        self._questions = snap.questions
        self._texts = TextCache(stats.idf, group_marks(snap.synonyms))
        if self.semantic is not None:
            questions = {e: qs for e, (_, qs) in snap.rows.items()}
            if self.semantic.rebuild(questions, snap.vectors):
                self.semantic.fill_in_background()

    def _rebuild_in_background(self) -> bool:
        """Rebuild a large index in a thread (True), or tell the caller to do it now (False).

        Rebuilding 100k entries takes seconds; inside a request that would hold the user's
        lock (on SQLite: everyone's) that long. Small bases are rebuilt in the request, so
        a change reaches them on the very next message. Call with self._lock held.
        """
        if self.engine is None or len(self._answers) <= BACKGROUND_REBUILD_OVER:
            return False
        if not self._rebuilt.is_set():
            return True  # already under way
        self._rebuilt.clear()
        threading.Thread(target=self._rebuild_now, name="wxbot-kb-rebuild", daemon=True).start()
        return True

    def _rebuild_now(self) -> None:
        try:
            assert self.engine is not None
            with self.engine.connect() as conn:
                version = store.read_version(conn)
                snap = self._read_all(conn)
            built = self._build(snap)  # outside any transaction
            with self._lock:
                self._swap(built)
                self.version = version  # later changes follow incrementally
        except Exception:
            log.exception("rebuilding the knowledge index failed; the next message retries")
        finally:
            self._rebuilt.set()

    def wait_until_rebuilt(self, timeout: float | None = None) -> bool:
        """Wait for a background rebuild (tests, benchmarks)."""
        return self._rebuilt.wait(timeout)

    def _apply(self, conn: Connection, changed: set[int]) -> None:
        rows = store.load_entries(conn, changed)
        languages = store.load_languages(conn, changed)
        stats, syn = self._stats, self._synonyms
        for entry_id in changed:
            if entry_id in self._answers:  # its old text leaves the statistics
                old = self._questions[entry_id], self._answers[entry_id]
                stats.remove(entry_id, _sampled_text(stats, entry_id, *old, syn))
            row = rows.get(entry_id)
            if row is not None:
                new = "\n".join(row[1]), row[0]
                stats.add(entry_id, _sampled_text(stats, entry_id, *new, syn))
        self._texts = TextCache(stats.idf, group_marks(self._synonyms))  # idf moved
        for entry_id in changed:
            row = rows.get(entry_id)
            if row is None:  # deleted
                self._index.remove_entry(entry_id)
                self._answers.pop(entry_id, None)
                self._languages.pop(entry_id, None)
                self._questions.pop(entry_id, None)
                continue
            answer, qs = row
            self._index_entry(self._index, entry_id, answer, qs, self._synonyms)
            self._answers[entry_id] = answer
            self._questions[entry_id] = "\n".join(qs)
            if entry_id in languages:
                self._languages[entry_id] = languages[entry_id]
            else:
                self._languages.pop(entry_id, None)
        if self.semantic is not None:
            for entry_id in changed - rows.keys():
                self.semantic.index.remove_entry(entry_id)
            if self.semantic.load(conn, {e: qs for e, (_, qs) in rows.items()}):
                self.semantic.fill_in_background()
        # Updated entries leave dead postings behind: compact now and then.
        compact = self._index.dead_fraction > 0.5 and len(self._answers) > 1000
        if compact and not self._rebuild_in_background():
            self._swap(self._build(self._read_all(conn)))

    # -- matching ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._answers)

    def search(self, text: str, limit: int = 5, language: str | None = None) -> list[Hit]:
        """Ranked hits whatever their confidence (evaluation, admin tools, LLM grounding).

        The word index proposes RERANK_POOL candidates; each is scored by both rankers and
        the evidence fused (WEIGHTS) into ``confidence``. With ``language``, entries in another
        language score OTHER_LANGUAGE x their score (entries without one are for everyone)."""
        w = self.weights
        rescored = []
        for h, ev in self.evidence(text, limit, language):
            score = w.overlap * h.overlap + w.text * ev.text + w.question * ev.question
            score += w.share * ev.share
            rescored.append(replace(h, confidence=score * ev.language))
        rescored.sort(key=lambda h: (h.confidence, h.bm25), reverse=True)
        return rescored[:limit]

    def evidence(
        self, text: str, limit: int = 5, language: str | None = None
    ) -> list[tuple[Hit, Evidence]]:
        """The candidates of the word index, each with the character rankers' evidence
        (unfused: search() adds it up; benchmarks/calibrate.py fits the weights on it)."""
        index, languages = self._index, self._languages
        answers, questions, syn = self._answers, self._questions, self._synonyms
        normalized = normalize(text)
        q = self.analyzer.query(normalized, syn)
        hits = index.search(q.terms, max(limit + 1, RERANK_POOL), soft=q.soft)
        if not hits:
            return []
        texts = self._texts
        function = self.analyzer.function_grams(normalized)
        rerank = Reranker(
            text,
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
        ``best`` is None and the entries scoring SUGGEST or more are offered.
        """
        pool = RERANK_POOL if self.semantic is not None else max(suggestions, 2)
        hits = self.search(text, limit=pool, language=language)
        sure = bool(hits) and self._sure(hits)
        near = self._semantic(text, language) if self.semantic is not None and not sure else None
        if near:
            return self._fused(hits, near, suggestions)
        hits = hits[: max(suggestions, 2)]
        matches = [m for m in map(self._match, hits) if m is not None]
        if hits and self.answers(hits) and matches and matches[0].entry_id == hits[0].entry_id:
            return Lookup(matches[0])
        return Lookup(None, tuple(m for m in matches if m.confidence >= self.suggest)[:suggestions])

    def is_stored_question(self, text: str) -> bool:
        """Is ``text`` (normalised, spaces aside) one of the questions stored for its best
        hit? Lets a caller with its own routing (flow keywords) give way to the knowledge
        base when a user asks exactly what an entry answers."""
        hits = self.search(text, limit=1)
        if not hits:
            return False
        key = question_key(text)
        stored = self._questions.get(hits[0].entry_id, "").split("\n")
        return bool(key) and any(question_key(q) == key for q in stored)

    def answers(self, hits: list[Hit]) -> bool:
        """Is the best of these ranked hits confident enough to answer? (See CONFIDENT.)"""
        top = hits[0].confidence
        lead = top - max(hits[1].confidence if len(hits) > 1 else 0.0, self.floor)
        if lead < self.tie:
            return False
        return top >= self.sure or (top >= self.confident and lead >= self.margin)

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

    def _fused(self, hits: list[Hit], near: list[tuple[int, float]], suggestions: int) -> Lookup:
        assert self.semantic is not None
        lexical_answers = bool(hits) and self.answers(hits)
        decision = self.semantic.fusion.decide(hits, near, lexical_answers, self.suggest)
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
        words = self.analyzer.query(normalize(text), syn).words
        return {w for w in words if w not in STOPWORDS and w not in syn}

    # -- hit counters --------------------------------------------------------------------------

    def flush_due(self) -> bool:
        """Would maybe_flush_hits write now? (So callers schedule a write only when due.)"""
        pending = sum(self._hits.values())
        if not pending:
            return False
        due = time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS
        return due or pending >= FLUSH_EVERY_HITS

    def record_hit(self, entry_id: int) -> None:
        with self._hits_lock:
            self._hits[entry_id] += 1

    def maybe_flush_hits(self, conn: Connection, force: bool = False) -> int:
        """Write summed hit counts when enough piled up or enough time passed.

        Runs in the caller's transaction (on SQLite a second connection would wait for the
        write lock that very transaction holds). Counts of a crashed process are lost: they
        are statistics, not data.
        """
        pending = sum(self._hits.values())
        if not pending:
            return 0
        due = time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS
        if not (force or due or pending >= FLUSH_EVERY_HITS):
            return 0
        with self._hits_lock:
            hits, self._hits = self._hits, Counter()
            self._last_flush = time.monotonic()
        try:
            store.add_hits(conn, dict(hits), self.clock())
        except Exception:
            with self._hits_lock:
                self._hits.update(hits)  # keep them for the next try
            raise
        return sum(hits.values())

    def flush_hits_now(self) -> None:
        """Write pending hit counts in a transaction of their own (shutdown, CLI)."""
        if self.engine is None or not self._hits:
            return
        try:
            with self.engine.begin() as conn:
                self.maybe_flush_hits(conn, force=True)
        except Exception:  # at shutdown the database may be gone: statistics, not data
            log.warning("could not write %d pending hit counts", sum(self._hits.values()))


def _new_index() -> Bm25Index:
    return Bm25Index(STOPWORDS, STOPWORD_WEIGHT, GROUP_WEIGHT)


class _Built(NamedTuple):
    index: Bm25Index
    stats: GramStats
    answers: dict[int, str]
    snap: _Snapshot


def _sampled_text(
    stats: GramStats, entry_id: int, questions: str, answer: str, syn: Synonyms
) -> str | None:
    """An entry's text for the gram statistics, normalised only if they count it."""
    if not stats.sampled(entry_id):
        return None
    return entry_text(questions, answer, group_marks(syn))[0]
