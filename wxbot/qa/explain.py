"""Why the knowledge base answered a question as it did (``KnowledgeBase.explain``).

An operator teaching the base sees a question answered with an unrelated entry (「孩子丢了
怎么办」 → 「包裹丢了怎么办」), or only a did-you-mean list, and needs to see what the decision
was made from to know what to teach: a synonym, a new entry, a similar question. The decision
is not made again here: ``KnowledgeBase._lookup`` (the code path of every lookup) notes what it
looks at in a ``Trace`` when one is given, and ``explanation`` turns that into plain data for
the admin API, ``wxbot kb match`` and the console's 「试一试」 form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wxbot.i18n import LANGUAGES, detect
from wxbot.qa.index import Hit
from wxbot.qa.models import MAX_QUESTION_CHARS
from wxbot.qa.rerank import Evidence

if TYPE_CHECKING:
    from wxbot.qa.fusion import Decision, Fusion
    from wxbot.qa.kb import KnowledgeBase, Lookup, Match

# decision kinds
ANSWER, SUGGEST, UNKNOWN = "answer", "suggest", "unknown"
# what decided: a wording learned from did-you-mean picks (asked exactly), the word rankers
# alone, or the fusion of the word and the meaning (semantic) rankings
LEARNED, WORDS, FUSION = "learned", "words", "fusion"
# the meaning path: no semantic retrieval configured; not asked (the words were sure); asked
# and nothing came back (no vectors yet, the service slow or down); used by the fusion
OFF, SKIPPED, UNAVAILABLE, USED = "off", "skipped", "unavailable", "used"
# a longer message is matched by its first this many characters (kb.MAX_QUERY_CHARS)
MAX_QUERY_CHARS = MAX_QUESTION_CHARS


class Trace:
    """What one lookup looked at, noted by KnowledgeBase._lookup when explaining."""

    def __init__(self) -> None:
        self.by = ""
        self.semantic = OFF
        self.scored: list[tuple[Hit, Evidence]] = []  # every word candidate scored, best first
        self.near: list[tuple[int, float]] = []  # (entry, cosine) of the meaning path
        self.lead: float | None = None  # the words' best lead (KnowledgeBase._lead)
        self.fusion: Fusion | None = None
        self.decision: Decision | None = None
        self.lexical_answers = False
        self.fused_ranking: list[tuple[int, float]] | None = None

    def words(self, rescored: list[Hit], scored: list[tuple[Hit, Evidence]]) -> None:
        evidence = {h.entry_id: ev for h, ev in scored}
        self.scored = [(h, evidence[h.entry_id]) for h in rescored]

    def meaning(self, on: bool, sure: bool, near: list[tuple[int, float]] | None) -> None:
        self.semantic = OFF if not on else SKIPPED if sure else USED if near else UNAVAILABLE
        self.near = list(near or ())

    def fused(
        self,
        fusion: Fusion,
        hits: Sequence[Hit],
        near: Sequence[tuple[int, float]],
        lexical_answers: bool,
        decision: Decision,
    ) -> None:
        self.by = FUSION
        self.fusion, self.decision, self.lexical_answers = fusion, decision, lexical_answers
        ranked = getattr(fusion, "ranked", None)  # ScoreFusion's fused scores, best first
        self.fused_ranking = list(ranked(hits, near)) if callable(ranked) else None


@dataclass(frozen=True)
class Candidate:
    entry_id: int
    question: str  # the entry's main question
    score: float | None  # the word rankers' fused confidence (None: found by meaning only)
    overlap: float | None  # word ranker: idf-weighted overlap with the best question
    evidence: Evidence | None  # character rankers: text, question, share; language factor
    similarity: float | None  # cosine of the meaning path (when it ran and listed the entry)
    fused: float | None  # the fusion's score (ScoreFusion, when it decided)


@dataclass(frozen=True)
class Explanation:
    question: str  # as matched (a message's first MAX_QUERY_CHARS characters)
    language: str | None  # the user's language it was matched for (None: every one alike)
    lookup: Lookup  # the decision: exactly what KnowledgeBase.lookup returns
    by: str  # LEARNED, WORDS or FUSION
    semantic: str  # OFF, SKIPPED, UNAVAILABLE or USED
    candidates: tuple[Candidate, ...]  # best first
    top: float | None  # the best score the rule compared (words, or the fusion's scale)
    lead: float | None  # its lead over the runner-up as the rule measured it
    thresholds: dict[str, Any]
    fusion: dict[str, Any] | None  # the fusion's rule and values, when it decided

    @property
    def kind(self) -> str:
        found = self.lookup
        return ANSWER if found.best is not None else SUGGEST if found.suggestions else UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        best = self.lookup.best
        return {
            "question": self.question,
            "language": self.language,
            "decision": {
                "kind": self.kind,
                "by": self.by,
                "entry_id": best.entry_id if best else None,
                "question": best.question if best else None,
                "confidence": _round(best.confidence) if best else None,
                "top": _round(self.top),
                "lead": _round(self.lead),
            },
            "suggestions": [_match(m) for m in self.lookup.suggestions],
            "semantic": self.semantic,
            "candidates": [_candidate(c) for c in self.candidates],
            "thresholds": self.thresholds,
            "fusion": self.fusion,
        }


def explanation(
    kb: KnowledgeBase, text: str, language: str | None, found: Lookup, trace: Trace
) -> Explanation:
    """The Explanation of a lookup of ``text`` that returned ``found`` and filled ``trace``."""
    cos = dict(trace.near) if trace.semantic == USED else {}
    words = {h.entry_id: (h, ev) for h, ev in trace.scored}
    fused = dict(trace.fused_ranking or ())
    # the fusion's order when it has fused scores, else the words' then the meaning's
    order = [e for e, _ in trace.fused_ranking or ()]
    order += [e for e in (*words, *cos) if e not in fused]
    order = list(dict.fromkeys(order))
    candidates = []
    for entry_id in order:
        hit, ev = words.get(entry_id, (None, None))
        candidates.append(
            Candidate(
                entry_id,
                kb.title(entry_id),
                hit.confidence if hit else None,
                hit.overlap if hit else None,
                ev,
                cos.get(entry_id),
                fused.get(entry_id),
            )
        )
    top, lead = _top_and_lead(trace)
    fusion = None
    if trace.by == FUSION and trace.fusion is not None:
        values = dataclasses.asdict(trace.fusion) if dataclasses.is_dataclass(trace.fusion) else {}
        fusion = {
            "rule": type(trace.fusion).__name__,
            **values,
            "words_alone_would_answer": trace.lexical_answers,
        }
    return Explanation(
        text,
        language,
        found,
        trace.by,
        trace.semantic,
        tuple(candidates),
        top,
        lead,
        kb.thresholds(),
        fusion,
    )


def _top_and_lead(trace: Trace) -> tuple[float | None, float | None]:
    if trace.by == WORDS and trace.scored:
        return trace.scored[0][0].confidence, trace.lead
    ranked = trace.fused_ranking
    if trace.by == FUSION and ranked:  # as ScoreFusion.decide measures it
        return ranked[0][1], ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)
    return None, None


# -- checking what an operator asks (the admin API, the console, the CLI) -----------------------


class QueryError(ValueError):
    """A question or language that cannot be matched; the message says why."""


def check_query(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the question is empty")
    if len(text) > MAX_QUERY_CHARS:  # (the console's labels translate these two as they are)
        raise QueryError(f"the question is longer than {MAX_QUERY_CHARS} characters")
    return text


def user_language(text: str, language: object, default: str) -> str:
    """The language to match ``text`` for: the one given (a code of wxbot.i18n.LANGUAGES),
    else the one the bot gives a new user who sends it (detected, else ``default``)."""
    if language is None or language == "":
        found = detect(text)
        return found.language if found else default
    code = language.strip().lower() if isinstance(language, str) else None
    if code not in LANGUAGES:
        raise QueryError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    return code


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _match(m: Match) -> dict[str, Any]:
    return {"entry_id": m.entry_id, "question": m.question, "confidence": _round(m.confidence)}


def _candidate(c: Candidate) -> dict[str, Any]:
    ev = c.evidence
    return {
        "entry_id": c.entry_id,
        "question": c.question,
        "score": _round(c.score),
        "similarity": _round(c.similarity),
        "fused": _round(c.fused),
        "evidence": None
        if ev is None
        else {
            "overlap": _round(c.overlap),
            "text": _round(ev.text),
            "question": _round(ev.question),
            "share": _round(ev.share),
            "language": ev.language,
        },
    }
