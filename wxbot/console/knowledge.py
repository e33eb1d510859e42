"""/admin/knowledge: search, view, edit (answer, language, similar questions), delete, export."""

from __future__ import annotations

import io

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, lines, page_number, paging
from wxbot.qa.formats import ALL_FORMATS, MISSING, FormatError, write
from wxbot.qa.store import EntryRow

TAUGHT_BY = "admin-console"
EXPORT_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/x-ndjson",
    "txt": "text/plain",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SAVED = {
    "1": "已保存。用户的下一条消息就会用上。",
    "added": "已添加相似问法。",
    "removed": "已删除这个问法。",
}


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
) -> tuple[str, int]:
    """The entry page; ``typed``: what the admin sent in a refused form, shown again."""
    typed = typed or {}
    html = render_template(
        "console/entry.html",
        nav="knowledge",
        entry=entry,
        questions=typed.get("questions", "\n".join(entry.questions)),
        answer=typed.get("answer", entry.answer),
        language=typed.get("language", entry.language or ""),
        new_questions=typed.get("new_questions", ""),
        error=error,
        saved=SAVED.get(request.args.get("saved", ""), ""),
    )
    return html, status


@bp.get("/knowledge/<int:entry_id>")
def entry(entry_id: int) -> tuple[str, int]:
    return _edit_page(admin().entry(entry_id))


@bp.post("/knowledge/<int:entry_id>")
def save_entry(entry_id: int) -> Response | tuple[str, int]:
    ops = admin()
    current = ops.entry(entry_id)
    typed = {k: request.form.get(k, "") for k in ("questions", "answer", "language")}
    try:
        ops.update_entry(
            entry_id,
            questions=lines(typed["questions"]),
            answer=typed["answer"],
            language=typed["language"] if "language" in request.form else MISSING,
        )
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _edit_page(current, exc.status, labels.reason(exc.reason), typed)
    return redirect(url_for("console.entry", entry_id=entry_id, saved=1), code=303)


@bp.post("/knowledge/<int:entry_id>/questions")
def add_questions(entry_id: int) -> Response | tuple[str, int]:
    """More similar questions, one per line (those the entry has already are skipped)."""
    ops = admin()
    current = ops.entry(entry_id)
    typed = request.form.get("new_questions", "")
    try:
        ops.add_questions(entry_id, lines(typed))
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _edit_page(current, exc.status, labels.reason(exc.reason), {"new_questions": typed})
    return redirect(url_for("console.entry", entry_id=entry_id, saved="added"), code=303)


@bp.post("/knowledge/<int:entry_id>/questions/remove")
def remove_question(entry_id: int) -> Response | tuple[str, int]:
    ops = admin()
    ops.entry(entry_id)  # a deleted entry: the 404 page
    try:
        ops.remove_question(entry_id, request.form.get("question", ""))
    except AdminError as exc:  # its last question, or one removed meanwhile
        return _edit_page(ops.entry(entry_id), exc.status, labels.reason(exc.reason))
    return redirect(url_for("console.entry", entry_id=entry_id, saved="removed"), code=303)


@bp.post("/knowledge/<int:entry_id>/delete")
def delete_entry(entry_id: int) -> Response:
    admin().delete_entry(entry_id)
    return redirect(url_for("console.knowledge", done="deleted"), code=303)


@bp.route("/knowledge/new", methods=["GET", "POST"])
def new_entry() -> Response | tuple[str, int]:
    typed = {k: request.form.get(k, "") for k in ("questions", "answer", "language")}
    error, status = "", 200
    if request.method == "POST":
        try:
            entry_id = admin().create_entry(
                lines(typed["questions"]),
                typed["answer"],
                source="console",
                taught_by=TAUGHT_BY,
                language=typed["language"],
            )
        except AdminError as exc:
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
