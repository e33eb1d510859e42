"""/admin/api/synonyms, /admin/api/learned and /admin/api/unanswered (with attach / answer)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, url_for

from wxbot.admin.api import ApiError, bp, json_body, page_of, paging
from wxbot.admin.knowledge import engine, entry_or_404, now, write
from wxbot.qa import learning, store
from wxbot.qa import synonyms as synonym_store

GROUPED_LIMIT = 1000  # most-asked unanswered questions considered when grouping


def _synonym_write(work) -> Any:  # type: ignore[no-untyped-def]
    try:
        return write(work)
    except synonym_store.SynonymError as exc:
        raise ApiError(exc.status, exc.reason) from None


def _words(data: dict[str, Any]) -> Any:
    if set(data) != {"words"}:
        raise ApiError(422, 'give "words": a list of at least two words')
    return data["words"]


def _group_or_404(group_id: int) -> dict[str, object]:
    with engine().connect() as conn:
        for group in synonym_store.load(conn):
            if group.id == group_id:
                return group.to_dict()
    raise ApiError(404, f"no synonym group {group_id}")


@bp.get("/synonyms")
def list_synonyms() -> Response:
    page, per_page = paging()
    search = request.args.get("q", "").strip().lower()
    with engine().connect() as conn:
        groups = synonym_store.load(conn)
    if search:
        groups = [g for g in groups if any(search in w for w in g.words)]
    start = (page - 1) * per_page
    items = [g.to_dict() for g in groups[start : start + per_page]]
    return page_of(items, len(groups), page, per_page)


@bp.post("/synonyms")
def create_synonyms() -> tuple[Response, int, dict[str, str]]:
    words = _words(json_body())
    group_id = _synonym_write(lambda conn: synonym_store.create(conn, words, now=now()))
    location = url_for("admin_api.get_synonyms", group_id=group_id)
    return jsonify(_group_or_404(group_id)), 201, {"Location": location}


@bp.get("/synonyms/<int:group_id>")
def get_synonyms(group_id: int) -> Response:
    return jsonify(_group_or_404(group_id))


@bp.put("/synonyms/<int:group_id>")
def update_synonyms(group_id: int) -> Response:
    words = _words(json_body())
    _synonym_write(lambda conn: synonym_store.replace(conn, group_id, words, now=now()))
    return jsonify(_group_or_404(group_id))


@bp.delete("/synonyms/<int:group_id>")
def delete_synonyms(group_id: int) -> Response:
    _synonym_write(lambda conn: synonym_store.remove(conn, group_id, now=now()))
    return jsonify(deleted=group_id)


@bp.get("/learned")
def list_learned() -> Response:
    """Similar questions learned from did-you-mean picks, newest first."""
    page, per_page = paging()
    with engine().connect() as conn:
        total, items = learning.list_learned(conn, (page - 1) * per_page, per_page)
    return page_of(items, total, page, per_page)


@bp.delete("/learned/<int:question_id>")
def undo_learned(question_id: int) -> Response:
    undone = write(lambda conn: learning.undo_learned(conn, question_id, now=now()))
    return jsonify(undone=undone)


@bp.get("/unanswered")
def list_unanswered() -> Response:
    """Most asked first. ``?group=1``: questions that say the same thing are grouped (each
    group: the most asked one, ``similar`` ones and their ``total``)."""
    page, per_page = paging()
    if request.args.get("group", "") not in ("1", "true", "yes"):
        with engine().connect() as conn:
            total, items = store.list_unanswered(conn, (page - 1) * per_page, per_page)
        return page_of(items, total, page, per_page)
    with engine().connect() as conn:
        _, items = store.list_unanswered(conn, 0, GROUPED_LIMIT)
    kb = current_app.extensions["wxbot.bot"].deps.kb
    groups = learning.group_unanswered(items, kb.content_terms)
    start = (page - 1) * per_page
    return page_of(groups[start : start + per_page], len(groups), page, per_page)


def _similar_ids(data: dict[str, Any]) -> list[int]:
    similar = data.get("similar", [])
    if not isinstance(similar, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in similar
    ):
        raise ApiError(422, '"similar" must be a list of unanswered question ids')
    return similar


@bp.post("/unanswered/<int:unanswered_id>/attach")
def attach_unanswered(unanswered_id: int) -> Response:
    """``{"entry_id": N}`` (optionally ``"similar": [ids]``): the question becomes a similar
    question of entry N and leaves the unanswered list."""
    data = json_body()
    if set(data) - {"entry_id", "similar"}:
        raise ApiError(422, 'give "entry_id" (and optionally "similar": [ids])')
    entry_id = data.get("entry_id")
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        raise ApiError(422, '"entry_id" must be the id of a knowledge entry')
    similar = _similar_ids(data)
    added = write(
        lambda conn: learning.attach(conn, unanswered_id, entry_id, now=now(), with_similar=similar)
    )
    return jsonify({**entry_or_404(entry_id).to_dict(), "added": added})


@bp.post("/unanswered/<int:unanswered_id>/answer")
def answer_unanswered(unanswered_id: int) -> tuple[Response, int, dict[str, str]]:
    """``{"answer": "..."}`` (optionally ``"similar": [ids]``): a new entry for it."""
    data = json_body()
    if set(data) - {"answer", "similar"} or "answer" not in data:
        raise ApiError(422, 'give "answer" (and optionally "similar": [ids])')
    similar = _similar_ids(data)
    entry_id = write(
        lambda conn: learning.answer_as_new(
            conn, unanswered_id, data["answer"], now=now(), with_similar=similar
        )
    )
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return jsonify(entry_or_404(entry_id).to_dict()), 201, {"Location": location}
