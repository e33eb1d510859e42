"""Users: anyone we keep something for, a context (live or expired, not evicted yet) or a
memory (the durable history, window setting and LLM usage), with their reply language."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from wxbot.admin.ops.base import AdminBase, AdminError
from wxbot.config import MAX_HISTORY_ROUNDS
from wxbot.dialog import context, language
from wxbot.dialog.context import ContextRow, contexts
from wxbot.llm import memory

WINDOW_RULE = f"history_rounds must be a whole number from 1 to {MAX_HISTORY_ROUNDS}"


@dataclass
class UserSummary:
    """One line of the user list."""

    openid: str
    last_active: float
    state: str | None  # None: no context any more (evicted), only the memory
    live: bool
    last_said: str
    rounds_kept: int  # exchanges in the history window
    language: str | None
    window: int
    window_source: str  # "user" | "default"


@dataclass
class UserView:
    """Everything shown about one user."""

    openid: str
    memory: memory.UserMemory
    context: ContextRow | None
    live: bool
    language: str | None  # None: not detected yet (answered in the default language)
    language_explicit: bool  # chosen with 「语言 xx」 rather than detected
    window: int
    window_source: str

    @property
    def history(self) -> list[list[Any]]:
        return self.memory.history


class UserOps(AdminBase):
    def users(self, offset: int, limit: int) -> tuple[int, list[UserSummary]]:
        """Users by last activity (three reads for a whole page, whatever its size)."""
        now, default = self.now(), self.settings.history_rounds

        def work(conn: Connection) -> tuple[int, list[UserSummary]]:
            total = memory.count_users(conn)
            page = memory.list_users(conn, offset, limit)
            ids = [openid for openid, _ in page]
            live = _rows_by_openid(
                conn, contexts, ids, contexts.c.state, contexts.c.expires_at, contexts.c.history
            )
            stored = _rows_by_openid(
                conn,
                memory.memories,
                ids,
                memory.memories.c.history,
                memory.memories.c.history_rounds,
            )
            langs = _rows_by_openid(conn, language.languages, ids, language.languages.c.language)
            users = []
            for openid, last_active in page:
                ctx, mem, lang = live.get(openid), stored.get(openid), langs.get(openid)
                raw = ctx.history if ctx is not None else (mem.history if mem is not None else None)
                history = json.loads(raw or "[]")
                rounds = mem.history_rounds if mem is not None else None
                users.append(
                    UserSummary(
                        openid=openid,
                        last_active=float(last_active or 0.0),
                        state=ctx.state if ctx is not None else None,
                        live=ctx is not None and ctx.expires_at > now,
                        last_said=_last_said(history),
                        rounds_kept=sum(1 for m in history if m[0] == "user"),
                        language=lang.language if lang is not None else None,
                        window=rounds or default,
                        window_source="user" if rounds else "default",
                    )
                )
            return total, users

        return self.read(work)

    def user(self, openid: str) -> UserView:
        now, default = self.now(), self.settings.history_rounds

        def work(conn: Connection) -> UserView:
            found = _memory_or_404(conn, openid)
            row = context.get_context(conn, openid)
            lang, explicit = language.stored(conn, openid)
            return UserView(
                openid=openid,
                memory=found,
                context=row,
                live=row is not None and row.expires_at > now,
                language=lang,
                language_explicit=explicit,
                window=found.window(default),
                window_source="user" if found.rounds else "default",
            )

        return self.read(work)

    def set_window(self, openid: str, rounds: object) -> memory.UserMemory:
        """Set the user's history window (None: back to WXBOT_HISTORY_ROUNDS), trimming what
        is kept to it at once."""
        valid = rounds is None or (
            isinstance(rounds, int)
            and not isinstance(rounds, bool)
            and 1 <= rounds <= MAX_HISTORY_ROUNDS
        )
        if not valid:
            raise AdminError(422, WINDOW_RULE)
        now, default = self.now(), self.settings.history_rounds

        def work(conn: Connection) -> memory.UserMemory:
            found = _memory_or_404(conn, openid, lock=True)
            found.history = memory.set_window(conn, found, rounds, default, now)  # type: ignore[arg-type]
            found.rounds = rounds  # type: ignore[assignment]
            return found

        return self.write(work)

    def clear_history(self, openid: str) -> int:
        """Forget what the user said, in the live context and in their stored memory (their
        state, window and usage stay); returns how many messages went."""
        now = self.now()

        def work(conn: Connection) -> int:
            found = _memory_or_404(conn, openid, lock=True)
            memory.clear_history(conn, openid, now)
            return len(found.history)

        return self.write(work)

    def forget_user(self, openid: str) -> None:
        """Everything stored about the user goes, as on unsubscribe."""

        def work(conn: Connection) -> None:
            _memory_or_404(conn, openid, lock=True)
            self.bot.forget_user(conn, openid)

        self.write(work)


def _memory_or_404(conn: Connection, openid: str, lock: bool = False) -> memory.UserMemory:
    if lock:  # serialise with the user's messages: the engine saves what it loaded
        context.lock_context(conn, openid)
    found = memory.load(conn, openid) if _stored_as_given(conn, openid) else None
    if found is None:
        raise AdminError(404, f"no session for {openid!r}")
    return found


def _stored_as_given(conn: Connection, openid: str) -> bool:
    """Whether something is stored under exactly ``openid``. MySQL compares strings ignoring
    trailing spaces (utf8mb4_bin is a PAD SPACE collation): there ``o_u%20`` in a URL finds
    the rows of ``o_u``, and deleting "o_u " would forget o_u."""
    for table in (contexts, memory.memories):
        same = select(table.c.openid).where(table.c.openid == openid)
        if openid in conn.execute(same).scalars().all():
            return True
    return False


def _rows_by_openid(conn: Connection, table: Any, ids: list[str], *columns: Any) -> dict[str, Any]:
    if not ids:
        return {}
    rows = conn.execute(select(table.c.openid, *columns).where(table.c.openid.in_(ids)))
    return {r.openid: r for r in rows}


def _last_said(history: list[list[Any]]) -> str:
    for role, text, *_ in reversed(history):
        if role == "user":
            return str(text)
    return ""
