"""Validated single-entry writes (teaching by chat, the admin API). Bulk imports: importer.py.

Every write bumps the knowledge version and logs the entries it touched, in the caller's
transaction, so every process picks the change up on its next message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Container

from sqlalchemy import Connection, delete, func, insert, select, update

from wxbot.messages.replies import UNSENDABLE
from wxbot.qa import store, unanswered, versions
from wxbot.qa.formats import MISSING
from wxbot.qa.models import LANGUAGES, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, KbAliasVote
from wxbot.qa.text import question_key

MAX_QUESTIONS = 50


class KnowledgeError(ValueError):
    """A write was refused; ``status`` is the HTTP status the admin API answers with."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _check_unicode(text: str, what: str) -> None:
    """JSON may carry lone surrogates (\\ud800) that no database can store as UTF-8, and
    control characters that no reply can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KnowledgeError(
            f"{what} is not valid Unicode (a lone surrogate at character {exc.start + 1})"
        ) from None
    bad = UNSENDABLE.search(
        text
    )  # dropped on the way, an answer of "\x00" reached users as nothing
    if bad is not None:
        raise KnowledgeError(
            f"{what} holds the control character U+{ord(bad.group()):04X} "
            f"(at character {bad.start() + 1}), which WeChat cannot show"
        )


def _visible(text: str) -> bool:
    """Anything a user would see: not only spaces and invisible format characters
    (zero-width spaces, byte-order marks)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def check_question(question: object) -> str:
    return checked_question(question)[0]


def checked_question(question: object) -> tuple[str, str]:
    """check_question's question and its key, computed once (the key is the costly part of
    a check: an import of 200k rows computed each three times)."""
    if not isinstance(question, str):
        raise KnowledgeError("a question must be a string")
    _check_unicode(question, "a question")
    question = question.strip()
    if not question:
        raise KnowledgeError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise KnowledgeError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    key = question_key(question)
    if not key:
        raise KnowledgeError(f"the question {question!r} has no letters or digits")
    return question, key


def check_answer(answer: object) -> str:
    if not isinstance(answer, str):
        raise KnowledgeError("the answer must be a string")
    _check_unicode(answer, "the answer")
    answer = answer.strip()
    if not _visible(answer):
        raise KnowledgeError(
            "the answer is empty" if not answer else "the answer has no visible text"
        )
    if len(answer) > MAX_ANSWER_CHARS:
        raise KnowledgeError(f"the answer is longer than {MAX_ANSWER_CHARS} characters")
    return answer


def check_language(language: object) -> str | None:
    """A language code (zh, en, th, tl, ja) or None (the entry is for every language)."""
    if language is None or language == "":
        return None
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        raise KnowledgeError(
            f"unknown language {language!r}; use one of {', '.join(LANGUAGES)} (or none)"
        )
    return language.strip().lower()


def check_questions(raw: object) -> list[str]:
    """Validated questions, duplicates (same normalised form) dropped, order kept."""
    return list(checked_questions(raw).values())


def checked_questions(raw: object) -> dict[str, str]:
    """check_questions' questions by their keys (key -> question, in order), each key
    computed once."""
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise KnowledgeError("give at least one question")
    if len(raw) > MAX_QUESTIONS:
        raise KnowledgeError(f"at most {MAX_QUESTIONS} questions per entry")
    seen: dict[str, str] = {}
    for item in raw:
        q, key = checked_question(item)
        seen.setdefault(key, q)
    return seen


def _conflicts(conn: Connection, keys: dict[str, str], own_id: int | None) -> None:
    owners = store.entry_ids_by_keys(conn, keys)
    for key, owner in owners.items():
        if owner != own_id:
            raise KnowledgeError(
                f"the question {keys[key]!r} already belongs to entry {owner}", status=409
            )


