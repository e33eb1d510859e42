"""/admin/knowledge: search, view, edit (answer, language, similar questions), delete, export."""

from __future__ import annotations

import io

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from wxbot.admin.ops import Admin, AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, lines, page_number, paging, shown_version
from wxbot.qa.formats import ALL_FORMATS, MISSING, FormatError, write
from wxbot.qa.store import EntryRow
from wxbot.qa.text import question_key

TAUGHT_BY = "admin-console"
EXPORT_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "txt": "text/plain",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SAVED = {
    "1": "已保存。用户的下一条消息就会用上。",
    "again": "已保存。（同样的条目已经存在，没有重复创建。）",
    "added": "已添加相似问法。",
    "removed": "已删除这个问法。",
}
CHANGED = (
    "这个条目在你打开之后被修改过（另一位管理员、另一个标签页、文件导入，"
    "或从用户的选择里学到了新问法）。"
)
SAVE_CONFLICT = (
    CHANGED + "你的修改还没有保存：下面是现在保存的内容，你填写的内容留在表单里。"
    "确认后再点保存，会用你的内容覆盖现在的内容。"
)
DELETE_CONFLICT = CHANGED + "没有删除：请看看现在的内容，仍要删除请再点「删除条目」。"
ADD_CONFLICT = CHANGED + "相似问法还没有添加：请看看下面现在的问法，仍要添加请再点「添加」。"
REMOVE_CONFLICT = (
    CHANGED + "这次没有删除问法：请看看下面现在的问法（它可能已经不在了），"
    "仍要删除请再点它旁边的「删除」。"
)
DELETED = (
    "条目 #{id} 已被删除（在另一个标签页，或被另一位管理员删除），你的修改没有保存。"
    "你填写的内容还在下面：可以另存为新条目。"
)


@bp.get("/knowledge")
def knowledge() -> str:
    page = page_number()
    search = request.args.get("q", "").strip()
    total, entries = admin().entries(search, (page - 1) * PER_PAGE, PER_PAGE)
    return render_template(
        "console/knowledge.html",
        nav="knowledge",
        tab="entries",
        entries=entries,
        search=search,
        done=request.args.get("done", ""),
        formats=ALL_FORMATS,
        **paging(total, page),
    )


# how KnowledgeBase.explain's decision was made (wxbot.qa.explain), in words
MATCH_BY = {
    "learned": "学到的问法（用户在「你是不是想问」里选过，完全一致时直接回答）",
    "words": "只按词语匹配",
    "fusion": "词语 + 语义融合",
}
MATCH_MEANING = {
    "off": "未开启（没有设置 WXBOT_EMBEDDING_URL）",
    "skipped": "没有用到：按词语已经足够确定",
    "unavailable": "没有结果（问题还没有向量，或语义服务慢、不可用）",
    "used": "已使用（参与融合）",
}


@bp.get("/knowledge/match")
def knowledge_match() -> tuple[str, int]:
    """试一试: what the bot answers a question, and what from (KnowledgeBase.explain)."""
    asked = request.args.get("q")
    language = request.args.get("language", "")
    explained, error, status = None, "", 200
    if asked is not None:
        try:
            explained = admin().match_question(asked, language)
        except AdminError as exc:
            error, status = labels.reason(exc.reason), exc.status
    html = render_template(
        "console/knowledge_match.html",
        nav="knowledge",
        tab="entries",
        q=asked or "",
        language=language,
        x=explained,
        error=error,
        by=MATCH_BY,
        meaning=MATCH_MEANING,
    )
    return html, status


@bp.get("/knowledge/search.json")
def knowledge_search() -> Response:
    """Entries whose questions or answer contain ``q`` (the attach box's suggestions)."""
    search = request.args.get("q", "").strip()
    if not search:
        return jsonify(items=[])
    _, entries = admin().entries(search, 0, 8)
    items = [{"id": e.id, "question": e.questions[0] if e.questions else ""} for e in entries]
    return jsonify(items=items)


def _edit_page(
    entry: EntryRow,
    status: int = 200,
    error: str = "",
    typed: dict[str, str] | None = None,
    conflict: bool = False,
) -> tuple[str, int]:
    """The entry page; ``typed``: what the admin sent in a refused form, shown again with
    the version it was typed over (a save from it is still checked). ``conflict``: the
    entry changed since that version: the stored entry is shown above what was typed, and
    the form carries the current version, so saving again overwrites knowingly."""
    typed = typed or {}
    questions = typed.get("questions", "\n".join(entry.questions))
    kept = {question_key(q) for q in lines(questions)}
    html = render_template(
        "console/entry.html",
        nav="knowledge",
        entry=entry,
        version=entry.version if conflict else typed.get("version") or entry.version,
        questions=questions,
        answer=typed.get("answer", entry.answer),
        language=typed.get("language", entry.language or ""),
        new_questions=typed.get("new_questions", ""),
        conflict=conflict,
        dropped=[q for q in entry.questions if question_key(q) not in kept],
        error=error,
        saved=SAVED.get(request.args.get("saved", ""), ""),
    )
    return html, status


def _deleted_page(entry_id: int, typed: dict[str, str]) -> tuple[str, int]:
    """What was typed over an entry deleted meanwhile, ready to be saved as a new one."""
    error = DELETED.format(id=entry_id)
    fields = {k: typed.get(k, "") for k in ("questions", "answer", "language")}
    return render_template("console/entry_new.html", nav="knowledge", error=error, **fields), 404


@bp.get("/knowledge/<int:entry_id>")
def entry(entry_id: int) -> tuple[str, int]:
    return _edit_page(admin().entry(entry_id))


