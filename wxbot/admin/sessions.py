"""/admin/api/sessions (users, their context, memory and usage) and /admin/api/stats.

A "user" is anyone we keep something for: a context row (live or expired, not yet evicted)
or a memory row (the durable history, window setting and LLM usage).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from wxbot.admin.api import ApiError, admin, bp, json_body, page_of, paging
from wxbot.admin.ops import UserView
from wxbot.config import MAX_HISTORY_ROUNDS
from wxbot.dialog.delivery import public_slots


def _window(window: int, source: str) -> dict[str, Any]:
    return {"history_rounds": window, "history_rounds_source": source}


def _context(user: UserView) -> dict[str, Any]:
    row = user.context
    if row is None:
        return {"state": None, "live": False}
    return {
        "state": row.state,
        "slots": public_slots(row.slots),
        "rounds": row.rounds,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
        "live": user.live,
    }


@bp.get("/sessions")
def list_sessions() -> Response:
    page, per_page = paging()
    total, users = admin().users((page - 1) * per_page, per_page)
    items = [
        {
            "openid": u.openid,
            "last_active": u.last_active,
            "live": u.live,
            "state": u.state,
            "language": u.language,
        }
        for u in users
    ]
    return page_of(items, total, page, per_page)


@bp.get("/sessions/<openid>")
def get_session(openid: str) -> Response:
    ops = admin()
    user = ops.user(openid)
    data: dict[str, Any] = {"openid": openid, "last_active": user.memory.last_active}
    data.update(_context(user))
    data["history"] = user.history
    data.update(_window(user.window, user.window_source))
    data["usage"] = user.memory.usage(ops.now())
    data["language"] = {"code": user.language, "explicit": user.language_explicit}
    return jsonify(data)


@bp.put("/sessions/<openid>")
def update_session(openid: str) -> Response:
    """``{"history_rounds": 1..50}`` sets the user's window (null: back to the default)."""
    data = json_body()
    unknown = set(data) - {"history_rounds"}
    if unknown or "history_rounds" not in data:
        raise ApiError(
            422,
            f'give {{"history_rounds": N}}, N a whole number from 1 to {MAX_HISTORY_ROUNDS}'
            " (null: the default)",
        )
    ops = admin()
    found = ops.set_window(openid, data["history_rounds"])
    window = found.window(ops.settings.history_rounds)
    source = "user" if found.rounds else "default"
    return jsonify(openid=openid, **_window(window, source), total_messages=len(found.history))


@bp.get("/sessions/<openid>/history")
def get_history(openid: str) -> Response:
    user = admin().user(openid)
    messages = [{"role": role, "content": text} for role, text, *_ in user.history]
    return jsonify(
        openid=openid,
        messages=messages,
        total_messages=len(messages),
        total_rounds=sum(1 for m in messages if m["role"] == "user"),
        **_window(user.window, user.window_source),
    )


@bp.delete("/sessions/<openid>/history")
def clear_history(openid: str) -> Response:
    """Forget what was said; the user, their dialogue state, window and usage stay."""
    return jsonify(openid=openid, cleared_messages=admin().clear_history(openid))


@bp.delete("/sessions/<openid>")
def delete_session(openid: str) -> Response:
    """Forget everything stored about the user, as on unsubscribe."""
    admin().forget_user(openid)
    return jsonify(deleted=openid)


@bp.get("/stats")
def stats() -> Response:
    return jsonify(admin().stats())
