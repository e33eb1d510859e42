"""/admin/api/knowledge and /admin/api/unanswered."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from wxbot.admin.api import ApiError, admin, bp, json_body, page_of, paging
from wxbot.qa import store

FIELDS = {"question", "questions", "answer"}


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


@bp.get("/knowledge")
def list_knowledge() -> Response:
    page, per_page = paging()
    search = request.args.get("q", "").strip()
    total, rows = admin().entries(search, (page - 1) * per_page, per_page)
    return page_of([r.to_dict() for r in rows], total, page, per_page)


@bp.post("/knowledge")
def create_knowledge() -> tuple[Response, int, dict[str, str]]:
    data = json_body()
    questions = _questions(data, required=True)
    if "answer" not in data:
        raise ApiError(422, 'missing "answer"')
    ops = admin()
    entry_id = ops.create_entry(questions, data["answer"], source="api", taught_by="admin-api")
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return jsonify(ops.entry(entry_id).to_dict()), 201, {"Location": location}


@bp.get("/knowledge/<int:entry_id>")
def get_knowledge(entry_id: int) -> Response:
    return jsonify(admin().entry(entry_id).to_dict())


@bp.put("/knowledge/<int:entry_id>")
def update_knowledge(entry_id: int) -> Response:
    data = json_body()
    questions = _questions(data, required=False)
    if questions is None and "answer" not in data:
        raise ApiError(422, 'nothing to update: give "answer" and/or "questions"')
    ops = admin()
    ops.update_entry(entry_id, questions=questions, answer=data.get("answer"))
    return jsonify(ops.entry(entry_id).to_dict())


@bp.delete("/knowledge/<int:entry_id>")
def delete_knowledge(entry_id: int) -> Response:
    admin().delete_entry(entry_id)
    return jsonify(deleted=entry_id)


@bp.get("/unanswered")
def list_unanswered() -> Response:
    page, per_page = paging()
    total, items = admin().read(
        lambda conn: store.list_unanswered(conn, (page - 1) * per_page, per_page)
    )
    return page_of(items, total, page, per_page)
