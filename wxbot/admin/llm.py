"""/admin/api/llm/answers: LLM answers kept with their questions; promote a good one into
the knowledge base in one call (optionally with an edited question or answer)."""

from __future__ import annotations

from flask import Response, current_app, jsonify, request, url_for
from sqlalchemy import Connection

from wxbot.admin.api import ApiError, bp, json_body, page_of, paging
from wxbot.db import with_retries
from wxbot.llm import usage
from wxbot.qa import store, writer


@bp.get("/llm/answers")
def list_llm_answers() -> Response:
    page, per_page = paging()
    openid = request.args.get("openid", "").strip() or None
    with current_app.extensions["wxbot.engine"].connect() as conn:
        total, items = usage.list_answers(conn, (page - 1) * per_page, per_page, openid)
    return page_of(items, total, page, per_page)


@bp.post("/llm/answers/<int:answer_id>/promote")
def promote_llm_answer(answer_id: int) -> tuple[Response, int, dict[str, str]]:
    """Create a knowledge entry from a kept answer: ``{}``, or ``{"question": ...,
    "answer": ...}`` to store an edited version. 409 if already promoted or the question
    belongs to another entry."""
    data = json_body() if request.get_data() else {}
    unknown = set(data) - {"question", "answer"}
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    now = current_app.extensions["wxbot.clock"]()

    def write(conn: Connection) -> int:
        kept = usage.get_answer(conn, answer_id)
        if kept is None:
            raise ApiError(404, f"no LLM answer {answer_id}")
        if kept["entry_id"] is not None and store.get_entry(conn, kept["entry_id"]) is not None:
            raise ApiError(409, f"already promoted to knowledge entry {kept['entry_id']}")
        entry_id = writer.create_entry(
            conn,
            [data.get("question", kept["question"])],
            data.get("answer", kept["answer"]),
            now=now,
            source="api",
            source_ref=f"llm-answer:{answer_id}",
            taught_by="admin-api",
        )
        usage.mark_promoted(conn, answer_id, entry_id)
        return entry_id

    def run() -> int:
        with current_app.extensions["wxbot.engine"].begin() as conn:
            return write(conn)

    try:
        entry_id = with_retries(run)
    except writer.KnowledgeError as exc:
        raise ApiError(exc.status, exc.reason) from None
    with current_app.extensions["wxbot.engine"].connect() as conn:
        entry = store.get_entry(conn, entry_id)
    assert entry is not None
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return jsonify(entry.to_dict()), 201, {"Location": location}