def _insert_questions(
    conn: Connection,
    entry_id: int,
    questions: list[str],
    first: int = 0,
    origin: str = "",
    origins: dict[str, str] | None = None,
) -> None:
    """``origins``: question key -> the origin a question had before the entry was saved
    (a learned wording stays learned: listed, undoable)."""
    origins = origins or {}
    conn.execute(
        insert(store.questions),
        [
            {
                "entry_id": entry_id,
                "question": q,
                "qkey": question_key(q),
                "position": first + i,
                "origin": origins.get(question_key(q)) or origin,
            }
            for i, q in enumerate(questions)
        ],
    )


def _current(conn: Connection, entry_id: int) -> store.EntryRow:
    current = store.get_entry(conn, entry_id)
    if current is None:
        raise KnowledgeError(f"no entry {entry_id}", status=404)
    return current


def _check_version(current: store.EntryRow, expected: Container[str], after: str | None) -> None:
    """Refuse (412) a write decided on a view of the entry that is no longer current (a
    stale edit page, an old ETag), unless it would leave the entry exactly as it is now
    (``after``: its version once written): a double-clicked save, a retried PUT."""
    if current.version in expected or after == current.version:
        return
    raise KnowledgeError(
        f"entry {current.id} changed since it was read (its version is now {current.version})",
        status=412,
    )


def _forget_votes(conn: Connection, entry_id: int, keys: list[str]) -> None:
    """A wording an admin took off an entry loses its did-you-mean votes for it, as an undo
    does: else the next pick (even by a user who voted already) would learn it back."""
    if keys:
        votes = KbAliasVote.__table__
        conn.execute(delete(votes).where(votes.c.entry_id == entry_id, votes.c.qkey.in_(keys)))


def create_entry(
    conn: Connection,
    questions: object,
    answer: object,
    *,
    now: float,
    source: str,
    source_ref: str | None = None,
    taught_by: str | None = None,
    language: object = None,
    origin: str = "",
) -> int:
    keys = checked_questions(questions)
    qs = list(keys.values())
    text = check_answer(answer)
    lang = check_language(language)
    version = versions.bump_version(conn, now)  # the knowledge write lock, before any check
    _conflicts(conn, keys, None)
    result = conn.execute(
        insert(store.entries).values(
            answer=text,
            source=source,
            source_ref=source_ref,
            taught_by=taught_by,
            created_at=now,
            updated_at=now,
            hits=0,
            language=lang,
        )
    )
    entry_id = int(result.inserted_primary_key[0])
    _insert_questions(conn, entry_id, qs, origin=origin)
    unanswered.forget_unanswered(conn, keys)
    versions.log_changes(conn, version, [entry_id], now)
    return entry_id


def update_entry(
    conn: Connection,
    entry_id: int,
    *,
    now: float,
    questions: object = None,
    answer: object = None,
    taught_by: str | None = None,
    language: object = MISSING,
    expected: Container[str] | None = None,
) -> None:
    """Replace the answer, the whole question list and/or the language of an entry;
    ``expected``: the versions the caller's view may have (None: last write wins)."""
    keys = None if questions is None else checked_questions(questions)
    qs = None if keys is None else list(keys.values())
    text = None if answer is None else check_answer(answer)
    values: dict[str, object] = {"updated_at": now}
    if language is not MISSING:
        values["language"] = check_language(language)
    version = versions.bump_version(conn, now)  # the write lock: no change between check and write
    if expected is not None:
        current = _current(conn, entry_id)
        after = store.entry_version(
            current.questions if qs is None else qs,
            current.answer if text is None else text,
            values.get("language", current.language),  # type: ignore[arg-type]
        )
        _check_version(current, expected, after)
    if text is not None:
        values["answer"] = text
    if taught_by is not None:
        values["taught_by"] = taught_by
    done = conn.execute(update(store.entries).where(store.entries.c.id == entry_id).values(values))
    if done.rowcount == 0:
        raise KnowledgeError(f"no entry {entry_id}", status=404)
    if qs is not None and keys is not None:
        _conflicts(conn, keys, entry_id)
        q = store.questions
        old = dict(conn.execute(select(q.c.qkey, q.c.origin).where(q.c.entry_id == entry_id)).all())
        _forget_votes(conn, entry_id, [k for k in old if k not in keys])
        conn.execute(delete(store.questions).where(store.questions.c.entry_id == entry_id))
        _insert_questions(conn, entry_id, qs, origins=old)
        unanswered.forget_unanswered(conn, keys)
    versions.log_changes(conn, version, [entry_id], now)


