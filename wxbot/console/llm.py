"""/admin/llm (a tab of 知识库): the LLM's answers kept with their questions; a good one goes
into the knowledge base in one click (or after editing), so the next user asking the same
gets it from there, with no LLM call."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from wxbot.admin.ops import AdminError
from wxbot.console import labels
from wxbot.console.web import PER_PAGE, admin, as_int, bp, page_number, paging

TAUGHT_BY = "admin-console"


@bp.get("/llm")
def llm_answers() -> str:
    page = page_number()
    openid = request.args.get("openid", "").strip()
    ops = admin()
    total, items = ops.llm_answers((page - 1) * PER_PAGE, PER_PAGE, openid or None)
    promoted = as_int(request.args.get("entry", ""))
    return render_template(
        "console/llm.html",
        nav="knowledge",
        tab="llm",
        items=items,
        openid=openid,
        llm=ops.llm_usage(),
        promoted=promoted,
        **paging(total, page),
    )


def _promote_page(kept: dict[str, Any], status: int = 200, error: str = "") -> tuple[str, int]:
    html = render_template(
        "console/llm_promote.html",
        nav="knowledge",
        kept=kept,
        question=request.form.get("question", kept["question"]),
        answer=request.form.get("answer", kept["answer"]),
        error=error,
    )
    return html, status


@bp.get("/llm/<int:answer_id>/promote")
def promote_form(answer_id: int) -> tuple[str, int]:
    """Edit the question or the answer before it goes into the knowledge base."""
    return _promote_page(admin().llm_answer(answer_id))


@bp.post("/llm/<int:answer_id>/promote")
def promote(answer_id: int) -> Response | tuple[str, int]:
    """The kept answer as it is (one click), or as edited (``question``, ``answer``)."""
    ops = admin()
    kept = ops.llm_answer(answer_id)
    try:
        entry_id = ops.promote_llm_answer(
            answer_id,
            source="console",
            taught_by=TAUGHT_BY,
            question=request.form.get("question"),
            answer=request.form.get("answer"),
        )
    except AdminError as exc:
        if exc.status == 404:
            raise
        return _promote_page(kept, exc.status, labels.reason(exc.reason))  # nothing typed is lost
    return redirect(url_for("console.llm_answers", entry=entry_id), code=303)
