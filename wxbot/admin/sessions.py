"""/admin/api/sessions and /admin/api/stats."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from wxbot.admin.api import admin, bp, page_of, paging
from wxbot.dialog import context
from wxbot.dialog.delivery import public_slots


def _session(row: context.ContextRow, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "openid": row.openid,
        "state": row.state,
        "slots": public_slots(row.slots),
        "rounds": row.rounds,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "expires_at": row.expires_at,
    }
    if full:
        data["history"] = row.history
    return data


@bp.get("/sessions")
def list_sessions() -> Response:
    page, per_page = paging()
    total, rows = admin().sessions((page - 1) * per_page, per_page)
    return page_of([_session(r) for r in rows], total, page, per_page)


@bp.get("/sessions/<openid>")
def get_session(openid: str) -> Response:
    return jsonify(_session(admin().session(openid), full=True))


@bp.delete("/sessions/<openid>")
def delete_session(openid: str) -> Response:
    """Forget everything stored about the user, as on unsubscribe."""
    admin().forget_user(openid)
    return jsonify(deleted=openid)


@bp.get("/stats")
def stats() -> Response:
    return jsonify(admin().stats())
