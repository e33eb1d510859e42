"""Does the answer decision behave at other sizes than the accuracy sets'? (a measurement)

    python benchmarks/kb_sizes.py [--half dev|test] [--tiny 5] [--rounds 30] [--padding 20000]

- **tiny**: a new account's base of ``--tiny`` entries drawn from a set's FAQ (``--rounds``
  draws per set). Rewordings of the drawn entries should be answered right; rewordings of
  the entries *not* drawn (same domain, nothing to answer them with: there is no runner-up
  to lose to) and unrelated questions should not be answered.
- **large**: every set's FAQ in one base, padded with ``--padding`` synthetic entries
  (benchmarks/kb_bench.py's generator): the same rewordings should fare as in their own base.

Shares as in benchmarks/accuracy.py. Use the dev half while choosing anything.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import (  # noqa: E402
    HEADER,
    SETS,
    TUNED,
    Result,
    build_kb,
    evaluate,
    read_cases,
    row,
)


def faq_rows(path: Path) -> list[tuple[str, str]]:
    """(question, answer) rows of a set's FAQ, through the real exporter's reading."""
    kb = build_kb(str(path))
    return [(kb._questions[e], kb._answers[e]) for e in kb._answers]  # noqa: SLF001


def write_csv(rows: list[tuple[str, str]]) -> str:
    fd, path = tempfile.mkstemp(suffix=".csv", prefix="wxbot-sizes-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["question", "answer", "similar"])
        for questions, answer in rows:
            first, *rest = questions.split("\n")
            out.writerow([first, answer, "|".join(rest)])
    return path


def tiny(half: str, size: int, rounds: int) -> None:
    print(f"\ntiny bases: {size} entries drawn from each FAQ, {rounds} draws ({half} rewordings)")
    print(
        f"{'set':<18}{'asked':>7}{'direct':>9}{'wrong':>8}{'not in base: answered':>24}"
        f"{'unrelated answered':>21}"
    )
    rnd = random.Random(5)
    for name, halves in SETS.items():
        rows = faq_rows(halves[half].faq)
        cases, unrelated = read_cases(halves[half])
        inside, outside = Result(), Result()
        loose = asked_unrelated = 0
        for _ in range(rounds):
            drawn = rnd.sample(rows, size)
            kb = build_kb(write_csv(drawn))
            keys = {k for q, _ in drawn for k in q.split("\n")}
            mine = [(e, q) for e, q in cases if e in keys]
            other = [(e, q) for e, q in cases if e not in keys]
            r = evaluate(kb, mine, unrelated)
            inside.questions += r.questions
            inside.direct += r.direct
            inside.wrong += r.wrong
            loose += r.unrelated_answered
            asked_unrelated += r.unrelated
            for _, q in rnd.sample(other, min(len(other), 12)):
                outside.questions += 1
                outside.wrong += kb.lookup(q).best is not None
        print(
            f"{name:<18}{inside.questions:>7}{inside.share('direct'):>9.1%}"
            f"{inside.share('wrong'):>8.1%}{outside.share('wrong'):>24.1%}"
            f"{f'{loose} of {asked_unrelated}':>21}",
            flush=True,
        )


def large(half: str, padding: int) -> None:
    from benchmarks.kb_bench import synthetic

    rows, seen = [], set()
    for halves in (SETS[n] for n in TUNED):  # a question two FAQs share stays with the first
        for questions, answer in faq_rows(halves[half].faq):
            kept = [q for q in questions.split("\n") if q not in seen]
            seen.update(kept)
            if kept:
                rows.append(("\n".join(kept), answer))
    rows += [(q, a) for q, a in synthetic(padding) if q not in seen]
    print(f"\none base: every FAQ + {padding} synthetic entries ({len(rows)} entries)")
    kb = build_kb(write_csv(rows))
    print(HEADER)
    for halves in (SETS[n] for n in TUNED):
        cases, unrelated = read_cases(halves[half])
        print(row(halves[half].name, evaluate(kb, cases, unrelated)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--half", default="dev", choices=["dev", "test"])
    parser.add_argument("--tiny", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--padding", type=int, default=20_000)
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    tiny(args.half, args.tiny, args.rounds)
    large(args.half, args.padding)


if __name__ == "__main__":
    main()
