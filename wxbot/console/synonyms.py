"""/admin/synonyms and /admin/learned (tabs of 知识库): synonym groups (search, add, edit,
delete) and the wordings the bot learned from users' did-you-mean picks (undo)."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, page_number, paging
from wxbot.dialog.handlers.query import DID_YOU_MEAN

GROUPS_PER_PAGE = 50
DONE = {
    "created": "已添加同义词组。",
    "saved": "已保存。",
    "deleted": "已删除同义词组。",
}


def _synonyms_page(
    status: int = 200, error: str = "", new_words: str = "", editing: tuple[int, str] | None = None
) -> tuple[str, int]:
    """The synonyms tab; a refused form is shown again with what was typed (``new_words``,
    or ``editing``: the group and its typed words)."""
    page = page_number()
    search = request.args.get("q", "").strip()
    groups = admin().synonym_groups(search)[::-1]  # newest first: what was just added is on top
    start = (page - 1) * GROUPS_PER_PAGE
    html = render_template(
        "console/synonyms.html",
        nav="knowledge",
        tab="synonyms",
        groups=groups[start : start + GROUPS_PER_PAGE],
        search=search,
        new_words=new_words,
        editing=editing,
        error=error,
        done=DONE.get(request.args.get("done", ""), ""),
        **paging(len(groups), page, GROUPS_PER_PAGE),
    )
    return html, status


@bp.get("/synonyms")
def synonyms() -> tuple[str, int]:
    return _synonyms_page()


@bp.post("/synonyms")
def create_synonyms() -> Response | tuple[str, int]:
    words = request.form.get("words", "")
    try:
        admin().create_synonyms(words, source="console")
    except AdminError as exc:
        return _synonyms_page(exc.status, labels.reason(exc.reason), new_words=words)
    return redirect(url_for("console.synonyms", done="created"), code=303)


@bp.post("/synonyms/<int:group_id>")
def save_synonyms(group_id: int) -> Response | tuple[str, int]:
    words = request.form.get("words", "")
    try:
        admin().replace_synonyms(group_id, words)
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _synonyms_page(exc.status, labels.reason(exc.reason), editing=(group_id, words))
    return redirect(
        url_for("console.synonyms", done="saved", q=request.args.get("q", "")), code=303
    )


@bp.post("/synonyms/<int:group_id>/delete")
def delete_synonyms(group_id: int) -> Response:
    admin().delete_synonyms(group_id)
    return redirect(url_for("console.synonyms", done="deleted"), code=303)


@bp.get("/learned")
def learned() -> str:
    page = page_number()
    ops = admin()
    total, items = ops.learned((page - 1) * PER_PAGE, PER_PAGE)
    return render_template(
        "console/learned.html",
        nav="knowledge",
        tab="learned",
        items=items,
        min_users=ops.settings.alias_min_users,
        did_you_mean=DID_YOU_MEAN.split("\n", 1)[0],  # what users read (the catalogue's text)
        undone=request.args.get("undone", ""),
        **paging(total, page),
    )


@bp.post("/learned/<int:question_id>/undo")
def undo_learned(question_id: int) -> Response:
    undone = admin().undo_learned(question_id)
    return redirect(url_for("console.learned", undone=undone["question"]), code=303)
