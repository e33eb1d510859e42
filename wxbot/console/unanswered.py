"""/admin/unanswered: what users asked that the bot could not answer, and teaching it in a
step: as a new entry, or as one more question of an existing entry."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, lines, page_number, paging
from wxbot.qa import store

SORTS = {"newest": True, "count": False}  # sort name -> newest_first
TAUGHT_BY = "admin-console"


@bp.get("/unanswered")
def unanswered() -> str:
    page = page_number()
    sort = request.args.get("sort", "newest")
    if sort not in SORTS:
        sort = "newest"
    ops = admin()
    total, items = ops.read(
        lambda conn: store.list_unanswered(
            conn, (page - 1) * PER_PAGE, PER_PAGE, newest_first=SORTS[sort]
        )
    )
    for item in items:
        item["similar"] = ops.similar_entries(str(item["question"]))
    done_entry = request.args.get("entry", "")
    return render_template(
        "console/unanswered.html",
        nav="unanswered",
        items=items,
        sort=sort,
        done=request.args.get("done", ""),
        done_entry=int(done_entry) if done_entry.isdigit() else None,
        **paging(total, page),
    )


def _teach_page(item: dict[str, Any], status: int, error: str = "") -> tuple[str, int]:
    html = render_template(
        "console/unanswered_teach.html",
        nav="unanswered",
        item=item,
        questions=request.form.get("questions", str(item["question"])),
        answer=request.form.get("answer", ""),
        error=error,
    )
    return html, status


@bp.get("/unanswered/<int:unanswered_id>/answer")
def teach_form(unanswered_id: int) -> tuple[str, int]:
    return _teach_page(admin().unanswered(unanswered_id), 200)


@bp.post("/unanswered/<int:unanswered_id>/answer")
def teach(unanswered_id: int) -> Response | tuple[str, int]:
    """A new entry: the question (as edited, plus any similar wordings) and its answer."""
    ops = admin()
    item = ops.unanswered(unanswered_id)
    try:
        entry_id = ops.answer_unanswered(
            unanswered_id,
            lines(request.form.get("questions", "")),
            request.form.get("answer", ""),
            source="console",
            taught_by=TAUGHT_BY,
        )
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _teach_page(item, exc.status, labels.reason(exc.reason))  # nothing typed is lost
    return redirect(url_for("console.unanswered", done="taught", entry=entry_id), code=303)


@bp.get("/unanswered/<int:unanswered_id>/attach")
def attach_form(unanswered_id: int) -> str:
    """Pick the entry to attach to: the matcher's guesses, or a search."""
    ops = admin()
    item = ops.unanswered(unanswered_id)
    search = request.args.get("q", "").strip()
    found = ops.entries(search, 0, PER_PAGE)[1] if search else []
    return render_template(
        "console/unanswered_attach.html",
        nav="unanswered",
        item=item,
        similar=ops.similar_entries(str(item["question"]), limit=5),
        search=search,
        found=found,
    )


@bp.post("/unanswered/<int:unanswered_id>/attach")
def attach(unanswered_id: int) -> Response:
    raw = request.form.get("entry_id", "").strip().lstrip("#")
    if not raw.isdigit():
        raise AdminError(422, "请选择要归入的条目。")
    entry_id = int(raw)
    admin().attach_unanswered(unanswered_id, entry_id)
    return redirect(url_for("console.unanswered", done="attached", entry=entry_id), code=303)


@bp.post("/unanswered/<int:unanswered_id>/dismiss")
def dismiss(unanswered_id: int) -> Response:
    admin().dismiss_unanswered(unanswered_id)
    return redirect(url_for("console.unanswered", done="dismissed"), code=303)
