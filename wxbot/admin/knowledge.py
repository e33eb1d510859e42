"""/admin/api/knowledge and /admin/api/unanswered."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, url_for

from wxbot.admin.api import ApiError, bp, json_body, page_of, paging
from wxbot.db import with_retries
from wxbot.qa import store, writer

FIELDS = {"question", "questions", "answer"}


def _engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["wxbot.engine"]


def _now() -> float:
    return current_app.extensions["wxbot.clock"]()


def _questions(data: dict[str, Any], required: bool) -> Any:
    unknown = set(data) - FIELDS
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    if "question" in data and "questions" in data:
        raise ApiError(422, 'give "question" or "questions", not both')
    questions = data.get("questions", data.get("question"))
    if required and questions is None:
        raise ApiError(422, 'missing "questions" (a list of strings) or "question"')
    return questions


def _write(work) -> Any:  # type: ignore[no-untyped-def]
    def run():  # type: ignore[no-untyped-def]
        with _engine().begin() as conn:
            return work(conn)

    try:
        return with_retries(run)
    except writer.KnowledgeError as exc:
        raise ApiError(exc.status, exc.reason) from None


def _entry_or_404(entry_id: int) -> store.EntryRow:
    with _engine().connect() as conn:
        entry = store.get_entry(conn, entry_id)
    if entry is None:
        raise ApiError(404, f"no knowledge entry {entry_id}")
    return entry


@bp.get("/knowledge")
def list_knowledge() -> Response:
    page, per_page = paging()
    search = request.args.get("q", "").strip()
    with _engine().connect() as conn:
        total, rows = store.list_entries(conn, search, (page - 1) * per_page, per_page)
    return page_of([r.to_dict() for r in rows], total, page, per_page)


@bp.post("/knowledge")
def create_knowledge() -> tuple[Response, int, dict[str, str]]:
    data = json_body()
    questions = _questions(data, required=True)
    if "answer" not in data:
        raise ApiError(422, 'missing "answer"')
    entry_id = _write(
        lambda conn: writer.create_entry(
            conn, questions, data["answer"], now=_now(), source="api", taught_by="admin-api"
        )
    )
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return jsonify(_entry_or_404(entry_id).to_dict()), 201, {"Location": location}


@bp.get("/knowledge/<int:entry_id>")
def get_knowledge(entry_id: int) -> Response:
    return jsonify(_entry_or_404(entry_id).to_dict())


@bp.put("/knowledge/<int:entry_id>")
def update_knowledge(entry_id: int) -> Response:
    data = json_body()
    questions = _questions(data, required=False)
    if questions is None and "answer" not in data:
        raise ApiError(422, 'nothing to update: give "answer" and/or "questions"')
    _write(
        lambda conn: writer.update_entry(
            conn, entry_id, now=_now(), questions=questions, answer=data.get("answer")
        )
    )
    return jsonify(_entry_or_404(entry_id).to_dict())


@bp.delete("/knowledge/<int:entry_id>")
def delete_knowledge(entry_id: int) -> Response:
    _write(lambda conn: writer.delete_entry(conn, entry_id, now=_now()))
    return jsonify(deleted=entry_id)


@bp.get("/unanswered")
def list_unanswered() -> Response:
    page, per_page = paging()
    with _engine().connect() as conn:
        total, items = store.list_unanswered(conn, (page - 1) * per_page, per_page)
    return page_of(items, total, page, per_page)
