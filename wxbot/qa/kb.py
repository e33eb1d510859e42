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
from wxbot.qa.embeddings import Semantic, VectorIndex, load_vectors
from wxbot.qa.index import Bm25Index, Hit
from wxbot.qa.rerank import Reranker, TextCache
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

# The decision (chosen on the development sets only: benchmarks/calibrate.py prints the
# trade-off). Scores are question overlap + ANSWER_WEIGHT x answer coverage.
CONFIDENT = 0.52  # answer at or above this score ...
MARGIN = 0.18  # ... when the runner-up is at least this far behind
SURE = 1.2  # answer whatever the runner-up (near-identical questions)
SUGGEST = 0.3  # "did you mean" at or above this
ANSWER_WEIGHT = 0.1  # x the share of the query's words found in the answer (rerank.py)
CHAR_WEIGHT = 1.0  # x the character cosine over question and answer (see rerank.py)
RERANK_POOL = 8  # candidates re-scored by characters
GROUP_WEIGHT = 2.0  # a synonym group's term weighs this x its idf (see Bm25Index)
# With an embedding service (embeddings.py): the two rankings are fused by reciprocal rank,
# and a semantic match alone answers when its cosine is EMBED_CONFIDENT with EMBED_MARGIN
# over the next entry (values for bge-m3-like models; see the README to recalibrate).
RRF_K = 60
EMBED_CONFIDENT = 0.75
EMBED_MARGIN = 0.05
EMBED_SUGGEST = 0.6
OTHER_LANGUAGE = 0.5  # score factor for an entry in another language than the user's
INCREMENTAL_LIMIT = 5_000  # more changed entries than this: rebuild the whole index
BACKGROUND_REBUILD_OVER = 5_000  # entries; a larger index is rebuilt in a background thread
FLUSH_EVERY_HITS = 200
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
        answer_weight: float = ANSWER_WEIGHT,
        char_weight: float = CHAR_WEIGHT,
        semantic: Semantic | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.analyzer = analyzer or get_analyzer()
        self.confident = confident
        self.suggest = suggest
        self.margin = margin
        self.sure = sure
        self.answer_weight = answer_weight
        self.char_weight = char_weight
        self.semantic = semantic
        # an entry's questions joined by newlines (one string: lean), for re-ranking and
        # did-you-mean titles
        self._questions: dict[int, str] = {}
        self._synonyms = Synonyms()
        self._languages: dict[int, str] = {}
        self.clock = clock
        self.version = -1  # nothing loaded yet
        self._index = _new_index()
        self._texts = TextCache(self._index.idf)
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
                self._swap(*self._build(self._read_all(conn)))
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

    def _build(self, snap: _Snapshot) -> tuple[Bm25Index, dict[int, str], _Snapshot]:
        started = time.monotonic()
        index = _new_index()
        answers: dict[int, str] = {}
        for entry_id, (answer, qs) in snap.rows.items():
            self._index_entry(index, entry_id, answer, qs, snap.synonyms)
            answers[entry_id] = answer
            snap.questions[entry_id] = "\n".join(qs)
        rows = len(snap.rows)
        log.info("knowledge index: %d entries in %.2fs", rows, time.monotonic() - started)
        return index, answers, snap

    def _index_entry(
        self, index: Bm25Index, entry_id: int, answer: str, qs: list[str], syn: Synonyms
    ) -> None:
        terms = self.analyzer.terms
        index.add_entry(entry_id, [terms(normalize(q), syn) for q in qs])

    def _swap(self, index: Bm25Index, answers: dict[int, str], snap: _Snapshot) -> None:
        # Whole objects: a concurrent reader keeps using the old, consistent set.
        self._index, self._answers = index, answers
        self._languages, self._synonyms = snap.languages, snap.synonyms
        self._questions, self._texts = snap.questions, TextCache(index.idf)
        if self.semantic is not None:
            vectors = VectorIndex()
            missing = False
            for entry_id, joined in snap.questions.items():
                keys = [question_key(q) for q in joined.split("\n")]
                vectors.set_entry(entry_id, {k: snap.vectors[k] for k in keys if k in snap.vectors})
                missing = missing or any(k not in snap.vectors for k in keys)
            self.semantic.index = vectors
            if missing:
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
                self._swap(*built)
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
        self._texts = TextCache(self._index.idf)  # idf moved
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
        if self.semantic is not None:
            for entry_id in changed - rows.keys():
                self.semantic.index.remove_entry(entry_id)
            if self.semantic.load(conn, {e: qs for e, (_, qs) in rows.items()}):
                self.semantic.fill_in_background()
            if entry_id in languages:
                self._languages[entry_id] = languages[entry_id]
            else:
                self._languages.pop(entry_id, None)
        # Updated entries leave dead postings behind: compact now and then.
        compact = self._index.dead_fraction > 0.5 and len(self._answers) > 1000
        if compact and not self._rebuild_in_background():
            self._swap(*self._build(self._read_all(conn)))

    # -- matching ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._answers)

    def search(self, text: str, limit: int = 5, language: str | None = None) -> list[Hit]:
        """Ranked hits whatever their confidence (evaluation, admin tools, LLM grounding).

        With ``language``, entries in another language score OTHER_LANGUAGE x their score
        (entries without a language are for everyone)."""
        index, languages = self._index, self._languages
        answers, questions = self._answers, self._questions
        syn = self._synonyms
        q = self.analyzer.query(normalize(text), syn)
        hits = index.search(q.terms, max(limit + 1, RERANK_POOL), soft=q.soft)
        if hits and (self.char_weight or self.answer_weight):
            texts = self._texts
            rerank = Reranker(text, q.words, texts.idf, syn.words_of)
            rescored = []
            for h in hits:
                entry = h.entry_id
                chars, share = rerank.score(
                    texts.get(entry, questions.get(entry, ""), answers.get(entry, ""))
                )
                extra = self.char_weight * chars + self.answer_weight * share
                rescored.append(replace(h, confidence=h.confidence + extra))
            hits = sorted(rescored, key=lambda h: (h.confidence, h.bm25), reverse=True)
        if language and languages:
            hits = [
                h
                if languages.get(h.entry_id, language) == language
                else replace(h, confidence=h.confidence * OTHER_LANGUAGE)
                for h in hits
            ]
            hits.sort(key=lambda h: (h.confidence, h.bm25), reverse=True)
        return hits[:limit]

    def lookup(self, text: str, suggestions: int = 3, language: str | None = None) -> Lookup:
        """Match a question against the in-memory index (no database access).

        The one place that decides between answering and not: the best entry is answered
        when its score is SURE, or CONFIDENT with a MARGIN over the runner-up (two entries
        that fit about equally well are a question to ask back, not a coin to toss).
        Otherwise ``best`` is None and the entries scoring SUGGEST or more are offered.
        """
        hits = self.search(text, limit=max(suggestions, 2), language=language)
        matches = [m for m in map(self._match, hits) if m is not None]
        sure = bool(matches) and matches[0].confidence >= self.sure
        near = self._semantic(text, language) if self.semantic is not None and not sure else None
        if near:
            return self._fused(matches, near, suggestions)
        if matches:
            top = matches[0].confidence
            runner_up = matches[1].confidence if len(matches) > 1 else 0.0
            if top >= self.sure or (top >= self.confident and top - runner_up >= self.margin):
                return Lookup(matches[0])
        return Lookup(None, tuple(m for m in matches if m.confidence >= self.suggest)[:suggestions])

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
        self, lexical: list[Match], near: list[tuple[int, float]], suggestions: int
    ) -> Lookup:
        """Reciprocal rank fusion of the lexical and the semantic ranking; the fused best is
        answered if either matcher alone would answer it."""
        rrf: dict[int, float] = {}
        for ranking in ([m.entry_id for m in lexical], [e for e, _ in near]):
            for rank, entry_id in enumerate(ranking):
                rrf[entry_id] = rrf.get(entry_id, 0.0) + 1 / (RRF_K + rank)
        order = sorted(rrf, key=lambda e: -rrf[e])
        lex = {m.entry_id: m.confidence for m in lexical}
        cos = dict(near)
        best = order[0]
        lex_rest = max((c for e, c in lex.items() if e != best), default=0.0)
        cos_rest = max((c for e, c in cos.items() if e != best), default=0.0)
        top, sim = lex.get(best, 0.0), cos.get(best, 0.0)
        answered = (
            top >= self.sure
            or (top >= self.confident and top - lex_rest >= self.margin)
            or (sim >= EMBED_CONFIDENT and sim - cos_rest >= EMBED_MARGIN)
        )
        if answered and (match := self._entry(best, max(top, sim))) is not None:
            return Lookup(match)
        offered = [
            self._entry(e, max(lex.get(e, 0.0), cos.get(e, 0.0)))
            for e in order
            if lex.get(e, 0.0) >= self.suggest or cos.get(e, 0.0) >= EMBED_SUGGEST
        ]
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
