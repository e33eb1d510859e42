"""/admin/conversations: users by last activity (from their memory, so a user whose context
was evicted is still there); one user's history as a chat, their state, slots, reply
language and history window; setting the window, clearing the history, forgetting the user."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.admin.ops.users import WINDOW_RULE
from wxbot.config import MAX_HISTORY_ROUNDS
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, as_int, bp, page_number, paging
from wxbot.dialog.delivery import public_slots

DONE = {
    "cleared": "已清除历史记录。",
    "window": "已设置历史轮数，保存的历史已按新的轮数截取。",
}


@bp.get("/conversations")
def conversations() -> str:
    page = page_number()
    total, users = admin().users((page - 1) * PER_PAGE, PER_PAGE)
    return render_template(
        "console/conversations.html",
        nav="conversations",
        users=users,
        done=request.args.get("done", ""),
        **paging(total, page),
    )


def _page(openid: str, status: int = 200, error: str = "") -> tuple[str, int]:
    ops = admin()
    user = ops.user(openid)
    html = render_template(
        "console/conversation.html",
        nav="conversations",
        user=user,
        row=user.context,
        slots=public_slots(user.context.slots) if user.context is not None else {},
        history=[(role, text) for role, text, *_ in user.history],
        usage=user.memory.usage(ops.now()),
        default_window=ops.settings.history_rounds,
        max_window=MAX_HISTORY_ROUNDS,
        typed_window=request.form.get("history_rounds"),
        llm_answers=ops.llm_answers(0, 1, openid)[0],
        done=DONE.get(request.args.get("done", ""), ""),
        error=error,
    )
    return html, status


@bp.get("/conversations/<openid>")
def conversation(openid: str) -> tuple[str, int]:
    return _page(openid)


@bp.post("/conversations/<openid>/window")
def set_window(openid: str) -> Response | tuple[str, int]:
    """The user's history window: a number of rounds, or empty for the default."""
    raw = request.form.get("history_rounds", "").strip()
    rounds = as_int(raw)
    if raw and rounds is None:
        return _page(openid, 422, labels.reason(WINDOW_RULE))
    try:
        admin().set_window(openid, rounds)
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _page(openid, exc.status, labels.reason(exc.reason))
    return redirect(url_for("console.conversation", openid=openid, done="window"), code=303)


@bp.post("/conversations/<openid>/clear")
def clear_history(openid: str) -> Response:
    admin().clear_history(openid)
    return redirect(url_for("console.conversation", openid=openid, done="cleared"), code=303)


@bp.post("/conversations/<openid>/forget")
def forget(openid: str) -> Response:
    admin().forget_user(openid)
    return redirect(url_for("console.conversations", done="forgotten"), code=303)
