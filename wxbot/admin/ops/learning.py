"""Teaching the knowledge base from use: unanswered questions (one by one or a group at a
time), the wordings learned from did-you-mean picks, and LLM answers worth keeping."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from sqlalchemy import Connection

from wxbot.admin.ops.base import AdminBase, AdminError
from wxbot.llm import usage
from wxbot.qa import learning, store, writer
from wxbot.qa import unanswered as unanswered_store

GROUPED_LIMIT = 1000  # most-asked unanswered questions considered when grouping
LLM_SOURCE_REF = "llm-answer:{id}"  # an entry promoted from a kept LLM answer says which


class LearningOps(AdminBase):
    # -- unanswered questions ------------------------------------------------------------------

    def unanswered(self, unanswered_id: int) -> dict[str, Any]:
        return self.read(lambda conn: self._check_unanswered(conn, unanswered_id))

    def unanswered_many(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """The unanswered questions of ``ids`` still listed (in that order)."""

        def work(conn: Connection) -> list[dict[str, Any]]:
            found = [unanswered_store.get_unanswered(conn, i) for i in ids]
            return [item for item in found if item is not None]

        return self.read(work)

    def unanswered_page(
        self, offset: int, limit: int, newest_first: bool = False
    ) -> tuple[int, list[dict[str, Any]]]:
        """Unanswered questions, most asked (or most recently asked) first."""
        return self.read(
            lambda conn: unanswered_store.list_unanswered(conn, offset, limit, newest_first)
        )

    def unanswered_grouped(self) -> list[dict[str, Any]]:
        """The most asked unanswered questions, those that say the same thing grouped: each
        group is its most asked question plus ``similar`` (the others) and ``total``."""
        kb = self.bot.deps.kb
        _, items = self.unanswered_page(0, GROUPED_LIMIT)
        if kb is None:
            return [{**item, "total": item["count"], "similar": []} for item in items]
        self.read(kb.refresh_if_stale)  # the synonyms the grouping counts are the current ones
        return learning.group_unanswered(items, kb.content_terms)

    def answer_unanswered(
        self,
        unanswered_id: int,
        questions: object | None,
        answer: object,
        source: str,
        taught_by: str,
        similar: Sequence[int] = (),
        language: object = None,
    ) -> int:
        """Teach a new entry from an unanswered question: ``questions`` as the admin edited
        them, or None for the question as asked (plus the ``similar`` unanswered ones). The
        unanswered questions go in the same transaction."""
        now = self.now()
        ids = _distinct([unanswered_id, *similar])

        def work(conn: Connection) -> int:
            asked = [self._check_unanswered(conn, i)["question"] for i in ids]
            entry_id = writer.create_entry(
                conn,
                asked if questions is None else questions,
                answer,
                now=now,
                source=source,
                taught_by=taught_by,
                language=language,
                origin=learning.ATTACHED,
            )
            for i in ids:
                unanswered_store.delete_unanswered(conn, i)
            return entry_id

        return self.write(work)

    def attach_unanswered(
        self,
        unanswered_id: int,
        entry_id: int,
        similar: Sequence[int] = (),
        expected: Container[str] | None = None,
    ) -> list[str]:
        """Make an unanswered question (and the ``similar`` ones) more questions of an
        existing entry; returns the questions the entry did not have yet. ``expected``: the
        entry's versions the caller saw (412 if it changed since; None: last write wins)."""
        now = self.now()
        ids = _distinct([unanswered_id, *similar])

        def work(conn: Connection) -> list[str]:
            for i in ids:
                self._check_unanswered(conn, i)
            added = learning.attach(
                conn, ids[0], entry_id, now=now, with_similar=ids[1:], expected=expected
            )
            for i in ids:
                unanswered_store.delete_unanswered(conn, i)
            return added

        return self.write(work)

    def dismiss_unanswered(self, unanswered_id: int, similar: Sequence[int] = ()) -> None:
        """Drop an unanswered question (and the ``similar`` ones) from the list."""
        ids = _distinct([unanswered_id, *similar])

        def work(conn: Connection) -> None:
            for i in ids:
                self._check_unanswered(conn, i)
                unanswered_store.delete_unanswered(conn, i)

        self.write(work)

    def _check_unanswered(self, conn: Connection, unanswered_id: int) -> dict[str, Any]:
        item = unanswered_store.get_unanswered(conn, unanswered_id)
        if item is None:
            raise AdminError(404, f"no unanswered question {unanswered_id} (answered meanwhile?)")
        return item

    # -- learned questions ---------------------------------------------------------------------

    def learned(self, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Similar questions learned from did-you-mean picks, newest first, each with its
        entry's main question."""

        def work(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
            total, items = learning.list_learned(conn, offset, limit)
            ids = list({i["entry_id"] for i in items})
            titles = store.main_questions(conn, ids) if ids else {}
            return total, [{**i, "entry_question": titles.get(i["entry_id"], "")} for i in items]

        return self.read(work)

    def undo_learned(self, question_id: int) -> dict[str, object]:
        now = self.now()
        return self.write(lambda conn: learning.undo_learned(conn, question_id, now=now))

    # -- LLM answers ---------------------------------------------------------------------------

    def llm_answers(
        self, offset: int, limit: int, openid: str | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """The LLM's answers kept for promotion, newest first (``entry_id``: promoted to it;
        ``entry_question``: that entry's main question, None once the entry is deleted)."""

        def work(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
            total, items = usage.list_answers(conn, offset, limit, openid)
            ids = [i["entry_id"] for i in items if i["entry_id"] is not None]
            titles = store.main_questions(conn, ids) if ids else {}
            return total, [{**i, "entry_question": titles.get(i["entry_id"])} for i in items]

        return self.read(work)

    def llm_answer(self, answer_id: int) -> dict[str, Any]:
        found = self.read(lambda conn: usage.get_answer(conn, answer_id))
        if found is None:
            raise AdminError(404, f"no LLM answer {answer_id}")
        return found

    def promote_llm_answer(
        self,
        answer_id: int,
        source: str,
        taught_by: str,
        question: object = None,
        answer: object = None,
    ) -> int:
        """A knowledge entry from a kept answer (``question`` / ``answer``: an edited version);
        409 if it was promoted already (and that entry still exists)."""
        now = self.now()

        def work(conn: Connection) -> int:
            kept = usage.get_answer(conn, answer_id)
            if kept is None:
                raise AdminError(404, f"no LLM answer {answer_id}")
            promoted = kept["entry_id"]
            if promoted is not None and store.get_entry(conn, promoted) is not None:
                raise AdminError(409, f"already promoted to knowledge entry {promoted}")
            entry_id = writer.create_entry(
                conn,
                [kept["question"] if question is None else question],
                kept["answer"] if answer is None else answer,
                now=now,
                source=source,
                source_ref=LLM_SOURCE_REF.format(id=answer_id),
                taught_by=taught_by,
            )
            usage.mark_promoted(conn, answer_id, entry_id)
            return entry_id

        return self.write(work)


def _distinct(ids: list[int]) -> list[int]:
    """The ids in order, each once (a form may send the leader among the similar ones)."""
    return list(dict.fromkeys(ids))
