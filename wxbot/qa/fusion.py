"""How the lexical and the semantic ranking become one decision: answer, offer, or neither.

Two rules (wxbot.qa.build_semantic picks one):

- ``ScoreFusion`` (the bundled local model, whose cosines we could measure): each entry scores
  its lexical confidence plus ``weight`` x its cosine; the best answers when that sum reaches
  ``confident`` with ``margin`` over the next entry. Values fitted on the development halves
  only, by benchmarks/calibrate_fusion.py.
- ``RankFusion`` (any embedding service): reciprocal rank fusion, and the fused best answers if
  either matcher alone would answer it, the semantic one at a cosine of ``confident`` with
  ``margin`` over the next entry (values for bge-m3-like models; recalibrate with the script
  for yours). WXBOT_EMBEDDING_FUSION switches a service to ScoreFusion with given values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wxbot.qa.index import Hit

Near = Sequence[tuple[int, float]]  # (entry id, cosine), best first


@dataclass(frozen=True)
class Decision:
    answer: int | None  # the entry to answer with
    confidence: float  # of that answer
    offered: list[tuple[int, float]]  # (entry id, confidence) worth a did-you-mean, best first


class Fusion(Protocol):
    def decide(
        self, hits: Sequence[Hit], near: Near, lexical_answers: bool, lexical_suggest: float
    ) -> Decision:
        """``lexical_answers``: the word rule alone would answer ``hits[0]``;
        ``lexical_suggest``: the word confidence worth a did-you-mean (the KB's setting)."""


@dataclass(frozen=True)
class ScoreFusion:
    weight: float
    confident: float
    margin: float
    suggest: float

    def ranked(self, hits: Sequence[Hit], near: Near) -> list[tuple[int, float]]:
        """Every candidate of either ranking with its fused score, best first. An entry the
        semantic ranking did not list counts the lowest cosine it did list."""
        cos = dict(near)
        floor = near[-1][1] if near else 0.0
        score = {e: self.weight * c for e, c in cos.items()}
        for h in hits:
            score[h.entry_id] = h.confidence + self.weight * cos.get(h.entry_id, floor)
        return sorted(score.items(), key=lambda item: -item[1])

    def decide(
        self, hits: Sequence[Hit], near: Near, lexical_answers: bool, lexical_suggest: float
    ) -> Decision:
        ranked = self.ranked(hits, near)
        if not ranked:
            return Decision(None, 0.0, [])
        best, top = ranked[0]
        lead = top - (ranked[1][1] if len(ranked) > 1 else 0.0)
        # reported on the lexical scale, so a did-you-mean list reads the same with or without
        confidence = top / (1 + self.weight)
        if top >= self.confident and lead >= self.margin:
            return Decision(best, confidence, [])
        offered = [(e, s / (1 + self.weight)) for e, s in ranked if s >= self.suggest]
        return Decision(None, 0.0, offered)


@dataclass(frozen=True)
class RankFusion:
    confident: float = 0.75
    margin: float = 0.05
    suggest: float = 0.6
    k: int = 60

    def decide(
        self, hits: Sequence[Hit], near: Near, lexical_answers: bool, lexical_suggest: float
    ) -> Decision:
        rrf: dict[int, float] = {}
        for ranking in ([h.entry_id for h in hits], [e for e, _ in near]):
            for rank, entry_id in enumerate(ranking):
                rrf[entry_id] = rrf.get(entry_id, 0.0) + 1 / (self.k + rank)
        if not rrf:
            return Decision(None, 0.0, [])
        order = sorted(rrf, key=lambda e: -rrf[e])
        lex = {h.entry_id: h.confidence for h in hits}
        cos = dict(near)
        best = order[0]
        cos_rest = max((c for e, c in cos.items() if e != best), default=0.0)
        top, sim = lex.get(best, 0.0), cos.get(best, 0.0)
        lexical = bool(hits) and hits[0].entry_id == best and lexical_answers
        if lexical or (sim >= self.confident and sim - cos_rest >= self.margin):
            return Decision(best, max(top, sim), [])
        offered = [
            (e, max(lex.get(e, 0.0), cos.get(e, 0.0)))
            for e in order
            if lex.get(e, 0.0) >= lexical_suggest or cos.get(e, 0.0) >= self.suggest
        ]
        return Decision(None, 0.0, offered)


# The bundled local model (wxbot.qa.local_model), fitted by benchmarks/calibrate_fusion.py.
LOCAL_MODEL_FUSION = ScoreFusion(weight=1.25, confident=0.9, margin=0.22, suggest=0.71)


def parse_fusion(text: str) -> ScoreFusion:
    """WXBOT_EMBEDDING_FUSION: ``weight,confident,margin,suggest`` (four numbers)."""
    try:
        weight, confident, margin, suggest = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(
            f"WXBOT_EMBEDDING_FUSION={text!r}: want four numbers, weight,confident,margin,suggest"
        ) from None
    return ScoreFusion(weight, confident, margin, suggest)
