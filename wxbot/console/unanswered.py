"""/admin/unanswered: what users asked that the bot could not answer, and teaching it in a
step: as a new entry, or as one more question of an existing entry; one question at a time,
or a whole group of questions that say the same thing."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, as_int, bp, form_ids, lines, page_number, paging

SORTS = {"newest": True, "count": False}  # sort name -> newest_first
GROUPED = "grouped"
TAUGHT_BY = "admin-console"
GROUP_CHANGED = (
    "这组里有的问题已经不在列表里（可能刚被另一位管理员回答、归入或忽略），没有保存。"
    "下面是还在列表里的问题，你的回答留在表单里：看过再提交。"
)
GONE = (
    "这个未答问题已经不在列表里（可能刚被另一位管理员回答、归入或忽略），你的回答没有保存。"
    "你填写的内容还在下面：可以另存为新条目。"
)


@bp.get("/unanswered")
def unanswered() -> str:
    page = page_number()
    sort = request.args.get("sort", "newest")
    if sort not in (*SORTS, GROUPED):
        sort = "newest"
    ops = admin()
    if sort == GROUPED:
        groups = sorted(ops.unanswered_grouped(), key=lambda g: -int(g["total"]))
        total, items = len(groups), groups[(page - 1) * PER_PAGE : page * PER_PAGE]
    else:
        total, items = ops.unanswered_page((page - 1) * PER_PAGE, PER_PAGE, SORTS[sort])
    for item in items:
        item["guesses"] = ops.similar_entries(str(item["question"]))
    done_entry = as_int(request.args.get("entry", ""))
    done = request.args.get("done", "")
    if done in ("taught", "attached") and done_entry is None:
        # the notice links to the entry: without one (a hand-edited or truncated URL) it
        # is left out, rather than the page failing to build the link (a 500)
        done = ""
    return render_template(
        "console/unanswered.html",
        nav="unanswered",
        items=items,
        sort=sort,
        done=done,
        done_count=request.args.get("n", ""),
        done_entry=done_entry,
        **paging(total, page),
    )


def _group_of(unanswered_id: int) -> list[dict[str, Any]]:
    """The other questions of the group this one leads (none when it leads no group)."""
    for group in admin().unanswered_grouped():
        if group["id"] == unanswered_id:
            return list(group["similar"])
    return []


def _done(done: str, entry_id: int, ids: list[int]) -> Response:
    target = url_for("console.unanswered", done=done, entry=entry_id, n=len(ids) + 1)
    if request.form.get("view") == GROUPED:
        target = url_for(
            "console.unanswered", sort=GROUPED, done=done, entry=entry_id, n=len(ids) + 1
        )
    return redirect(target, code=303)


def _teach_page(
    item: dict[str, Any], similar: list[dict[str, Any]], status: int, error: str = ""
) -> tuple[str, int]:
    chosen = set(form_ids("similar")) if request.method == "POST" else {s["id"] for s in similar}
    html = render_template(
        "console/unanswered_teach.html",
        nav="unanswered",
        item=item,
        similar=similar,
        chosen=chosen,
        questions=request.form.get("questions", str(item["question"])),
        answer=request.form.get("answer", ""),
        view=request.values.get("view", ""),
        error=error,
    )
    return html, status


@bp.get("/unanswered/<int:unanswered_id>/answer")
def teach_form(unanswered_id: int) -> tuple[str, int]:
    item = admin().unanswered(unanswered_id)
    similar = _group_of(unanswered_id) if request.args.get("group") else []
    return _teach_page(item, similar, 200)


@bp.post("/unanswered/<int:unanswered_id>/answer")
def teach(unanswered_id: int) -> Response | tuple[str, int]:
    """A new entry: the question (as edited, plus any similar wordings), or the group's
    questions that are ticked (``similar``), and its answer."""
    ops = admin()
    similar = form_ids("similar")
    group = "questions" not in request.form  # the group form sends ticks, not a textarea
    typed = lines(request.form.get("questions", ""))
    try:
        item = ops.unanswered(unanswered_id)
    except AdminError:
        # sent twice (a double click, the back button): the first sending taught it (as
        # typed, or as asked: a question on several lines, unedited, is one question)
        answer = request.form.get("answer", "")
        again = None
        if not group:
            again = ops.identical_entry(typed, answer) or ops.identical_entry(
                ["\n".join(typed)], answer
            )
        return _gone_page() if again is None else _done("taught", again, similar)
    # the question as asked, unedited, is taught whole: one a user sent on several lines
    # shows on several lines of the textarea, and is still one question
    as_asked = group or typed == lines(str(item["question"]))
    try:
        entry_id = ops.answer_unanswered(
            unanswered_id,
            None if as_asked else typed,
            request.form.get("answer", ""),
            source="console",
            taught_by=TAUGHT_BY,
            similar=similar,
        )
    except AdminError as exc:
        offered = ops.unanswered_many(form_ids("offered")) if group else []
        if exc.status == 404 and not ops.unanswered_many([unanswered_id]):
            return _gone_page()  # handled by another admin between the two reads
        if exc.status == 404:  # one of the group's other questions was: show what is left
            return _teach_page(item, offered, 404, GROUP_CHANGED)
        return _teach_page(item, offered, exc.status, labels.reason(exc.reason))  # typed: kept
    return _done("taught", entry_id, similar)


def _gone_page() -> tuple[str, int]:
    """An answer typed for a question another admin answered, attached or dismissed
    meanwhile: kept, ready to be saved as a new entry."""
    typed = {k: request.form.get(k, "") for k in ("questions", "answer", "language")}
    html = render_template("console/entry_new.html", nav="unanswered", error=GONE, **typed)
    return html, 404


@bp.get("/unanswered/<int:unanswered_id>/attach")
def attach_form(unanswered_id: int) -> str:
    """Pick the entry to attach to: the matcher's guesses, or a search (``group=1``: with the
    questions of the group it leads)."""
    ops = admin()
    item = ops.unanswered(unanswered_id)
    search = request.args.get("q", "").strip()
    found = ops.entries(search, 0, PER_PAGE)[1] if search else []
    return render_template(
        "console/unanswered_attach.html",
        nav="unanswered",
        item=item,
        similar=_group_of(unanswered_id) if request.args.get("group") else [],
        guesses=ops.similar_entries(str(item["question"]), limit=5),
        search=search,
        found=found,
        view=request.args.get("view", ""),
    )


@bp.post("/unanswered/<int:unanswered_id>/attach")
def attach(unanswered_id: int) -> Response:
    entry_id = as_int(request.form.get("entry_id", "").strip().lstrip("#"))
    if entry_id is None:
        raise AdminError(422, "请选择要归入的条目。")
    similar = form_ids("similar")
    ops = admin()
    ops.entry(entry_id)  # an entry deleted meanwhile: 404 before anything else
    ops.attach_unanswered(unanswered_id, entry_id, similar)
    return _done("attached", entry_id, similar)


@bp.post("/unanswered/<int:unanswered_id>/dismiss")
def dismiss(unanswered_id: int) -> Response:
    similar = form_ids("similar")
    admin().dismiss_unanswered(unanswered_id, similar)
    view = {"sort": GROUPED} if request.form.get("view") == GROUPED else {}
    return redirect(url_for("console.unanswered", done="dismissed", **view), code=303)
