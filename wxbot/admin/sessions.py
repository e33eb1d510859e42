"""/admin/api/sessions and /admin/api/stats."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify
from sqlalchemy import func, select

from wxbot.admin.api import ApiError, bp, page_of, paging
from wxbot.db import with_retries
from wxbot.dialog import context
from wxbot.dialog.delivery import public_slots
from wxbot.flows import stats as flow_stats
from wxbot.qa import store


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
    now = current_app.extensions["wxbot.clock"]()
    contexts = context.contexts
    with current_app.extensions["wxbot.engine"].connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(contexts).where(contexts.c.expires_at > now)
        ).scalar_one()
        rows = context.list_contexts(conn, now, limit=per_page, offset=(page - 1) * per_page)
    return page_of([_session(r) for r in rows], int(total), page, per_page)


@bp.get("/sessions/<openid>")
def get_session(openid: str) -> Response:
    with current_app.extensions["wxbot.engine"].connect() as conn:
        row = context.get_context(conn, openid)
    if row is None:
        raise ApiError(404, f"no session for {openid!r}")
    return jsonify(_session(row, full=True))


@bp.delete("/sessions/<openid>")
def delete_session(openid: str) -> Response:
    """Forget everything stored about the user, as on unsubscribe."""
    engine = current_app.extensions["wxbot.engine"]
    bot = current_app.extensions["wxbot.bot"]

    def run() -> bool:
        with engine.begin() as conn:
            if context.get_context(conn, openid) is None:
                return False
            bot.forget_user(conn, openid)
            return True

    if not with_retries(run):
        raise ApiError(404, f"no session for {openid!r}")
    return jsonify(deleted=openid)


@bp.get("/stats")
def stats() -> Response:
    now = current_app.extensions["wxbot.clock"]()
    contexts = context.contexts
    kb = current_app.extensions["wxbot.bot"].deps.kb
    with current_app.extensions["wxbot.engine"].connect() as conn:
        live = conn.execute(
            select(func.count()).select_from(contexts).where(contexts.c.expires_at > now)
        ).scalar_one()
        stored = context.count_contexts(conn)
        knowledge = store.counts(conn)
        runner = current_app.extensions.get("wxbot.flows")
        flows = flow_stats.funnel(conn, runner.flows if runner else [], now)
    return jsonify(
        sessions={"live": int(live), "stored": int(stored)},
        knowledge={**knowledge, "loaded_here": len(kb) if kb is not None else 0},
        flows=flows,
    )
