"""/admin/api/knowledge: entries, their similar questions and language."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from wxbot.admin.api import ApiError, admin, bp, if_match, json_body, page_of, paging, tagged
from wxbot.qa.formats import MISSING
from wxbot.qa.store import EntryRow

FIELDS = {"question", "questions", "similar", "answer", "language"}


def _questions(data: dict[str, Any], required: bool) -> Any:
    unknown = set(data) - FIELDS
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    if "question" in data and "questions" in data:
        raise ApiError(422, 'give "question" or "questions", not both')
    questions = data.get("questions", data.get("question"))
    if required and questions is None:
        raise ApiError(422, 'missing "questions" (a list of strings) or "question"')
    similar = data.get("similar")
    if similar is not None:
        if not isinstance(similar, list):
            raise ApiError(422, '"similar" must be a list of strings')
        if questions is None:
            raise ApiError(422, '"similar" needs "question" (the main question) too')
        questions = [*(questions if isinstance(questions, list) else [questions]), *similar]
    return questions


def entry_json(entry: EntryRow, status: int = 200, **extra: object) -> Response:
    """An entry as JSON, with its ETag (every write to it takes it back in If-Match)."""
    return tagged(jsonify({**entry.to_dict(), **extra}), entry.version, status)


@bp.get("/knowledge")
def list_knowledge() -> Response:
    page, per_page = paging()
    search = request.args.get("q", "").strip()
    total, rows = admin().entries(search, (page - 1) * per_page, per_page)
    return page_of([r.to_dict() for r in rows], total, page, per_page)


@bp.post("/knowledge")
def create_knowledge() -> tuple[Response, dict[str, str]]:
    data = json_body()
    questions = _questions(data, required=True)
    if "answer" not in data:
        raise ApiError(422, 'missing "answer"')
    ops = admin()
    entry_id = ops.create_entry(
        questions,
        data["answer"],
        source="api",
        taught_by="admin-api",
        language=data.get("language"),
    )
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return entry_json(ops.entry(entry_id), 201), {"Location": location}


@bp.get("/knowledge/match")
def match_knowledge() -> Response:
    """Why a question gets the answer it does: ``?q=...&language=xx`` (language: the user's;
    left out, the one the bot gives a new user sending q). The decision (answer / suggest /
    unknown, and by what), the ranked candidates with their scores, the thresholds in force
    (wxbot.qa.explain). 422 for a missing, blank or over-long q or an unknown language."""
    if "q" not in request.args:
        raise ApiError(422, "missing q: /admin/api/knowledge/match?q=<the question>")
    explained = admin().match_question(request.args["q"], request.args.get("language"))
    return jsonify(explained.to_dict())


@bp.get("/knowledge/<int:entry_id>")
def get_knowledge(entry_id: int) -> Response:
    return entry_json(admin().entry(entry_id))


@bp.put("/knowledge/<int:entry_id>")
def update_knowledge(entry_id: int) -> Response:
    data = json_body()
    questions = _questions(data, required=False)
    # null is no answer and no question (only "language": null means something: none); taken
    # for "leave it", {"answer": null} answered 200 and changed nothing
    if data.get("answer", "") is None:
        raise ApiError(422, "the answer must be a string")
    if any(data.get(name, "") is None for name in ("question", "questions")):
        raise ApiError(422, '"questions" must be a list of strings ("question": a string)')
    if questions is None and "answer" not in data and "language" not in data:
        raise ApiError(422, 'nothing to update: give "answer", "questions" and/or "language"')
    ops = admin()
    ops.update_entry(
        entry_id,
        questions=questions,
        answer=data.get("answer"),
        language=data.get("language", MISSING),
        expected=if_match(),  # 412 if the entry changed since the client read it
    )
    return entry_json(ops.entry(entry_id))


@bp.delete("/knowledge/<int:entry_id>")
def delete_knowledge(entry_id: int) -> Response:
    admin().delete_entry(entry_id, expected=if_match())
    return jsonify(deleted=entry_id)


@bp.post("/knowledge/<int:entry_id>/questions")
def add_questions(entry_id: int) -> Response:
    """Add similar questions: ``{"questions": [...]}`` or ``{"question": "..."}``; with
    If-Match, only to the entry the client read (412 otherwise, unless it has them all)."""
    data = json_body()
    if set(data) - {"question", "questions"}:
        raise ApiError(422, 'give only "questions" (a list) or "question"')
    questions = _questions(data, required=True)
    ops = admin()
    added = ops.add_questions(entry_id, questions, expected=if_match())
    return entry_json(ops.entry(entry_id), added=added)


@bp.delete("/knowledge/<int:entry_id>/questions")
def remove_question(entry_id: int) -> Response:
    """Remove one question: ``?question=...`` (URL-encoded); with If-Match, only from the
    entry the client read (412 otherwise, before "no such question" or "its last one")."""
    question = request.args.get("question", "")
    if not question.strip():
        raise ApiError(422, "say which question to remove: ?question=...")
    ops = admin()
    ops.remove_question(entry_id, question, expected=if_match())
    return entry_json(ops.entry(entry_id))
