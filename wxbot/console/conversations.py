"""/admin/conversations: users by last activity; one user's history as a chat, their state
and slots; clearing the history or forgetting the user."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from wxbot.console.web import PER_PAGE, admin, bp, page_number, paging
from wxbot.dialog.delivery import public_slots


def _last_said(history: list[list[object]]) -> str:
    for role, text, *_ in reversed(history):
        if role == "user":
            return str(text)
    return ""


@bp.get("/conversations")
def conversations() -> str:
    page = page_number()
    ops = admin()
    total, rows = ops.sessions((page - 1) * PER_PAGE, PER_PAGE, live_only=False)
    now = ops.now()
    users = [
        {
            "openid": r.openid,
            "state": r.state,
            "updated_at": r.updated_at,
            "live": r.expires_at > now,
            "last_said": _last_said(r.history),
            "exchanges": len(r.history) // 2,
        }
        for r in rows
    ]
    return render_template(
        "console/conversations.html",
        nav="conversations",
        users=users,
        done=request.args.get("done", ""),
        **paging(total, page),
    )


@bp.get("/conversations/<openid>")
def conversation(openid: str) -> str:
    ops = admin()
    row = ops.session(openid)
    return render_template(
        "console/conversation.html",
        nav="conversations",
        user=row,
        live=row.expires_at > ops.now(),
        slots=public_slots(row.slots),
        history=[(role, text) for role, text, *_ in row.history],
        done=request.args.get("done", ""),
    )


@bp.post("/conversations/<openid>/clear")
def clear_history(openid: str) -> Response:
    admin().clear_history(openid)
    return redirect(url_for("console.conversation", openid=openid, done="cleared"), code=303)


@bp.post("/conversations/<openid>/forget")
def forget(openid: str) -> Response:
    admin().forget_user(openid)
    return redirect(url_for("console.conversations", done="forgotten"), code=303)
