"""The in-memory knowledge index, kept fresh from the database (full or incremental reloads)."""

from __future__ import annotations

import ctypes
import gc
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from time import monotonic
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import DBAPIError

from wxbot.qa import store, versions
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.embeddings import Semantic, load_vectors
from wxbot.qa.index import Bm25Index
from wxbot.qa.readings import Spellings
from wxbot.qa.rerank import GramStats, TextCache, entry_text, group_marks
from wxbot.qa.snapshot import reading_engine
from wxbot.qa.synonyms import Synonyms
from wxbot.qa.text import STOPWORD_WEIGHT, STOPWORDS, Analyzer, normalize, question_key

log = logging.getLogger(__name__)

GROUP_WEIGHT = 2.0  # a synonym group's term weighs this x its idf (see Bm25Index)
INCREMENTAL_LIMIT = 5_000  # more changed entries than this: rebuild the whole index
BACKGROUND_REBUILD_OVER = 5_000  # entries (before or after); more: rebuilt in a background thread
# A version lower than the index's is, for a moment, a message that read it just before
# another thread caught up (ignored); seen for this long, the database was replaced (restored
# from a backup) and the index is rebuilt.
REPLACED_AFTER = 2.0  # seconds
# Documents (questions), dead ones included, past which an index mostly dead is compacted
# whatever the size of the base. Each edit of an entry leaves its old questions behind as
# dead documents (postings, terms, weights); a base of a few hundred entries edited all day
# (teaching, learned wordings, imports) would otherwise pile them up without end.
COMPACT_OVER_DOCUMENTS = 4096


class LearnedKeys:
    """Wordings learned from did-you-mean picks (store.LEARNED), as exact keys: normalised
    question key -> entry id. They are no index documents: ranked, a learned wording widens
    its entry towards a neighbour and pulls new wordings its way (README, "Learning from
    use"). Readers only ``get``; updates run under the index lock."""

    def __init__(self) -> None:
        self._entry: dict[str, int] = {}  # question key -> entry id
        self._keys: dict[int, tuple[str, ...]] = {}  # entry id -> its learned keys

    def __len__(self) -> int:
        return len(self._entry)

    def get(self, key: str) -> int | None:
        return self._entry.get(key)

    def set_entry(self, entry_id: int, questions: list[str]) -> None:
        """Replace the learned wordings of an entry (none: it has no more)."""
        self.remove_entry(entry_id)
        keys = tuple(dict.fromkeys(k for k in map(question_key, questions) if k))
        for key in keys:
            self._entry[key] = entry_id
        if keys:
            self._keys[entry_id] = keys

    def remove_entry(self, entry_id: int) -> None:
        for key in self._keys.pop(entry_id, ()):
            if self._entry.get(key) == entry_id:  # (not since taken by another entry)
                del self._entry[key]


class _Snapshot(NamedTuple):
    """Everything the index is built from, read in one go."""

    rows: dict[int, store.IndexRow]
    languages: dict[int, str]
    synonyms: Synonyms
    questions: dict[int, str]  # filled by _build: ranked questions joined by newlines
    vectors: dict[str, Any]  # question key -> unit vector (with an embedding service)
    learned: LearnedKeys  # filled by _build


