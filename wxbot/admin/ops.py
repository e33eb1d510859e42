"""What an admin can do, as Python functions: the JSON API and the web console both call these.

Each method runs its own short transaction (retried on a MySQL deadlock) and raises
``AdminError(status, reason)`` for anything the caller must refuse: the API turns it into a
JSON error, the console into a message on the page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import Connection, Engine

from wxbot.db import with_retries
from wxbot.dialog import context
from wxbot.dialog.context import ContextRow
from wxbot.flows import stats as flow_stats
from wxbot.llm import memory, usage
from wxbot.qa import formats, learning, store, writer
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.formats import MISSING
from wxbot.stats import read_counts

T = TypeVar("T")
GROUPED_LIMIT = 1000  # most-asked unanswered questions considered when grouping


class AdminError(Exception):
    """A refused admin request; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Admin:
    engine: Engine
    bot: Any  # wxbot.dialog.engine.Bot
    clock: Callable[[], float]
    flows: Any = None  # wxbot.flows.runner.FlowRunner, for the funnel statistics

    @classmethod
    def of(cls, app: Flask) -> Admin:
        ext = app.extensions
        return cls(
            ext["wxbot.engine"], ext["wxbot.bot"], ext["wxbot.clock"], ext.get("wxbot.flows")
        )

    def now(self) -> float:
        return self.clock()

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one write transaction; a refused knowledge write -> AdminError."""

        def run() -> T:
            with self.engine.begin() as conn:
                return work(conn)

        try:
            return with_retries(run)
        except writer.KnowledgeError as exc:
            raise AdminError(exc.status, exc.reason) from None

    def read(self, work: Callable[[Connection], T]) -> T:
        with self.engine.connect() as conn:
            return work(conn)

    # -- knowledge -----------------------------------------------------------------------------

    def entry(self, entry_id: int) -> store.EntryRow:
        entry = self.read(lambda conn: store.get_entry(conn, entry_id))
        if entry is None:
            raise AdminError(404, f"no knowledge entry {entry_id}")
        return entry

    def entries(self, search: str, offset: int, limit: int) -> tuple[int, list[store.EntryRow]]:
        return self.read(lambda conn: store.list_entries(conn, search, offset, limit))

    def create_entry(
        self,
        questions: object,
        answer: object,
        source: str,
        taught_by: str,
        language: object = None,
    ) -> int:
        now = self.now()
        return self.write(
            lambda conn: writer.create_entry(
                conn,
                questions,
                answer,
                now=now,
                source=source,
                taught_by=taught_by,
                language=language,
            )
        )

    def update_entry(
        self,
        entry_id: int,
        questions: object = None,
        answer: object = None,
        language: object = MISSING,
    ) -> None:
        now = self.now()
        self.write(
            lambda conn: writer.update_entry(
                conn, entry_id, now=now, questions=questions, answer=answer, language=language
            )
        )

    def add_questions(self, entry_id: int, questions: object) -> list[str]:
        """Add similar questions to an entry; returns the ones it did not have yet."""
        now = self.now()
        return self.write(lambda conn: writer.add_questions(conn, entry_id, questions, now=now))

    def remove_question(self, entry_id: int, question: str) -> None:
        now = self.now()
        self.write(lambda conn: writer.remove_question(conn, entry_id, question, now=now))

    def delete_entry(self, entry_id: int) -> None:
        now = self.now()
        self.write(lambda conn: writer.delete_entry(conn, entry_id, now=now))

    def similar_entries(self, question: str, limit: int = 3) -> list[tuple[int, str, float]]:
        """(entry id, main question, confidence) of the entries the matcher ranks highest for
        ``question``, however unsure: the likely homes of an unanswered question."""
        kb = self.bot.deps.kb
        if kb is None:
            return []

        def work(conn: Connection) -> list[tuple[int, str, float]]:
            kb.refresh_if_stale(conn)
            best: dict[int, float] = {}
            for hit in kb.search(question, limit=limit * 2):  # one hit per question: dedupe
                best.setdefault(hit.entry_id, hit.confidence)
            ids = list(best)[:limit]
            titles = store.main_questions(conn, ids) if ids else {}
            return [(e, titles[e], best[e]) for e in ids if e in titles]

        return self.read(work)

    def export_items(self) -> list[formats.Item]:
        """Every entry, oldest first: what `wxbot kb export` writes."""
        return self.read(formats.export_items)

    # -- unanswered questions ------------------------------------------------------------------

    def unanswered(self, unanswered_id: int) -> dict[str, Any]:
        item = self.read(lambda conn: store.get_unanswered(conn, unanswered_id))
        if item is None:
            raise AdminError(404, f"no unanswered question {unanswered_id} (answered meanwhile?)")
        return item

    def answer_unanswered(
        self,
        unanswered_id: int,
        questions: object | None,
        answer: object,
        source: str,
        taught_by: str,
        similar: Sequence[int] = (),
    ) -> int:
        """Teach a new entry from an unanswered question: ``questions`` as the admin edited
        them, or None for the question as asked (plus the ``similar`` unanswered ones). The
        unanswered questions go in the same transaction."""
        now = self.now()

        def work(conn: Connection) -> int:
            asked = [self._check_unanswered(conn, i)["question"] for i in [unanswered_id, *similar]]
            entry_id = writer.create_entry(
                conn,
                asked if questions is None else questions,
                answer,
                now=now,
                source=source,
                taught_by=taught_by,
                origin=learning.ATTACHED,
            )
            for i in [unanswered_id, *similar]:
                store.delete_unanswered(conn, i)
            return entry_id

        return self.write(work)

    def attach_unanswered(
        self, unanswered_id: int, entry_id: int, similar: Sequence[int] = ()
    ) -> list[str]:
        """Make an unanswered question (and the ``similar`` ones) more questions of an
        existing entry; returns the questions the entry did not have yet."""
        now = self.now()

        def work(conn: Connection) -> list[str]:
            for i in [unanswered_id, *similar]:
                self._check_unanswered(conn, i)
            added = learning.attach(conn, unanswered_id, entry_id, now=now, with_similar=[*similar])
            for i in [unanswered_id, *similar]:
                store.delete_unanswered(conn, i)
            return added

        return self.write(work)

    def unanswered_page(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Unanswered questions, most asked first."""
        return self.read(lambda conn: store.list_unanswered(conn, offset, limit))

    def unanswered_grouped(self) -> list[dict[str, Any]]:
        """The most asked unanswered questions, those that say the same thing grouped."""
        _, items = self.unanswered_page(0, GROUPED_LIMIT)
        return learning.group_unanswered(items, self.bot.deps.kb.content_terms)

    def dismiss_unanswered(self, unanswered_id: int) -> None:
        if not self.write(lambda conn: store.delete_unanswered(conn, unanswered_id)):
            raise AdminError(404, f"no unanswered question {unanswered_id}")

    def _check_unanswered(self, conn: Connection, unanswered_id: int) -> dict[str, Any]:
        item = store.get_unanswered(conn, unanswered_id)
        if item is None:
            raise AdminError(404, f"no unanswered question {unanswered_id} (answered meanwhile?)")
        return item

    # -- synonyms and learned questions -------------------------------------------------------

    def synonym_groups(self, search: str = "") -> list[synonym_store.Group]:
        """Every synonym group (those with a word containing ``search``)."""
        groups = self.read(synonym_store.load)
        search = search.strip().lower()
        return [g for g in groups if any(search in w for w in g.words)] if search else groups

    def synonym_group(self, group_id: int) -> synonym_store.Group:
        for group in self.read(synonym_store.load):
            if group.id == group_id:
                return group
        raise AdminError(404, f"no synonym group {group_id}")

    def create_synonyms(self, words: object) -> int:
        now = self.now()
        return self._synonym_write(lambda conn: synonym_store.create(conn, words, now=now))

    def replace_synonyms(self, group_id: int, words: object) -> None:
        now = self.now()
        self._synonym_write(lambda conn: synonym_store.replace(conn, group_id, words, now=now))

    def delete_synonyms(self, group_id: int) -> None:
        now = self.now()
        self._synonym_write(lambda conn: synonym_store.remove(conn, group_id, now=now))

    def _synonym_write(self, work: Callable[[Connection], T]) -> T:
        try:
            return self.write(work)
        except synonym_store.SynonymError as exc:
            raise AdminError(exc.status, exc.reason) from None

    def learned(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Similar questions learned from did-you-mean picks, newest first."""
        return self.read(lambda conn: learning.list_learned(conn, offset, limit))

    def undo_learned(self, question_id: int) -> dict[str, object]:
        now = self.now()
        return self.write(lambda conn: learning.undo_learned(conn, question_id, now=now))

    # -- users ---------------------------------------------------------------------------------

    def sessions(
        self, offset: int, limit: int, live_only: bool = True
    ) -> tuple[int, list[ContextRow]]:
        now = self.now()

        def work(conn: Connection) -> tuple[int, list[ContextRow]]:
            total = context.count_live(conn, now) if live_only else context.count_contexts(conn)
            rows = context.list_contexts(conn, now, limit, offset, live_only=live_only)
            return int(total), rows

        return self.read(work)

    def session(self, openid: str) -> ContextRow:
        row = self.read(lambda conn: context.get_context(conn, openid))
        if row is None:
            raise AdminError(404, f"no session for {openid!r}")
        return row

    def forget_user(self, openid: str) -> None:
        """Everything stored about the user goes, as on unsubscribe."""

        def work(conn: Connection) -> bool:
            if context.get_context(conn, openid) is None:
                return False
            self.bot.forget_user(conn, openid)
            return True

        if not self.write(work):
            raise AdminError(404, f"no session for {openid!r}")

    def clear_history(self, openid: str) -> int:
        """Forget what the user said, in the live context and in their stored memory (their
        state, window and usage stay); returns how many messages went."""
        now = self.now()

        def work(conn: Connection) -> int:
            context.lock_context(conn, openid)  # serialise with the user's messages
            found = memory.load(conn, openid)
            if found is None:
                raise AdminError(404, f"no session for {openid!r}")
            memory.clear_history(conn, openid, now)
            return len(found.history)

        return self.write(work)

    # -- figures -------------------------------------------------------------------------------

    def daily_counts(self, first: date, last: date) -> dict[str, Counter[str]]:
        """Day -> what happened that day (messages, answered, ...), this process's unwritten
        counts included; other processes' reach the database within half a minute."""
        self.bot.stats.flush()
        return self.read(lambda conn: read_counts(conn, first, last))

    def top_entries(self, limit: int) -> list[tuple[int, str, int]]:
        flush = getattr(self.bot.deps.kb, "flush_hits_now", None)
        if flush is not None:
            flush()
        return self.read(lambda conn: store.top_entries(conn, limit))

    def stats(self) -> dict[str, Any]:
        """What GET /admin/api/stats answers."""
        now = self.now()
        kb = self.bot.deps.kb
        settings = self.bot.settings
        flows = self.flows.flows if self.flows is not None else []

        def work(conn: Connection) -> dict[str, Any]:
            return {
                "sessions": {
                    "live": int(context.count_live(conn, now)),
                    "stored": int(context.count_contexts(conn)),
                    "users": memory.count_users(conn),
                },
                "knowledge": {
                    **store.counts(conn),
                    "loaded_here": len(kb) if kb is not None else 0,
                },
                "llm": {
                    "mode": "fallback" if settings.llm_fallback else "off",
                    "model": settings.llm_model,
                    **usage.totals(conn, now),
                },
                "flows": flow_stats.funnel(conn, flows, now),
            }

        return self.read(work)
