"""Unanswered questions (``kb_unanswered``): counted as asked, listed, forgotten once answered."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from wxbot.db import delete_some, is_mysql
from wxbot.qa.models import CHUNK, MAX_QUESTION_CHARS
from wxbot.qa.store import unanswered
from wxbot.qa.text import question_key
from wxbot.redaction import mask_identifiers


def record_unanswered(conn: Connection, question: str, now: float) -> None:
    """Count a question nobody has answered yet (one upsert, whichever database). What is
    kept is its first 500 characters, a question's longest, and its key is that text's: the
    whole text's key matched no question taught from it, so it stayed listed once answered.

    Admins read these for WXBOT_UNANSWERED_DAYS and no user can delete them (nor can an
    unsubscribe: they name nobody), so the identifiers in them are masked first: 「我的手机号
    13800138000换号了怎么办」 is kept as 「我的手机号***换号了怎么办」, one question however
    many users ask it. A text without a letter (a number, an SMS code typed after its step
    ended, a masked phone number) is no question anyone could answer: it is not kept."""
    # masked before the cut (a number across it is masked whole), not the whole pasted text
    question = mask_identifiers(question[: MAX_QUESTION_CHARS + 40])[:MAX_QUESTION_CHARS]
    if not any(ch.isalpha() for ch in question):
        return
    key = question_key(question)
    if not key:
        return
    values = {
        "qkey": key,
        "question": question,
        "count": 1,
        "first_asked_at": now,
        "last_asked_at": now,
    }
    if is_mysql(conn):
        stmt = mysql_insert(unanswered).values(**values)
        stmt = stmt.on_duplicate_key_update(count=unanswered.c.count + 1, last_asked_at=now)
    else:
        stmt = sqlite_insert(unanswered).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["qkey"],
            set_={"count": unanswered.c.count + 1, "last_asked_at": now},
        )
    conn.execute(stmt)


def forget_unanswered(conn: Connection, keys: Iterable[str]) -> None:
    keys = list(set(keys))
    for i in range(0, len(keys), CHUNK):
        conn.execute(delete(unanswered).where(unanswered.c.qkey.in_(keys[i : i + CHUNK])))


def _unanswered_dict(r: Any) -> dict[str, object]:
    return {
        "id": r.id,
        "question": r.question,
        "count": r.count,
        "first_asked_at": r.first_asked_at,
        "last_asked_at": r.last_asked_at,
    }


def list_unanswered(
    conn: Connection, offset: int = 0, limit: int = 20, newest_first: bool = False
) -> tuple[int, list[dict[str, object]]]:
    """Unanswered questions (each one counts its normalised duplicates), most asked first or
    most recently asked first."""
    total = conn.execute(select(func.count()).select_from(unanswered)).scalar_one()
    order = [unanswered.c.count.desc(), unanswered.c.last_asked_at.desc()]
    if newest_first:
        order.reverse()
    rows = conn.execute(
        select(unanswered).order_by(*order, unanswered.c.id.desc()).offset(offset).limit(limit)
    ).all()
    return int(total), [_unanswered_dict(r) for r in rows]


def prune_unanswered(conn: Connection, older_than: float, limit: int) -> int:
    """Delete up to ``limit`` unanswered questions last asked before ``older_than``; how many
    went (a flood of distinct questions no longer grows the table for ever)."""
    return delete_some(conn, unanswered.c.id, unanswered.c.last_asked_at < older_than, limit)


def count_unanswered(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(unanswered)).scalar_one())


def get_unanswered(conn: Connection, unanswered_id: int) -> dict[str, object] | None:
    row = conn.execute(select(unanswered).where(unanswered.c.id == unanswered_id)).first()
    return None if row is None else _unanswered_dict(row)


def delete_unanswered(conn: Connection, unanswered_id: int) -> bool:
    done = conn.execute(delete(unanswered).where(unanswered.c.id == unanswered_id))
    return done.rowcount > 0
