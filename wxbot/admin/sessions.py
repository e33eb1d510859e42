"""/admin/api/sessions (users, their context, memory and usage) and /admin/api/stats.

A "user" is anyone we keep something for: a context row (live or expired, not yet evicted)
or a memory row (the durable history, window setting and LLM usage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, jsonify
from sqlalchemy import Connection

from wxbot.admin.api import ApiError, admin, bp, json_body, page_of, paging
from wxbot.config import MAX_HISTORY_ROUNDS
from wxbot.db import with_retries
from wxbot.dialog import context
from wxbot.dialog.delivery import public_slots
from wxbot.llm import memory

T = TypeVar("T")


def _now() -> float:
    return current_app.extensions["wxbot.clock"]()


def _default_rounds() -> int:
    return current_app.extensions["wxbot.settings"].history_rounds


def _read(work: Callable[[Connection], T]) -> T:
    with current_app.extensions["wxbot.engine"].connect() as conn:
        return work(conn)


def _write(work: Callable[[Connection], T]) -> T:
    def run() -> T:
        with current_app.extensions["wxbot.engine"].begin() as conn:
            return work(conn)

    return with_retries(run)


def _memory_or_404(conn: Connection, openid: str, lock: bool = False) -> memory.UserMemory:
    if lock:  # serialise with the user's messages: the engine saves what it loaded
        context.lock_context(conn, openid)
    found = memory.load(conn, openid)
    if found is None:
        raise ApiError(404, f"no session for {openid!r}")
    return found


def _window(found: memory.UserMemory) -> dict[str, Any]:
    return {
        "history_rounds": found.window(_default_rounds()),
        "history_rounds_source": "user" if found.rounds else "default",
    }


def _context(row: context.ContextRow, now: float) -> dict[str, Any]:
    return {
        "state": row.state,
        "slots": public_slots(row.slots),
        "rounds": row.rounds,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
        "live": row.expires_at > now,
    }


@bp.get("/sessions")
def list_sessions() -> Response:
    page, per_page = paging()
    now = _now()

    def read(conn: Connection) -> tuple[int, list[dict[str, Any]]]:
        total = memory.count_users(conn)
        items = []
        for openid, last_active in memory.list_users(conn, (page - 1) * per_page, per_page):
            row = context.get_context(conn, openid)
            items.append(
                {
                    "openid": openid,
                    "last_active": last_active,
                    "live": row is not None and row.expires_at > now,
                    "state": row.state if row is not None else None,
                }
            )
        return total, items

    total, items = _read(read)
    return page_of(items, total, page, per_page)


@bp.get("/sessions/<openid>")
def get_session(openid: str) -> Response:
    now = _now()

    def read(conn: Connection) -> dict[str, Any]:
        found = _memory_or_404(conn, openid)
        row = context.get_context(conn, openid)
        data: dict[str, Any] = {"openid": openid, "last_active": found.last_active}
        data.update(_context(row, now) if row is not None else {"state": None, "live": False})
        data["history"] = found.history
        data.update(_window(found))
        data["usage"] = found.usage(now)
        return data

    return jsonify(_read(read))


@bp.put("/sessions/<openid>")
def update_session(openid: str) -> Response:
    """``{"history_rounds": 1..50}`` sets the user's window (null: back to the default)."""
    data = json_body()
    unknown = set(data) - {"history_rounds"}
    if unknown or "history_rounds" not in data:
        raise ApiError(
            422, 'give {"history_rounds": N}, N a whole number from 1 to 50 (null: the default)'
        )
    rounds = data["history_rounds"]
    valid = rounds is None or (
        isinstance(rounds, int)
        and not isinstance(rounds, bool)
        and 1 <= rounds <= MAX_HISTORY_ROUNDS
    )
    if not valid:
        raise ApiError(422, f"history_rounds must be a whole number from 1 to {MAX_HISTORY_ROUNDS}")
    now = _now()

    def write(conn: Connection) -> memory.UserMemory:
        found = _memory_or_404(conn, openid, lock=True)
        found.history = memory.set_window(conn, found, rounds, _default_rounds(), now)
        found.rounds = rounds
        return found

    found = _write(write)
    return jsonify(openid=openid, **_window(found), total_messages=len(found.history))


@bp.get("/sessions/<openid>/history")
def get_history(openid: str) -> Response:
    found = _read(lambda conn: _memory_or_404(conn, openid))
    messages = [{"role": role, "content": text} for role, text, *_ in found.history]
    return jsonify(
        openid=openid,
        messages=messages,
        total_messages=len(messages),
        total_rounds=sum(1 for m in messages if m["role"] == "user"),
        **_window(found),
    )


@bp.delete("/sessions/<openid>/history")
def clear_history(openid: str) -> Response:
    """Forget what was said; the user, their dialogue state, window and usage stay."""
    return jsonify(openid=openid, cleared_messages=admin().clear_history(openid))


@bp.delete("/sessions/<openid>")
def delete_session(openid: str) -> Response:
    """Forget everything stored about the user, as on unsubscribe."""
    bot = current_app.extensions["wxbot.bot"]

    def write(conn: Connection) -> None:
        _memory_or_404(conn, openid, lock=True)
        bot.forget_user(conn, openid)

    _write(write)
    return jsonify(deleted=openid)


@bp.get("/stats")
def stats() -> Response:
    return jsonify(admin().stats())
