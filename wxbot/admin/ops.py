"""What an admin can do, as Python functions: the JSON API and the web console both call these.

Each method runs its own short transaction (retried on a MySQL deadlock) and raises
``AdminError(status, reason)`` for anything the caller must refuse: the API turns it into a
JSON error, the console into a message on the page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
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
from wxbot.qa import store, writer
from wxbot.stats import read_counts

T = TypeVar("T")


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

    def create_entry(self, questions: object, answer: object, source: str, taught_by: str) -> int:
        now = self.now()
        return self.write(
            lambda conn: writer.create_entry(
                conn, questions, answer, now=now, source=source, taught_by=taught_by
            )
        )

    def update_entry(self, entry_id: int, questions: object = None, answer: object = None) -> None:
        now = self.now()
        self.write(
            lambda conn: writer.update_entry(
                conn, entry_id, now=now, questions=questions, answer=answer
            )
        )

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

    def export_items(self) -> list[tuple[list[str], str]]:
        """Every entry as (questions, answer), oldest first: what `wxbot kb export` writes."""
        loaded = self.read(store.load_entries)
        return [(qs, answer) for _, (answer, qs) in sorted(loaded.items()) if qs]

    # -- unanswered questions ------------------------------------------------------------------

    def unanswered(self, unanswered_id: int) -> dict[str, Any]:
        item = self.read(lambda conn: store.get_unanswered(conn, unanswered_id))
        if item is None:
            raise AdminError(404, f"no unanswered question {unanswered_id} (answered meanwhile?)")
        return item

    def answer_unanswered(
        self, unanswered_id: int, questions: object, answer: object, source: str, taught_by: str
    ) -> int:
        """Teach a new entry from an unanswered question (its wording may have been edited);
        the unanswered question goes in the same transaction."""
        now = self.now()

        def work(conn: Connection) -> int:
            self._check_unanswered(conn, unanswered_id)
            entry_id = writer.create_entry(
                conn, questions, answer, now=now, source=source, taught_by=taught_by
            )
            store.delete_unanswered(conn, unanswered_id)
            return entry_id

        return self.write(work)

    def attach_unanswered(self, unanswered_id: int, entry_id: int) -> list[str]:
        """Make an unanswered question one more question of an existing entry."""
        now = self.now()

        def work(conn: Connection) -> list[str]:
            item = self._check_unanswered(conn, unanswered_id)
            added = writer.add_questions(conn, entry_id, [item["question"]], now=now)
            store.delete_unanswered(conn, unanswered_id)
            return added

        return self.write(work)

    def dismiss_unanswered(self, unanswered_id: int) -> None:
        if not self.write(lambda conn: store.delete_unanswered(conn, unanswered_id)):
            raise AdminError(404, f"no unanswered question {unanswered_id}")

    def _check_unanswered(self, conn: Connection, unanswered_id: int) -> dict[str, Any]:
        item = store.get_unanswered(conn, unanswered_id)
        if item is None:
            raise AdminError(404, f"no unanswered question {unanswered_id} (answered meanwhile?)")
        return item

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