@bp.post("/knowledge/<int:entry_id>")
def save_entry(entry_id: int) -> Response | tuple[str, int]:
    ops = admin()
    typed = {k: request.form.get(k, "") for k in ("questions", "answer", "language", "version")}
    try:
        ops.update_entry(
            entry_id,
            questions=_edited_questions(ops, entry_id, typed["questions"]),
            answer=typed["answer"],
            language=typed["language"] if "language" in request.form else MISSING,
            expected=shown_version(),
        )
    except AdminError as exc:
        return _refused(entry_id, exc, typed)
    return redirect(url_for("console.entry", entry_id=entry_id, saved=1), code=303)


def _edited_questions(ops: Admin, entry_id: int, typed: str) -> list[str] | None:
    """The questions typed, or None (leave them as they are) when they are the ones stored,
    line for line: a question a user sent on several lines (stored as asked, attached from
    the unanswered list) shows on several lines of the textarea, and saving only the answer
    must not cut it into one question per line."""
    typed_lines = lines(typed)
    try:
        stored = ops.entry(entry_id).questions
    except AdminError:
        return typed_lines  # deleted meanwhile: the update says so
    return None if typed_lines == lines("\n".join(stored)) else typed_lines


def _refused(entry_id: int, exc: AdminError, typed: dict[str, str]) -> tuple[str, int]:
    """A refused save, with everything typed kept: the entry deleted meanwhile (404),
    changed meanwhile (409, with the current entry), or the input refused."""
    try:
        current = admin().entry(entry_id)
    except AdminError:
        return _deleted_page(entry_id, typed)
    if exc.status == 412:
        return _edit_page(current, 409, SAVE_CONFLICT, typed, conflict=True)
    return _edit_page(current, exc.status, labels.reason(exc.reason), typed)


@bp.post("/knowledge/<int:entry_id>/questions")
def add_questions(entry_id: int) -> Response | tuple[str, int]:
    """More similar questions, one per line (those the entry has already are skipped), to
    the entry the page showed: one changed since is shown again, with what was typed."""
    ops = admin()
    current = ops.entry(entry_id)
    typed = request.form.get("new_questions", "")
    try:
        ops.add_questions(entry_id, lines(typed), expected=shown_version())
    except AdminError as exc:
        if exc.status == 404:
            raise
        if exc.status == 412:
            return _edit_page(ops.entry(entry_id), 409, ADD_CONFLICT, {"new_questions": typed})
        return _edit_page(current, exc.status, labels.reason(exc.reason), {"new_questions": typed})
    return redirect(url_for("console.entry", entry_id=entry_id, saved="added"), code=303)


@bp.post("/knowledge/<int:entry_id>/questions/remove")
def remove_question(entry_id: int) -> Response | tuple[str, int]:
    """One question off the entry the page showed: one changed since is shown again."""
    ops = admin()
    ops.entry(entry_id)  # a deleted entry: the 404 page
    try:
        ops.remove_question(entry_id, request.form.get("question", ""), expected=shown_version())
    except AdminError as exc:  # its last question, one removed meanwhile, a changed entry
        if exc.status == 412:
            return _edit_page(ops.entry(entry_id), 409, REMOVE_CONFLICT)
        return _edit_page(ops.entry(entry_id), exc.status, labels.reason(exc.reason))
    return redirect(url_for("console.entry", entry_id=entry_id, saved="removed"), code=303)


@bp.post("/knowledge/<int:entry_id>/delete")
def delete_entry(entry_id: int) -> Response | tuple[str, int]:
    """Only the entry the page showed: one changed since is shown again, not deleted."""
    ops = admin()
    try:
        ops.delete_entry(entry_id, expected=shown_version())
    except AdminError as exc:
        if exc.status != 412:
            raise
        return _edit_page(ops.entry(entry_id), 409, DELETE_CONFLICT)
    return redirect(url_for("console.knowledge", done="deleted"), code=303)


@bp.route("/knowledge/new", methods=["GET", "POST"])
def new_entry() -> Response | tuple[str, int]:
    typed = {k: request.form.get(k, "") for k in ("questions", "answer", "language")}
    error, status = "", 200
    if request.method == "POST":
        ops = admin()
        questions = lines(typed["questions"])
        try:
            entry_id = ops.create_entry(
                questions,
                typed["answer"],
                source="console",
                taught_by=TAUGHT_BY,
                language=typed["language"],
            )
        except AdminError as exc:
            # sent twice (a double click, the back button): the first sending created it
            again = ops.identical_entry(questions, typed["answer"], typed["language"])
            if exc.status == 409 and again is not None:
                return redirect(url_for("console.entry", entry_id=again, saved="again"), code=303)
            error, status = labels.reason(exc.reason), exc.status
        else:
            return redirect(url_for("console.entry", entry_id=entry_id, saved=1), code=303)
    html = render_template("console/entry_new.html", nav="knowledge", error=error, **typed)
    return html, status


@bp.get("/knowledge/export")
def export() -> Response:
    fmt = request.args.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        abort(400, "导出格式只能是 csv、jsonl、txt 或 xlsx。")
    body: str | bytes
    if fmt == "xlsx":
        workbook = io.BytesIO()
        try:
            write(admin().export_items(), fmt, workbook)
        except FormatError:  # more entries than a sheet has rows
            abort(413, "知识库条目太多，一个 Excel 工作表放不下：请导出为 CSV。")
        body = workbook.getvalue()
    else:
        out = io.StringIO()
        write(admin().export_items(), fmt, out)
        body = ("\ufeff" if fmt == "csv" else "") + out.getvalue()  # a BOM: Excel reads UTF-8
    response = Response(body, mimetype=EXPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f"attachment; filename=knowledge.{fmt}"
    return response
