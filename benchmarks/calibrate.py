"""Choose the matcher's weights and thresholds on the development sets only, and print the
precision/recall trade-off (a tool, not a test).

    python benchmarks/calibrate.py [--grid]

Uses the *development* halves of every set in tests/paraphrases.py (never the test halves).
For each candidate (answer weight, synonym-group weight) it ranks every dev question once,
then tries every (CONFIDENT, MARGIN) pair on the recorded top-two scores:

- precision = answered right / answered; recall = answered right / all questions;
- the constraints: at most 2% of questions answered wrong and at most 1 in 15 unrelated
  questions answered; among those, the most answered right wins.

The chosen values go into wxbot/qa/kb.py by hand (with this output in the commit message).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import SETS, build_kb, read_cases  # noqa: E402

SURES = (1.2, 1.4, 1.6, 1.8, 99.0)  # 99: never answer without a margin
MAX_WRONG = 0.02
MAX_UNRELATED = 1 / 15


def record(answer_weight: float, group_weight: float, char_weight: float) -> tuple[list, list]:  # type: ignore[type-arg]
    """(questions as (top, second, right), unrelated as (top, second)) over the dev sets."""
    from wxbot.qa import kb as kb_module

    kb_module.GROUP_WEIGHT = group_weight
    asked: list[tuple[float, float, bool]] = []
    unrelated: list[tuple[float, float]] = []
    for halves in SETS.values():
        dev = halves["dev"]
        kb = build_kb(
            str(dev.faq), kb_options={"answer_weight": answer_weight, "char_weight": char_weight}
        )
        from wxbot.qa import store

        cases, others = read_cases(dev)
        with kb.engine.connect() as conn:
            ids = {e: store.find_entry(conn, e).id for e, _ in cases}
        for expected, question in cases:
            hits = kb.search(question, 2)
            top = hits[0].confidence if hits else 0.0
            second = hits[1].confidence if len(hits) > 1 else 0.0
            asked.append((top, second, bool(hits) and hits[0].entry_id == ids[expected]))
        for question in others:
            hits = kb.search(question, 2)
            top = hits[0].confidence if hits else 0.0
            second = hits[1].confidence if len(hits) > 1 else 0.0
            unrelated.append((top, second))
    return asked, unrelated


def outcome(asked, unrelated, confident: float, margin: float, sure: float):  # type: ignore[no-untyped-def]
    def answers(top: float, second: float) -> bool:
        return top >= sure or (top >= confident and top - second >= margin)

    right = sum(1 for t, s, ok in asked if ok and answers(t, s))
    wrong = sum(1 for t, s, ok in asked if not ok and answers(t, s))
    loose = sum(1 for t, s in unrelated if answers(t, s))
    n = len(asked)
    return right / n, wrong / n, loose / len(unrelated)


def best_thresholds(asked, unrelated):  # type: ignore[no-untyped-def]
    best = None
    for c10, m, sure in itertools.product(range(10, 151, 2), range(0, 61), SURES):
        confident, margin = c10 / 100, m / 100
        right, wrong, loose = outcome(asked, unrelated, confident, margin, sure)
        if wrong <= MAX_WRONG and loose <= MAX_UNRELATED:
            key = (right, -wrong, confident + margin)
            if best is None or key > best[0]:
                best = (key, confident, margin, right, wrong, loose, sure)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", action="store_true", help="also search the weights")
    parser.add_argument("--answer-weight", type=float, default=None)
    parser.add_argument("--group-weight", type=float, default=None)
    parser.add_argument("--char-weight", type=float, default=None)
    args = parser.parse_args()
    from wxbot.qa import kb as kb_module

    aw = kb_module.ANSWER_WEIGHT if args.answer_weight is None else args.answer_weight
    gw = kb_module.GROUP_WEIGHT if args.group_weight is None else args.group_weight
    cw = kb_module.CHAR_WEIGHT if args.char_weight is None else args.char_weight
    if args.grid:
        print(
            "answer, group, char weights -> top-1, best (confident, margin, sure): "
            "right / wrong / unrelated"
        )
        for a, g, c in itertools.product((0.0, 0.1, 0.2), (1.0, 2.0), (0.5, 1.0, 2.0)):
            asked, unrelated = record(a, g, c)
            top1 = sum(ok for *_, ok in asked) / len(asked)
            b = best_thresholds(asked, unrelated)
            found = (
                f"({b[1]:.2f}, {b[2]:.2f}, {b[6]:.1f}): {b[3]:.1%} / {b[4]:.1%} / {b[5]:.1%}"
                if b
                else "-"
            )
            print(f"  {a:.1f}, {g:.1f}, {c:.1f} -> {top1:.1%}, {found}", flush=True)
    asked, unrelated = record(aw, gw, cw)
    top1 = sum(ok for *_, ok in asked) / len(asked)
    print(
        f"\nweights: answer {aw}, group {gw}, char {cw}; dev questions {len(asked)}, top-1 {top1:.1%}"
    )
    sure = kb_module.SURE
    print(f"precision/recall trade-off (SURE at {sure:.2f}):")
    header = ("confident", "margin", "recall", "precision", "wrong", "unrelated")
    print(
        f"{header[0]:>10}{header[1]:>8}{header[2]:>8}{header[3]:>11}{header[4]:>8}{header[5]:>11}"
    )
    grid = itertools.product((0.4, 0.5, 0.6, 0.7, 0.8, 0.9), (0.0, 0.1, 0.2, 0.3, 0.4))
    for confident, margin in grid:
        right, wrong, loose = outcome(asked, unrelated, confident, margin, sure)
        precision = right / (right + wrong) if right + wrong else 1.0
        print(
            f"{confident:>10.2f}{margin:>8.2f}{right:>8.1%}{precision:>11.1%}{wrong:>8.1%}{loose:>11.1%}"
        )
    b = best_thresholds(asked, unrelated)
    if b:
        print(
            f"\nbest: CONFIDENT={b[1]:.2f} MARGIN={b[2]:.2f} SURE={b[6]:.2f} -> right {b[3]:.1%}, "
            f"wrong {b[4]:.1%}, unrelated answered {b[5]:.1%}"
        )


if __name__ == "__main__":
    main()
