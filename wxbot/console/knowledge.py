"""/admin/knowledge: search, view, edit (answer and similar questions), delete, export; and
the synonyms tab."""

from __future__ import annotations

import io

from flask import Response, abort, jsonify, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, bp, lines, page_number, paging
from wxbot.qa.formats import FORMATS, write

TAUGHT_BY = "admin-console"
EXPORT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "txt": "text/plain"}


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
        formats=FORMATS,
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


def _edit_page(entry, status: int = 200, error: str = "", saved: bool = False):  # type: ignore[no-untyped-def]
    questions = request.form.get("questions") if request.method == "POST" else None
    answer = request.form.get("answer") if request.method == "POST" else None
    html = render_template(
        "console/entry.html",
        nav="knowledge",
        entry=entry,
        questions="\n".join(entry.questions) if questions is None else questions,
        answer=entry.answer if answer is None else answer,
        error=error,
        saved=saved,
    )
    return html, status


@bp.get("/knowledge/<int:entry_id>")
def entry(entry_id: int):  # type: ignore[no-untyped-def]
    return _edit_page(admin().entry(entry_id), saved=request.args.get("saved") == "1")


@bp.post("/knowledge/<int:entry_id>")
def save_entry(entry_id: int):  # type: ignore[no-untyped-def]
    ops = admin()
    current = ops.entry(entry_id)
    try:
        ops.update_entry(
            entry_id,
            questions=lines(request.form.get("questions", "")),
            answer=request.form.get("answer", ""),
        )
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _edit_page(current, exc.status, labels.reason(exc.reason))
    return redirect(url_for("console.entry", entry_id=entry_id, saved=1), code=303)


@bp.post("/knowledge/<int:entry_id>/delete")
def delete_entry(entry_id: int) -> Response:
    admin().delete_entry(entry_id)
    return redirect(url_for("console.knowledge", done="deleted"), code=303)


@bp.route("/knowledge/new", methods=["GET", "POST"])
def new_entry():  # type: ignore[no-untyped-def]
    questions = request.form.get("questions", "")
    answer = request.form.get("answer", "")
    error, status = "", 200
    if request.method == "POST":
        try:
            entry_id = admin().create_entry(
                lines(questions), answer, source="console", taught_by=TAUGHT_BY
            )
        except AdminError as exc:
            error, status = labels.reason(exc.reason), exc.status
        else:
            return redirect(url_for("console.entry", entry_id=entry_id, saved=1), code=303)
    html = render_template(
        "console/entry_new.html", nav="knowledge", questions=questions, answer=answer, error=error
    )
    return html, status


@bp.get("/knowledge/export")
def export() -> Response:
    fmt = request.args.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        abort(400, "导出格式只能是 csv、jsonl 或 txt。")
    out = io.StringIO()
    write(admin().export_items(), fmt, out)
    body = ("\ufeff" if fmt == "csv" else "") + out.getvalue()  # a BOM so Excel reads UTF-8
    response = Response(body, mimetype=EXPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f"attachment; filename=knowledge.{fmt}"
    return response


@bp.get("/synonyms")
def synonyms() -> str:
    return render_template("console/synonyms.html", nav="knowledge", tab="synonyms")