class FreshIndex:
    """The in-memory index of the knowledge (and the answers, so answering needs no query),
    and how it catches up with the database. ``KnowledgeBase`` (kb.py) matches against it."""

    def __init__(
        self, engine: Engine | None, analyzer: Analyzer, semantic: Semantic | None
    ) -> None:
        self.engine = engine
        self.analyzer = analyzer
        self.semantic = semantic
        # an entry's ranked questions joined by newlines (one string: lean), for re-ranking
        # and did-you-mean titles; learned wordings are exact keys only (LearnedKeys)
        self._questions: dict[int, str] = {}
        self._learned = LearnedKeys()
        self._synonyms = Synonyms()
        self._languages: dict[int, str] = {}
        self.version = -1  # nothing loaded yet
        self._index = _new_index()
        self._spellings = Spellings()  # the kana readings of its Japanese questions' words
        self._stats = GramStats()
        self._texts = TextCache(self._stats.idf, group_marks(self._synonyms))
        self._answers: dict[int, str] = {}
        self._lock = threading.Lock()  # serialises index updates
        self._checked = threading.local()  # the transaction whose version this thread read
        self._rebuilt = threading.Event()  # cleared while a background rebuild thread runs
        self._rebuilt.set()
        self._building = False  # True until a background rebuild's index is swapped in
        self._lower_since: float | None = None  # when a version lower than ours was first seen
        self._reader: Engine | None = None  # background re-index reads (snapshot.py)

    def load_at_start(self) -> None:
        """Load the index now (start-up), unless the schema does not exist yet."""
        if self.engine is None:
            return
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("kb_meta"):
                    return  # `wxbot init-db` not run yet: the first request loads
                self.refresh_if_stale(conn)
        except DBAPIError as exc:  # e.g. the database starts after us: the first request loads
            log.warning(
                "knowledge base not loaded at start-up: %s", " ".join(str(exc.orig).split())
            )
        except Exception:  # start-up must not fail on it: the first request retries
            log.exception("loading the knowledge base at start-up failed")

    def version_column(self) -> Any:
        """The knowledge version as a labelled scalar subquery (``kb_version``), for the
        engine to read in the same round trip as the user's context."""
        return versions.version_subquery().label("kb_version")

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
        current = versions.read_version(conn) if version is None else version
        if tx is not None:
            self._checked.tx = weakref.ref(tx)
        if current == self.version:
            if self._lower_since is not None:
                self._lower_since = None
            return False
        if self._building:
            # A rebuild is under way and catches up when it is done: no query, no lock (every
            # thread would otherwise queue on the lock to read the change log, for nothing).
            return False
        if current < self.version and not self._replaced():
            return False  # read before another thread caught up: the index is newer, fine
        with self._lock:
            if current == self.version or self._building:
                return False
            changed = None
            if 0 <= self.version < current:  # (lower: the database was replaced)
                changed = versions.changed_since(conn, self.version, INCREMENTAL_LIMIT)
            if changed is not None:
                self._apply(conn, changed)
            elif self._rebuild_in_background(conn):
                return False  # the current index serves until the new one is ready
            else:
                self._swap(self._build(self._read_all(conn)))
            self.version = current
            self._lower_since = None
        return True

    def _replaced(self) -> bool:
        """Has the database shown a version lower than the index's for REPLACED_AFTER
        seconds (a restored backup), rather than for one racing message?"""
        now = monotonic()
        if self._lower_since is None:
            self._lower_since = now
        return now - self._lower_since >= REPLACED_AFTER

    def _read_all(self, conn: Connection) -> _Snapshot:
        groups = synonym_store.load(conn)
        rows = store.load_index_rows(conn)
        vectors = {}
        if self.semantic is not None:
            keys = (question_key(q) for row in rows.values() for q in row.questions)
            vectors = load_vectors(conn, self.semantic.client.model, keys)
        return _Snapshot(
            rows,
            store.load_languages(conn),
            Synonyms((g.id, g.words) for g in groups),
            {},
            vectors,
            LearnedKeys(),
        )

    def _build(self, snap: _Snapshot) -> _Built:
        started = time.monotonic()
        index, spellings = _new_index(), Spellings()
        stats = GramStats(len(snap.rows))
        answers: dict[int, str] = {}
        for entry_id, (answer, qs, learned) in snap.rows.items():
            self._index_entry(index, spellings, entry_id, qs, snap.synonyms)
            answers[entry_id] = answer
            if learned:
                snap.learned.set_entry(entry_id, learned)
            joined = snap.questions[entry_id] = "\n".join(qs)
            stats.add(entry_id, _sampled_text(stats, entry_id, joined, answer, snap.synonyms))
        rows = len(snap.rows)
        log.info("knowledge index: %d entries in %.2fs", rows, time.monotonic() - started)
        return _Built(index, spellings, stats, answers, snap)

    def _index_entry(
        self, index: Bm25Index, spellings: Spellings, entry_id: int, qs: list[str], syn: Synonyms
    ) -> None:
        terms = self.analyzer.terms
        normalized = [normalize(q) for q in qs]
        index.add_entry(entry_id, [terms(q, syn) for q in normalized])
        spellings.set_entry(entry_id, normalized)

    def _swap(self, built: _Built) -> None:
        index, spellings, stats, answers, snap = built
        # Whole objects: a concurrent reader keeps using the old, consistent set.
        self._index, self._stats, self._answers = index, stats, answers
        self._spellings = spellings
        self._languages, self._synonyms = snap.languages, snap.synonyms
        self._questions, self._learned = snap.questions, snap.learned
        # last (see _apply): a lookup that read the previous entries fills the previous cache
        self._texts = TextCache(stats.idf, group_marks(snap.synonyms))
        if self.semantic is not None:
            questions = {e: row.questions for e, row in snap.rows.items()}
            if self.semantic.rebuild(questions, snap.vectors):
                self.semantic.fill_in_background()

    def _rebuild_in_background(self, conn: Connection) -> bool:
        """Rebuild a large index in a thread (True), or tell the caller to do it now (False).

        Rebuilding 100k entries takes seconds; inside a request that would hold the user's
        lock (on SQLite: everyone's) that long, and every thread of the worker would queue
        behind it. Small bases are rebuilt in the request, so a change reaches them on the
        very next message. "Large" is the index now or the base in the database: the first
        import of 100k rows into the starter FAQ is large. An empty index (nothing loaded
        yet) loads now: there is nothing to answer from meanwhile. Call with self._lock held.
        """
        if self.engine is None or self.version < 0:
            return False
        if not self._rebuilt.is_set():
            return True  # under way (or still freeing the index before): the next message
        size = len(self._answers)
        if size <= BACKGROUND_REBUILD_OVER:
            size = max(size, store.count_entries(conn))
        if size <= BACKGROUND_REBUILD_OVER:
            return False
        self._rebuilt.clear()
        self._building = True
        threading.Thread(target=self._rebuild_now, name="wxbot-kb-rebuild", daemon=True).start()
        return True

    def _rebuild_now(self) -> None:
        previous = None
        try:
            assert self.engine is not None
            if self._reader is None:
                self._reader = reading_engine(self.engine)
            with _collector_paused():
                with self._reader.connect() as conn:  # one snapshot, no write lock (snapshot.py)
                    version = versions.read_version(conn)
                    snap = self._read_all(conn)
                built = self._build(snap)  # outside any transaction
            with self._lock:
                previous = self._index
                self._swap(built)
                self.version = version  # later changes follow incrementally
                self._lower_since = None
            del built, snap
        except Exception:
            log.exception("rebuilding the knowledge index failed; the next message retries")
        finally:
            self._building = False  # messages catch up from here (incrementally)
        try:
            if previous is not None:
                # Dropped whole: a lookup that began before the swap may still be reading it
                # (freed by reference counting when that lookup ends). Emptying it a slice at
                # a time would spare a 0.1 s pause at 100k entries, but deciding that no
                # lookup holds it would rest on sys.getrefcount, which newer Pythons report
                # differently: an emptied index under a running lookup is a wrong answer.
                del previous
                _give_back_memory()  # the previous index's pages, back to the system
        finally:
            self._rebuilt.set()

    def wait_until_rebuilt(self, timeout: float | None = None) -> bool:
        """Wait for a background rebuild, the previous index freed (tests, benchmarks)."""
        return self._rebuilt.wait(timeout)

    def _apply(self, conn: Connection, changed: set[int]) -> None:
        rows = store.load_index_rows(conn, changed)
        languages = store.load_languages(conn, changed)
        stats, syn = self._stats, self._synonyms
        changed_ids = sorted(changed)  # a fixed order: the index numbers documents in it
        for entry_id in changed_ids:
            if entry_id in self._answers:  # its old text leaves the statistics
                old = self._questions[entry_id], self._answers[entry_id]
                stats.remove(entry_id, _sampled_text(stats, entry_id, *old, syn))
            row = rows.get(entry_id)
            if row is not None:
                new = "\n".join(row.questions), row.answer
                stats.add(entry_id, _sampled_text(stats, entry_id, *new, syn))
        for entry_id in changed_ids:
            row = rows.get(entry_id)
            if row is None:  # deleted
                self._index.remove_entry(entry_id)
                self._spellings.remove_entry(entry_id)
                self._answers.pop(entry_id, None)
                self._languages.pop(entry_id, None)
                self._questions.pop(entry_id, None)
                self._learned.remove_entry(entry_id)
                continue
            answer, qs, learned = row
            self._index_entry(self._index, self._spellings, entry_id, qs, self._synonyms)
            self._answers[entry_id] = answer
            self._questions[entry_id] = "\n".join(qs)
            self._learned.set_entry(entry_id, learned)
            if entry_id in languages:
                self._languages[entry_id] = languages[entry_id]
            else:
                self._languages.pop(entry_id, None)
        # idf moved, and the changed entries' texts with it. Last: a lookup running while
        # the entries were re-indexed fills the cache it read (with their old texts, maybe),
        # never this one (kb.evidence reads the cache before the entries).
        self._texts = TextCache(stats.idf, group_marks(self._synonyms))
        if self.semantic is not None:
            for entry_id in changed - rows.keys():
                self.semantic.index.remove_entry(entry_id)
            if self.semantic.load(conn, {e: row.questions for e, row in rows.items()}):
                self.semantic.fill_in_background()
        # Updated entries leave dead postings behind: compact now and then.
        big = len(self._answers) > 1000 or self._index.documents > COMPACT_OVER_DOCUMENTS
        compact = self._index.dead_fraction > 0.5 and big
        if compact and not self._rebuild_in_background(conn):
            self._swap(self._build(self._read_all(conn)))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection while an index is read and built: that allocates
    millions of objects (none in cycles), which set off full collections that hold the GIL, i.e. stop
    every thread of the worker, for up to 0.46 s each at 100k entries (3 per rebuild)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # The new index lives on: out of the young generation before the collector is back
        # on, or its first collection walks all of it (0.29 s at 100k entries). serving.py
        # freezes the first index the same way.
        gc.freeze()
        if enabled:
            gc.enable()


def _give_back_memory() -> None:
    """Return the freed heap of a replaced index to the system (glibc keeps it otherwise:
    measured at 100k entries, 390 instead of 443 MB after a rebuild). Elsewhere: nothing."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _new_index() -> Bm25Index:
    return Bm25Index(STOPWORDS, STOPWORD_WEIGHT, GROUP_WEIGHT)


class _Built(NamedTuple):
    index: Bm25Index
    spellings: Spellings
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