def add_questions(
    conn: Connection,
    entry_id: int,
    questions: object,
    *,
    now: float,
    origin: str = "",
    expected: Container[str] | None = None,
) -> list[str]:
    """Add similar questions to an entry (those it has already are skipped). Returns the
    questions added. ``expected``: the versions the caller's view may have (None: last
    write wins); adding only questions the entry has already changes nothing, so it passes."""
    keys = checked_questions(questions)
    version = versions.bump_version(conn, now)  # the write lock: no change between check and write
    current = _current(conn, entry_id)  # as update_entry: 404, then 412, then the rest
    have = {question_key(q) for q in current.questions}
    if expected is not None:  # adding only questions it has already is a no-op: no conflict
        _check_version(current, expected, current.version if keys.keys() <= have else None)
    _conflicts(conn, keys, entry_id)
    new = [q for k, q in keys.items() if k not in have]
    if len(have) + len(new) > MAX_QUESTIONS:
        raise KnowledgeError(f"at most {MAX_QUESTIONS} questions per entry")
    if new:
        # After the last position, not at len(have): removals leave gaps, and a position
        # below the first question's would make the new one the entry's main question.
        last = conn.execute(
            select(func.max(store.questions.c.position)).where(
                store.questions.c.entry_id == entry_id
            )
        ).scalar()
        _insert_questions(conn, entry_id, new, first=(last or 0) + 1, origin=origin)
        conn.execute(
            update(store.entries).where(store.entries.c.id == entry_id).values(updated_at=now)
        )
        unanswered.forget_unanswered(conn, [question_key(q) for q in new])
        versions.log_changes(conn, version, [entry_id], now)
    return new


def remove_question(
    conn: Connection,
    entry_id: int,
    question: str,
    *,
    now: float,
    expected: Container[str] | None = None,
) -> None:
    """Remove one question from an entry; its last question cannot go (delete the entry).
    ``expected``: the versions the caller's view may have (None: last write wins); checked
    before whether the entry has that question or another one (a stale view is a 412)."""
    key = question_key(question) if isinstance(question, str) else ""
    version = versions.bump_version(conn, now)  # the write lock: no change between check and write
    current = _current(conn, entry_id)
    if expected is not None:
        _check_version(current, expected, after=None)  # a removal changes it
    if key not in {question_key(q) for q in current.questions}:
        raise KnowledgeError(f"entry {entry_id} has no question {question!r}", status=404)
    if len(current.questions) == 1:
        raise KnowledgeError("an entry keeps at least one question; delete the entry instead")
    conn.execute(
        delete(store.questions).where(
            store.questions.c.entry_id == entry_id, store.questions.c.qkey == key
        )
    )
    _forget_votes(conn, entry_id, [key])
    versions.log_changes(conn, version, [entry_id], now)


def delete_entry(
    conn: Connection, entry_id: int, *, now: float, expected: Container[str] | None = None
) -> None:
    version = versions.bump_version(conn, now)
    if expected is not None:
        _check_version(_current(conn, entry_id), expected, after=None)
    conn.execute(delete(store.questions).where(store.questions.c.entry_id == entry_id))
    done = conn.execute(delete(store.entries).where(store.entries.c.id == entry_id))
    if done.rowcount == 0:
        raise KnowledgeError(f"no entry {entry_id}", status=404)
    versions.log_changes(conn, version, [entry_id], now)


def teach(
    conn: Connection, question: str, answer: str, *, now: float, taught_by: str | None
) -> tuple[int, bool]:
    """Store a pair taught by chat: overwrite the answer if the question exists.

    Returns (entry id, created).
    """
    existing = store.find_entry(conn, question)
    if existing is not None:
        update_entry(conn, existing.id, now=now, answer=answer, taught_by=taught_by)
        return existing.id, False
    entry_id = create_entry(conn, [question], answer, now=now, source="chat", taught_by=taught_by)
    return entry_id, True
