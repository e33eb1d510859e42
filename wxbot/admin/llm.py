"""/admin/api/llm/answers: LLM answers kept with their questions; promote a good one into
the knowledge base in one call (optionally with an edited question or answer)."""

from __future__ import annotations

from flask import Response, request, url_for

from wxbot.admin.api import ApiError, admin, bp, json_body, page_of, paging
from wxbot.admin.knowledge import entry_json


@bp.get("/llm/answers")
def list_llm_answers() -> Response:
    page, per_page = paging()
    openid = request.args.get("openid", "").strip() or None
    total, items = admin().llm_answers((page - 1) * per_page, per_page, openid)
    return page_of(items, total, page, per_page)


@bp.post("/llm/answers/<int:answer_id>/promote")
def promote_llm_answer(answer_id: int) -> tuple[Response, dict[str, str]]:
    """Create a knowledge entry from a kept answer: ``{}``, or ``{"question": ...,
    "answer": ...}`` to store an edited version. 409 if already promoted or the question
    belongs to another entry."""
    data = json_body() if request.get_data() else {}
    unknown = set(data) - {"question", "answer"}
    if unknown:
        raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    ops = admin()
    entry_id = ops.promote_llm_answer(
        answer_id,
        source="api",
        taught_by="admin-api",
        question=data.get("question"),
        answer=data.get("answer"),
    )
    location = url_for("admin_api.get_knowledge", entry_id=entry_id)
    return entry_json(ops.entry(entry_id), 201), {"Location": location}
