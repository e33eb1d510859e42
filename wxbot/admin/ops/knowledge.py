"""Knowledge entries (questions, answer, language) and synonym groups."""

from __future__ import annotations

from collections.abc import Callable, Container

from sqlalchemy import Connection

from wxbot.admin.ops.base import AdminBase, AdminError, T
from wxbot.qa import formats, store, writer
from wxbot.qa import synonyms as synonym_store
from wxbot.qa.explain import Explanation, QueryError, check_query, user_language
from wxbot.qa.formats import MISSING
from wxbot.qa.models import MAX_ANSWER_CHARS

# No stored question or answer is longer, so a longer search can match nothing; and SQLite
# refuses a LIKE pattern over 50,000 bytes ("pattern too complex": a 500), which this keeps
# clear of even when every character is escaped or takes 4 bytes.
MAX_SEARCH_CHARS = MAX_ANSWER_CHARS


class KnowledgeOps(AdminBase):
    def entry(self, entry_id: int) -> store.EntryRow:
        entry = self.read(lambda conn: store.get_entry(conn, entry_id))
        if entry is None:
            raise AdminError(404, f"no knowledge entry {entry_id}")
        return entry

    def entries(self, search: str, offset: int, limit: int) -> tuple[int, list[store.EntryRow]]:
        if len(search) > MAX_SEARCH_CHARS:
            raise AdminError(422, f"the search is longer than {MAX_SEARCH_CHARS} characters")
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
        expected: Container[str] | None = None,
    ) -> None:
        """``expected``: the versions the admin's view of the entry may have (an edit page's,
        an If-Match); 412 if it changed since. None: last write wins."""
        now = self.now()
        self.write(
            lambda conn: writer.update_entry(
                conn,
                entry_id,
                now=now,
                questions=questions,
                answer=answer,
                language=language,
                expected=expected,
            )
        )

    def identical_entry(
        self, questions: object, answer: object, language: object = None
    ) -> int | None:
        """The entry that has exactly these questions, answer and language, if one does: a
        form sent twice (a double click, the back button) finds the entry its first sending
        created."""
        try:
            qs = writer.check_questions(questions)
            version = store.entry_version(
                qs, writer.check_answer(answer), writer.check_language(language)
            )
        except writer.KnowledgeError:
            return None
        found = self.read(lambda conn: store.find_entry(conn, qs[0]))
        return found.id if found is not None and found.version == version else None

    def add_questions(
        self, entry_id: int, questions: object, expected: Container[str] | None = None
    ) -> list[str]:
        """Add similar questions to an entry; returns the ones it did not have yet.
        ``expected``: as for update_entry (412 if the entry changed since; None: last write
        wins), checked in the transaction that writes."""
        now = self.now()
        return self.write(
            lambda conn: writer.add_questions(conn, entry_id, questions, now=now, expected=expected)
        )

    def remove_question(
        self, entry_id: int, question: str, expected: Container[str] | None = None
    ) -> None:
        """Remove one question; ``expected``: as for update_entry."""
        now = self.now()
        self.write(
            lambda conn: writer.remove_question(
                conn, entry_id, question, now=now, expected=expected
            )
        )

    def delete_entry(self, entry_id: int, expected: Container[str] | None = None) -> None:
        now = self.now()
        self.write(lambda conn: writer.delete_entry(conn, entry_id, now=now, expected=expected))

    def similar_entries(self, question: str, limit: int = 3) -> list[tuple[int, str, float]]:
        """(entry id, main question, similarity 0..1) of the entries the matcher ranks highest
        for ``question``, however unsure: the likely homes of an unanswered question."""
        kb = self.bot.deps.kb
        if kb is None:
            return []

        # A hit's confidence sums its rankers' evidence, each 0..1, by their weights (1.93 at
        # most): shown as a share of that sum, or the console read 「相似度 146%」.
        most = sum(getattr(kb, "weights", ())) or 1.0

        def work(conn: Connection) -> list[tuple[int, str, float]]:
            kb.refresh_if_stale(conn)
            best: dict[int, float] = {}
            for hit in kb.search(question, limit=limit * 2):  # one hit per question: dedupe
                best.setdefault(hit.entry_id, min(hit.confidence / most, 1.0))
            ids = list(best)[:limit]
            titles = store.main_questions(conn, ids) if ids else {}
            return [(e, titles[e], best[e]) for e in ids if e in titles]

        return self.read(work)

    def match_question(self, text: object, language: object = None) -> Explanation:
        """What the bot decides for ``text`` sent by a user of ``language`` (none given: a new
        user sending it, whose language is detected from it, else the default language), and
        what from (KnowledgeBase.explain). 422 for a blank or over-long question or an unknown
        language. Nothing is counted (hits, metrics) or stored."""
        kb = self.bot.deps.kb
        if kb is None or not hasattr(kb, "explain"):
            raise AdminError(503, "this process has no knowledge base to match against")
        try:
            question = check_query(text)
            language = user_language(question, language, self.settings.default_language)
        except QueryError as exc:
            raise AdminError(422, str(exc)) from None
        self.read(kb.refresh_if_stale)
        explained: Explanation = kb.explain(question, language)
        return explained

    def export_items(self) -> list[formats.Item]:
        """Every entry, oldest first: what `wxbot kb export` writes."""
        return self.read(formats.export_items)

    # -- synonym groups --------------------------------------------------------------------------

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

    def create_synonyms(self, words: object, source: str = "api") -> int:
        now = self.now()
        return self._synonym_write(
            lambda conn: synonym_store.create(conn, words, now=now, source=source)
        )

    def create_synonyms_once(self, words: object, source: str) -> tuple[int, bool]:
        """(group id, created): the stored group with the same words, if there is one."""
        now = self.now()
        return self._synonym_write(
            lambda conn: synonym_store.create_once(conn, words, now=now, source=source)
        )

    def replace_synonyms(
        self, group_id: int, words: object, expected: Container[str] | None = None
    ) -> None:
        now = self.now()
        self._synonym_write(
            lambda conn: synonym_store.replace(conn, group_id, words, now=now, expected=expected)
        )

    def delete_synonyms(self, group_id: int, expected: Container[str] | None = None) -> None:
        now = self.now()
        self._synonym_write(
            lambda conn: synonym_store.remove(conn, group_id, now=now, expected=expected)
        )

    def _synonym_write(self, work: Callable[[Connection], T]) -> T:
        try:
            return self.write(work)
        except synonym_store.SynonymError as exc:
            raise AdminError(exc.status, exc.reason) from None
