"""``wxbot kb match "question"``: what the bot decides for a question, and what from.

The decision line (answer / did-you-mean / don't know, and by what), the thresholds in force,
then the candidates with their scores, best first (KnowledgeBase.explain; --json: the admin
API's body). Registered on the ``kb`` group by wxbot/qa/cli.py.
"""

from __future__ import annotations

import json
import unicodedata

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import DBAPIError

from wxbot.i18n import LANGUAGES
from wxbot.qa.explain import (
    FUSION,
    LEARNED,
    WORDS,
    Candidate,
    Explanation,
    QueryError,
    check_query,
    user_language,
)

BY = {
    LEARNED: "a wording learned from did-you-mean picks (asked exactly)",
    WORDS: "words alone",
    FUSION: "words + meaning (fusion)",
}
MEANING = {
    "off": "off (no WXBOT_EMBEDDING_URL)",
    "skipped": "not asked: the words were sure",
    "unavailable": "asked, nothing came back (no vectors yet, or the service slow or down)",
    "used": "used by the fusion",
}
COLUMNS = ("#", "entry", "words", "overlap", "text", "quest", "share", "lang", "meaning", "fused")


@click.command("match")
@click.argument("question")
@click.option(
    "--language",
    type=click.Choice(LANGUAGES, case_sensitive=False),
    help="The user's language (default: the one the bot gives a new user sending QUESTION).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the admin API's JSON instead.")
@with_appcontext
def match_command(question: str, language: str | None, as_json: bool) -> None:
    """Why QUESTION gets the answer it does: the decision, the candidates and their scores,
    the thresholds in force (as GET /admin/api/knowledge/match)."""
    kb = current_app.extensions["wxbot.bot"].deps.kb
    if kb is None or not hasattr(kb, "explain"):
        raise click.ClickException("this app has no knowledge base to match against")
    settings = current_app.extensions["wxbot.settings"]
    try:
        question = check_query(question)
        language = user_language(question, language, settings.default_language)
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="QUESTION") from None
    try:
        with current_app.extensions["wxbot.engine"].connect() as conn:
            kb.refresh_if_stale(conn)
    except DBAPIError as exc:
        from wxbot.migrations.guard import database_error

        raise click.ClickException(f"database error: {database_error(exc)}") from None
    explained: Explanation = kb.explain(question, language)
    if as_json:
        click.echo(json.dumps(explained.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(report(explained)))


def report(x: Explanation) -> list[str]:
    """The explanation as lines of text: the decision, the rule's numbers, the candidates."""
    found = x.lookup
    out = [f"question: {x.question}  (language {x.language or 'any'})"]
    if found.best is not None:
        decided = f"answer #{found.best.entry_id} {found.best.question}"
        decided += f" (confidence {found.best.confidence:.3f})"
    elif found.suggestions:
        offered = ", ".join(
            f"#{m.entry_id} {m.question} ({m.confidence:.3f})" for m in found.suggestions
        )
        decided = f"did you mean: {offered}"
    else:
        decided = "don't know (nothing to offer)"
    out.append(f"decision: {decided}")
    out.append(f"by: {BY.get(x.by, x.by)}; meaning: {MEANING.get(x.semantic, x.semantic)}")
    if x.top is not None:
        scale = "fused " if x.by == FUSION else ""
        lead = "" if x.lead is None else f", lead {x.lead:.3f}"
        out.append(f"best {scale}score {x.top:.3f}{lead}")
    t = x.thresholds
    out.append(
        "thresholds (words): "
        + "  ".join(
            f"{k} {t[k]}" for k in ("confident", "margin", "sure", "tie", "floor", "suggest")
        )
    )
    if x.fusion is not None:
        values = "  ".join(f"{k} {v}" for k, v in x.fusion.items() if k != "rule")
        out.append(f"fusion ({x.fusion['rule']}): {values}")
    if not x.candidates:
        return out
    rows = [[*COLUMNS, "question"]]
    rows += [[str(i), *_cells(c), c.question] for i, c in enumerate(x.candidates, 1)]
    widths = [max(_width(r[i]) for r in rows) for i in range(len(COLUMNS))]
    out.append("")
    for r in rows:
        cells = [" " * (w - _width(v)) + v for v, w in zip(r, widths, strict=False)]
        out.append("  ".join([*cells, r[-1]]))
    return out


def _cells(c: Candidate) -> list[str]:
    ev = c.evidence
    words = (c.overlap, ev.text, ev.question, ev.share) if ev else (None,) * 4
    return [
        str(c.entry_id),
        _num(c.score),
        *map(_num, words),
        "-" if ev is None else f"{ev.language:g}",
        _num(c.similarity),
        _num(c.fused),
    ]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
