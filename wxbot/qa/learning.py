"""A knowledge base that learns from use: did-you-mean picks and unanswered questions.

- When a user picks entry E from a did-you-mean list after asking Q, the pick is a vote
  (one per user, question and entry). Once ``min_users`` distinct users voted the same
  normalised Q for E, Q becomes a similar question of E (origin "learned"), which admins can
  list and undo. A learned wording answers E when asked exactly (its normalised key), but
  takes no part in the ranking: it would widen E towards its neighbours and pull other
  wordings its way (README, "Learning from use").
- Unanswered questions (unanswered.record_unanswered) are listed grouped by meaning; an admin
  can attach one to an existing entry, or answer it as a new entry, in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import delete_some, is_mysql
from wxbot.qa import store, writer
from wxbot.qa.models import KbAliasVote
from wxbot.qa.text import question_key
from wxbot.redaction import mask_identifiers

votes = KbAliasVote.__table__
LEARNED = store.LEARNED  # exact keys of their entry, outside the ranking (freshness.py)
ATTACHED = "unanswered"


def record_pick(
    conn: Connection, openid: str, question: str, entry_id: int, *, now: float, min_users: int
) -> bool:
    """Count a did-you-mean pick; True when it made ``question`` a similar question. A
    wording with a phone, ID-card or order number in it is nobody else's wording: no vote
    (the vote would keep the number with the user's OpenID)."""
    key = question_key(question)
    if not key or len(question) > writer.MAX_QUESTION_CHARS:
        return False
    if mask_identifiers(question) != question:
        return False
    values = {
        "qkey": key,
        "entry_id": entry_id,
        "openid": openid,
        "question": question,
        "created_at": now,
    }
    insert = mysql_insert if is_mysql(conn) else sqlite_insert
    stmt = insert(votes).values(**values)
    stmt = stmt.prefix_with("IGNORE") if is_mysql(conn) else stmt.on_conflict_do_nothing()
    conn.execute(stmt)
    users = conn.execute(
        select(func.count(func.distinct(votes.c.openid))).where(
            votes.c.qkey == key, votes.c.entry_id == entry_id
        )
    ).scalar_one()
    if users < min_users:
        return False
    if store.entry_ids_by_keys(conn, [key]):
        return False  # already a question (of this entry, or taught to another meanwhile)
    try:
        added = writer.add_questions(conn, entry_id, [question], now=now, origin=LEARNED)
    except writer.KnowledgeError:  # the entry was deleted, or is full
        return False
    return bool(added)


def list_learned(conn: Connection, offset: int = 0, limit: int = 20) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    q = store.questions
    where = q.c.origin == LEARNED
    total = conn.execute(select(func.count()).select_from(q).where(where)).scalar_one()
    rows = conn.execute(
        select(q.c.id, q.c.entry_id, q.c.question, q.c.qkey)
        .where(where)
        .order_by(q.c.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    counts = {}
    if rows:
        # Per wording *and entry*: users who picked another entry for the same wording did
        # not teach this one (record_pick counts the same way).
        found = conn.execute(
            select(votes.c.qkey, votes.c.entry_id, func.count(func.distinct(votes.c.openid)))
            .where(votes.c.qkey.in_([r.qkey for r in rows]))
            .group_by(votes.c.qkey, votes.c.entry_id)
        )
        counts = {(k, e): n for k, e, n in found}
    items = [
        {
            "id": r.id,
            "entry_id": r.entry_id,
            "question": r.question,
            "users": counts.get((r.qkey, r.entry_id), 0),
        }
        for r in rows
    ]
    return int(total), items


def undo_learned(conn: Connection, question_id: int, *, now: float) -> dict[str, object]:
    """Remove a learned question and its votes (the same picks must happen again to
    relearn it)."""
    q = store.questions
    row = conn.execute(
        select(q.c.entry_id, q.c.question, q.c.qkey).where(
            q.c.id == question_id, q.c.origin == LEARNED
        )
    ).first()
    if row is None:
        raise writer.KnowledgeError(f"no learned question {question_id}", status=404)
    writer.remove_question(conn, row.entry_id, row.question, now=now)
    conn.execute(delete(votes).where(votes.c.qkey == row.qkey, votes.c.entry_id == row.entry_id))
    return {"id": question_id, "entry_id": row.entry_id, "question": row.question}


def forget_user(conn: Connection, openid: str) -> None:
    conn.execute(delete(votes).where(votes.c.openid == openid))


def prune_votes(conn: Connection, older_than: float, limit: int) -> int:
    """Delete up to ``limit`` did-you-mean votes cast before ``older_than``; how many went.
    A vote keeps the user's OpenID with their wording: kept as long as their history
    (WXBOT_MEMORY_DAYS), not for ever. A wording learned meanwhile stays learned (it is the
    account's now); one that did not reach ``min_users`` in that time starts over."""
    return delete_some(conn, votes.c.id, votes.c.created_at < older_than, limit)


# -- unanswered questions -------------------------------------------------------------------------


def unanswered_row(conn: Connection, unanswered_id: int) -> dict[str, object]:
    u = store.unanswered
    row = conn.execute(select(u).where(u.c.id == unanswered_id)).first()
    if row is None:
        raise writer.KnowledgeError(f"no unanswered question {unanswered_id}", status=404)
    return dict(row._mapping)


def attach(
    conn: Connection,
    unanswered_id: int,
    entry_id: int,
    *,
    now: float,
    with_similar: list[int],
    expected: Container[str] | None = None,
) -> list[str]:
    """Make an unanswered question (and ``with_similar`` ones) questions of an entry;
    ``expected``: the entry's versions the caller saw (writer.add_questions)."""
    texts = [str(unanswered_row(conn, i)["question"]) for i in [unanswered_id, *with_similar]]
    return writer.add_questions(conn, entry_id, texts, now=now, origin=ATTACHED, expected=expected)


def answer_as_new(
    conn: Connection, unanswered_id: int, answer: object, *, now: float, with_similar: list[int]
) -> int:
    texts = [str(unanswered_row(conn, i)["question"]) for i in [unanswered_id, *with_similar]]
    return writer.create_entry(
        conn, texts, answer, now=now, source="api", taught_by="admin-api", origin=ATTACHED
    )


def group_unanswered(
    items: list[dict[str, object]], terms: Callable[[str], set[str]], threshold: float = 0.5
) -> list[dict[str, object]]:
    """Group unanswered questions that say the same thing (most asked first): a question
    joins the first group whose leader shares ``threshold`` of their content terms (Jaccard,
    synonyms counted)."""
    groups: list[tuple[set[str], dict[str, object]]] = []
    for item in sorted(items, key=lambda i: -int(i["count"])):  # type: ignore[call-overload]
        own = terms(str(item["question"]))
        for leader_terms, group in groups:
            union = own | leader_terms
            if union and len(own & leader_terms) / len(union) >= threshold:
                group["similar"].append(item)  # type: ignore[union-attr]
                group["total"] += int(item["count"])  # type: ignore[call-overload, operator]
                break
        else:
            groups.append((own, {**item, "total": item["count"], "similar": []}))
    return [g for _, g in groups]
