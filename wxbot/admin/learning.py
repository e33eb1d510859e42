"""/admin/api/synonyms, /admin/api/learned and /admin/api/unanswered (with attach / answer)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request, url_for

from wxbot.admin.api import (
    ApiError,
    admin,
    bp,
    if_match,
    is_id,
    json_body,
    page_of,
    paging,
    tagged,
)
from wxbot.admin.knowledge import entry_json
from wxbot.qa.synonyms import Group


def _words(data: dict[str, Any]) -> Any:
    if set(data) != {"words"}:
        raise ApiError(422, 'give "words": a list of at least two words')
    return data["words"]


def group_json(group: Group, status: int = 200) -> Response:
    """A synonym group as JSON, with its ETag (PUT and DELETE take it back in If-Match)."""
    return tagged(jsonify(group.to_dict()), group.version, status)


@bp.get("/synonyms")
def list_synonyms() -> Response:
    page, per_page = paging()
    groups = admin().synonym_groups(request.args.get("q", ""))
    start = (page - 1) * per_page
    items = [g.to_dict() for g in groups[start : start + per_page]]
    return page_of(items, len(groups), page, per_page)


@bp.post("/synonyms")
def create_synonyms() -> tuple[Response, dict[str, str]]:
    ops = admin()
    group_id = ops.create_synonyms(_words(json_body()))
    location = url_for("admin_api.get_synonyms", group_id=group_id)
    return group_json(ops.synonym_group(group_id), 201), {"Location": location}


@bp.get("/synonyms/<int:group_id>")
def get_synonyms(group_id: int) -> Response:
    return group_json(admin().synonym_group(group_id))


@bp.put("/synonyms/<int:group_id>")
def update_synonyms(group_id: int) -> Response:
    ops = admin()
    ops.replace_synonyms(group_id, _words(json_body()), expected=if_match())
    return group_json(ops.synonym_group(group_id))


@bp.delete("/synonyms/<int:group_id>")
def delete_synonyms(group_id: int) -> Response:
    admin().delete_synonyms(group_id, expected=if_match())
    return jsonify(deleted=group_id)


@bp.get("/learned")
def list_learned() -> Response:
    """Similar questions learned from did-you-mean picks, newest first."""
    page, per_page = paging()
    total, items = admin().learned((page - 1) * per_page, per_page)
    return page_of(items, total, page, per_page)


@bp.delete("/learned/<int:question_id>")
def undo_learned(question_id: int) -> Response:
    return jsonify(undone=admin().undo_learned(question_id))


@bp.get("/unanswered")
def list_unanswered() -> Response:
    """Most asked first. ``?group=1``: questions that say the same thing are grouped (each
    group: the most asked one, ``similar`` ones and their ``total``)."""
    page, per_page = paging()
    ops = admin()
    if request.args.get("group", "") not in ("1", "true", "yes"):
        total, items = ops.unanswered_page((page - 1) * per_page, per_page)
        return page_of(items, total, page, per_page)
    groups = ops.unanswered_grouped()
    start = (page - 1) * per_page
    return page_of(groups[start : start + per_page], len(groups), page, per_page)


def _similar_ids(data: dict[str, Any]) -> list[int]:
    similar = data.get("similar", [])
    if not isinstance(similar, list) or not all(is_id(i) for i in similar):
        raise ApiError(422, '"similar" must be a list of unanswered question ids')
    return similar


@bp.post("/unanswered/<int:unanswered_id>/attach")
def attach_unanswered(unanswered_id: int) -> Response:
    """``{"entry_id": N}`` (optionally ``"similar": [ids]``): the question becomes a similar
    question of entry N and leaves the unanswered list. With If-Match (entry N's ETag), only
    if entry N has not changed since the client read it (412 otherwise, nothing written)."""
    data = json_body()
    if set(data) - {"entry_id", "similar"}:
        raise ApiError(422, 'give "entry_id" (and optionally "similar": [ids])')
    entry_id = data.get("entry_id")
    if not is_id(entry_id):
        raise ApiError(422, '"entry_id" must be the id of a knowledge entry')
    ops = admin()
    ops.entry(entry_id)  # 404 before anything else
    added = ops.attach_unanswered(unanswered_id, entry_id, _similar_ids(data), if_match())
    return entry_json(ops.entry(entry_id), added=added)


@bp.post("/unanswered/<int:unanswered_id>/answer")
def answer_unanswered(unanswered_id: int) -> tuple[Response, dict[str, str]]:
    """``{"answer": "..."}`` (optionally ``"similar": [ids]``): a new entry for it."""
    data = json_body()
    if set(data) - {"answer", "similar"} or "answer" not in data:
        raise ApiError(422, 'give "answer" (and optionally "similar": [ids])')
    ops = admin()
    entry_id = ops.answer_unanswered(
        unanswered_id,
        None,
        data["answer"],
        source="api",
        taught_by="admin-api",
        similar=_similar_ids(data),
    )
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return entry_json(ops.entry(entry_id), 201), {"Location": location}
