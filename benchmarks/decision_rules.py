"""Would another answer/abstain rule for the local model's fusion do better? Development halves
only (a tool, not a test; the test halves are never read here).

    python benchmarks/decision_rules.py [--max-wrong 0.015] [--resamples 200]

Every dev question is recorded once, as benchmarks/calibrate_fusion.py does (lexical hits,
semantic neighbours, whether the words alone are sure); then families of low-capacity rules
are replayed on a grid of their parameters:

- ``fused``: the current ScoreFusion rule, fused score >= confident and lead >= margin;
- ``agree``: the same with separate (confident, margin) for when the lexical and the
  semantic ranking both put the fused best first and for when they do not;
- ``word-lead``: ``fused``, and when the words put the fused best first, their own lead
  over their runner-up >= a third threshold (a near-tie in words is not settled by words);
- ``or-words``: ``fused``, or the lexical rule alone answers and both rankings agree.

Printed: each family's best values under the limits (as calibrate_fusion.py chooses: at most
--max-wrong wrong, at most 1 in 15 unrelated answered); the in-sample trade-off (most answered
right for at most k wrong), which flatters the families with more parameters; and a bootstrap
estimate (choose on a resample, count on the questions it left out), which does not. A rule
worth adopting gains on the last one without spending wrong answers.

Measured once: none does. The dev winner (word-lead: weight 1.5, confident 1.075, margin 0.14,
word lead 0.06; 71.1% right, 1.4% wrong on dev) answered 78.5 / 68.8 / 74.0% of the test
halves right, against 73.8 / 66.7 / 65.9% for LOCAL_MODEL_FUSION, but 6.0 / 6.4 / 6.5% wrong
against 4.0 / 2.8 / 2.4%, as the bootstrap had predicted; so it was not adopted.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.calibrate_fusion import MAX_UNRELATED, Asked, record  # noqa: E402
from wxbot.qa import kb as KB  # noqa: E402
from wxbot.qa.fusion import LOCAL_MODEL_FUSION, ScoreFusion  # noqa: E402

WEIGHTS = (1.0, 1.25, 1.5)
CONFIDENT = np.round(np.arange(0.6, 1.6, 0.025), 3)
MARGIN = np.round(np.arange(0.0, 0.36, 0.01), 2)
WORD_LEAD = np.round(np.arange(0.0, 0.16, 0.01), 2)
SURE = 99.0  # feature value for questions the words alone answer (always answered)


def lexical_rule(a: Asked) -> bool:
    """KnowledgeBase.answers on the recorded hits (the words alone would answer)."""
    if not a.hits:
        return False
    top = a.hits[0].confidence
    runner_up = a.hits[1].confidence if len(a.hits) > 1 else 0.0
    lead = top - max(runner_up, KB.RUNNER_UP_FLOOR)
    return lead >= KB.TIE and (top >= KB.SURE or (top >= KB.CONFIDENT and lead >= KB.MARGIN))


def features(asked: list[Asked], weight: float) -> dict[str, np.ndarray]:
    """Per question: outcome y (1 fused best right, -1 wrong, 0 unrelated) and the features."""
    fusion = ScoreFusion(weight, 0.0, 0.0, 0.0)
    rows = []
    for a in asked:
        if a.lexical_sure is not None:
            rows.append((1 if a.lexical_sure == a.right else -1, SURE, SURE, 1, SURE, 1, 0))
            continue
        ranked = fusion.ranked(a.hits, a.near)
        best, top = ranked[0]
        lead = top - (ranked[1][1] if len(ranked) > 1 else 0.0)
        words_first = bool(a.hits) and a.hits[0].entry_id == best
        agree = words_first and a.near[0][0] == best
        word_lead = (
            a.hits[0].confidence - (a.hits[1].confidence if len(a.hits) > 1 else 0.0)
            if words_first
            else SURE
        )
        y = 0 if a.right is None else (1 if best == a.right else -1)
        rows.append((y, top, lead, agree, word_lead, words_first, agree and lexical_rule(a)))
    t = np.array(rows, dtype=float)
    names = ("y", "top", "lead", "agree", "word_lead", "words_first", "or_words")
    return {n: t[:, i] for i, n in enumerate(names)}


def family(name: str, t: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    """(answers: one boolean row per parameter tuple, the parameter tuples)"""
    top, lead = t["top"], t["lead"]
    fused = (top >= CONFIDENT[:, None, None]) & (lead >= MARGIN[None, :, None])
    fused = fused.reshape(-1, len(top))
    pairs = list(itertools.product(CONFIDENT, MARGIN))
    if name == "fused":
        return fused, pairs
    if name == "word-lead":
        ok = t["word_lead"] >= WORD_LEAD[:, None]
        rows = (fused[:, None, :] & ok[None, :, :]).reshape(-1, len(top))
        return rows, [(c, m, k) for c, m in pairs for k in WORD_LEAD]
    if name == "or-words":
        return fused | (t["or_words"] == 1), pairs
    if name == "agree":  # a coarser grid: pairs of pairs
        c, m = CONFIDENT[::2], MARGIN[::2]
        coarse = ((top >= c[:, None, None]) & (lead >= m[None, :, None])).reshape(-1, len(top))
        agree = t["agree"] == 1
        rows = ((coarse[:, None, :] & agree) | (coarse[None, :, :] & ~agree)).reshape(-1, len(top))
        small = list(itertools.product(c, m))
        return rows, [(*ka, *kd) for ka in small for kd in small]  # agreeing, then not
    raise ValueError(name)


FAMILIES = ("fused", "agree", "word-lead", "or-words")


@dataclass
class Rules:
    """A family's rules on a grid: per rule and question, answered right / wrong / unrelated."""

    right: np.ndarray
    wrong: np.ndarray
    unrelated: np.ndarray
    params: list[tuple]

    @classmethod
    def of(cls, parts: list[tuple[float, np.ndarray, np.ndarray, list[tuple]]]) -> Rules:
        """From (weight, outcome y at that weight, answers, parameters) per weight."""
        return cls(
            *(
                np.concatenate([rows & (y == v) for _, y, rows, _ in parts]).astype(np.float32)
                for v in (1, -1, 0)
            ),
            [(w, *p) for w, _, _, params in parts for p in params],
        )

    def tally(self, count: np.ndarray) -> tuple[np.ndarray, ...]:
        """(right, wrong, unrelated answered) per rule, each question counted ``count`` times"""
        count = count.astype(np.float32)
        return tuple(m @ count for m in (self.right, self.wrong, self.unrelated))

    def choose(self, count: np.ndarray, is_question: np.ndarray, max_wrong: float) -> int:
        right, wrong, unrelated = self.tally(count)
        questions, n_unrelated = (count * is_question).sum(), (count * ~is_question).sum()
        ok = (wrong <= max_wrong * questions + 1e-9) & (
            unrelated <= MAX_UNRELATED * n_unrelated + 1e-9
        )
        return int(np.argmax(np.where(ok, right - 1e-3 * wrong, -1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-wrong", type=float, default=0.015)
    parser.add_argument("--resamples", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    from wxbot.qa.local_model import LocalEmbedder

    asked = record(LocalEmbedder())
    tables = {w: features(asked, w) for w in WEIGHTS}
    cur = LOCAL_MODEL_FUSION
    t = features(asked, cur.weight)
    y = t["y"]
    n_q, n_u = int((y != 0).sum()), int((y == 0).sum())
    reach = int((y == 1).sum())  # the most any rule could answer right at this weight
    print(f"dev: {n_q} questions, {n_u} unrelated; fused best right: {reach / n_q:.1%}")
    is_question = y != 0
    rules = {
        name: Rules.of([(w, tables[w]["y"], *family(name, tables[w])) for w in WEIGHTS])
        for name in FAMILIES
    }
    current = Rules.of(
        [(cur.weight, y, ((t["top"] >= cur.confident) & (t["lead"] >= cur.margin))[None], [()])]
    )
    ones = np.ones(len(y))

    print(f"\nbest on dev (wrong <= {args.max_wrong:.1%}, unrelated <= 1/15); values: weight,")
    print("  confident, margin [, word lead] (agree: the pair when both agree, then when not)")
    r, w, u = (int(x[0]) for x in current.tally(ones))
    print(f"  {'current':<10} right {r / n_q:6.1%}  wrong {w / n_q:5.1%}  unrelated {u}  {cur}")
    for name, rule in rules.items():
        i = rule.choose(ones, is_question, args.max_wrong)
        r, w, u = (int(x[i]) for x in rule.tally(ones))
        values = ", ".join(f"{float(v):g}" for v in rule.params[i])
        print(f"  {name:<10} right {r / n_q:6.1%}  wrong {w / n_q:5.1%}  unrelated {u}  ({values})")

    print("\nin-sample trade-off: most answered right with at most k wrong (unrelated <= 1/15)")
    print("  k" + "".join(f"{n:>11}" for n in FAMILIES))
    sums = {n: rule.tally(ones) for n, rule in rules.items()}
    for k in range(0, 11):
        cells = []
        for right, wrong, unrelated in sums.values():
            ok = (wrong <= k) & (unrelated <= MAX_UNRELATED * n_u)
            cells.append(f"{int(right[ok].max()) if ok.any() else 0:>11}")
        print(f"{k:>3}" + "".join(cells))

    print(f"\nbootstrap ({args.resamples} resamples): chosen on a resample, counted on the rest")
    print("  (current: its values were chosen on all of dev, so its figure flatters it)")
    rng = np.random.default_rng(0)
    out: dict[str, list[tuple[float, float]]] = {n: [] for n in ("current", *FAMILIES)}
    for _ in range(args.resamples):
        count = np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)).astype(float)
        left = (count == 0).astype(float)
        questions = (left * is_question).sum()
        for name, rule in [("current", current), *rules.items()]:
            i = 0 if name == "current" else rule.choose(count, is_question, args.max_wrong)
            right, wrong, _ = (m[i] @ left for m in (rule.right, rule.wrong, rule.unrelated))
            out[name].append((right / questions, wrong / questions))
    for name, values in out.items():
        v = np.array(values)
        print(
            f"  {name:<10} right {v[:, 0].mean():6.1%} ± {v[:, 0].std():.1%}"
            f"  wrong {v[:, 1].mean():5.1%}"
        )


if __name__ == "__main__":
    main()
