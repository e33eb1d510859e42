"""/admin/synonyms and /admin/learned (tabs of 知识库): synonym groups (search, add, edit,
delete) and the wordings the bot learned from users' did-you-mean picks (undo)."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, page_number, paging, shown_version
from wxbot.dialog.handlers.query import DID_YOU_MEAN

GROUPS_PER_PAGE = 50
DONE = {
    "created": "已添加同义词组。",
    "saved": "已保存。",
    "deleted": "已删除同义词组。",
    "exists": "已经有这组同义词（同样的词），没有重复添加。",
}
CHANGED = "同义词组 #{id} 在你打开之后被修改过（另一位管理员或另一个标签页），现在是「{words}」。"
SAVE_CONFLICT = CHANGED + "你的修改还没有保存，留在编辑框里：确认后再点保存，会用它覆盖现在的词。"
DELETE_CONFLICT = CHANGED + "没有删除：仍要删除请再点删除。"
DELETED = (
    "同义词组 #{id} 已被删除（在另一个标签页，或被另一位管理员删除），你的修改没有保存。"
    "你填写的词放在了添加框里：可以另存为新的一组。"
)


def _synonyms_page(
    status: int = 200,
    error: str = "",
    new_words: str = "",
    editing: tuple[int, str, str] | None = None,
) -> tuple[str, int]:
    """The synonyms tab; a refused form is shown again with what was typed (``new_words``,
    or ``editing``: the group, its typed words and the version they were typed over)."""
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
    try:  # once: a double click or the back button adds no second, identical group
        _, created = admin().create_synonyms_once(words, source="console")
    except AdminError as exc:
        return _synonyms_page(exc.status, labels.reason(exc.reason), new_words=words)
    return redirect(url_for("console.synonyms", done="created" if created else "exists"), code=303)


@bp.post("/synonyms/<int:group_id>")
def save_synonyms(group_id: int) -> Response | tuple[str, int]:
    words = request.form.get("words", "")
    ops = admin()
    try:
        ops.replace_synonyms(group_id, words, expected=shown_version())
    except AdminError as exc:
        if exc.status == 404:  # deleted meanwhile: what was typed can become a new group
            return _synonyms_page(404, DELETED.format(id=group_id), new_words=words)
        if exc.status == 412:  # changed meanwhile: show the words now, keep the typed ones
            current = ops.synonym_group(group_id)
            error = SAVE_CONFLICT.format(id=group_id, words=" ".join(current.words))
            return _synonyms_page(409, error, editing=(group_id, words, current.version))
        typed = (group_id, words, request.form.get("version", ""))
        return _synonyms_page(exc.status, labels.reason(exc.reason), editing=typed)
    return redirect(
        url_for("console.synonyms", done="saved", q=request.args.get("q", "")), code=303
    )


@bp.post("/synonyms/<int:group_id>/delete")
def delete_synonyms(group_id: int) -> Response | tuple[str, int]:
    """Only the words the page showed: a group changed since is shown again, not deleted."""
    ops = admin()
    try:
        ops.delete_synonyms(group_id, expected=shown_version())
    except AdminError as exc:
        if exc.status != 412:
            raise
        current = ops.synonym_group(group_id)
        return _synonyms_page(
            409, DELETE_CONFLICT.format(id=group_id, words=" ".join(current.words))
        )
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
