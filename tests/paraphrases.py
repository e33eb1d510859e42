"""Top-1 accuracy of the matcher on the paraphrase set (a measurement, not a test).

    python -m tests.paraphrases [--faq knowledge/faq.txt] [--dev] [-v]

Loads the starter FAQ into a throw-away SQLite database through the real importer and
KnowledgeBase, then asks every paraphrase in tests/paraphrases.jsonl (written by hand before
measuring; never tuned against) and every unrelated question in
tests/unrelated_questions.txt. Design choices (thresholds, function-word weight, ranking by
overlap rather than BM25, no bigrams across words, no answer text) were made on a separate
development set instead: ``--dev`` measures that one (tests/paraphrases.dev.jsonl and
tests/paraphrases.dev-unrelated.txt; other FAQ entries, other wordings). Prints:

- top-1: the best-ranked entry is the expected one (whatever the confidence);
- answered right / answered wrong: above the answer threshold with the right / wrong entry;
- unrelated declined: unrelated questions that got no confident answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def load_cases(dev: bool = False) -> tuple[list[tuple[str, str]], list[str]]:
    names = (
        ("paraphrases.dev.jsonl", "paraphrases.dev-unrelated.txt")
        if dev
        else (
            "paraphrases.jsonl",
            "unrelated_questions.txt",
        )
    )
    cases: list[tuple[str, str]] = []
    for line in (HERE / names[0]).read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            cases.extend((item["expected"], p) for p in item["paraphrases"])
    unrelated = [
        ln.strip()
        for ln in (HERE / names[1]).read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    return cases, unrelated


def evaluate(kb, cases, unrelated, verbose: bool = False) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from wxbot.qa import store

    with kb.engine.connect() as conn:
        wanted = {e: store.find_entry(conn, e) for e, _ in cases}
    missing = [e for e, row in wanted.items() if row is None]
    if missing:
        sys.exit(f"expected questions not in the FAQ: {missing}")
    top1 = right = wrong = 0
    for expected, question in cases:
        want = wanted[expected].id
        hits = kb.search(question)
        best = hits[0] if hits else None
        ok = best is not None and best.entry_id == want
        top1 += ok
        if best is not None and best.confidence >= kb.confident:
            right += ok
            wrong += not ok
        if verbose and not ok:
            with kb.engine.connect() as conn:
                got = store.get_entry(conn, best.entry_id).questions[0] if best else "-"
            conf = f"{best.confidence:.2f}" if best else "-"
            print(f"  miss: {question!r} -> {got!r} ({conf}); wanted {expected!r}")
    declined = sum(kb.lookup(q).best is None for q in unrelated)
    n = len(cases)
    return {
        "questions": n,
        "top1": top1 / n,
        "answered_right": right / n,
        "answered_wrong": wrong / n,
        "unrelated": len(unrelated),
        "unrelated_declined": declined / len(unrelated),
    }


def build_kb(faq: str):  # type: ignore[no-untyped-def]
    from wxbot.db import make_engine, upgrade
    from wxbot.qa import KnowledgeBase
    from wxbot.qa.importer import import_files

    folder = tempfile.mkdtemp(prefix="wxbot-para-")
    engine = make_engine("sqlite:///" + os.path.join(folder, "kb.sqlite3"))
    upgrade(engine)
    report = import_files(engine, [faq], now=time.time())
    if not report.written:
        sys.exit(f"could not import {faq}: {report.errors[:5]}")
    kb = KnowledgeBase(engine)
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    return kb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faq", default=str(ROOT / "knowledge" / "faq.txt"))
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    parser.add_argument("--dev", action="store_true", help="the development set instead")
    args = parser.parse_args()
    cases, unrelated = load_cases(args.dev)
    result = evaluate(build_kb(args.faq), cases, unrelated, args.verbose)
    print(
        f"{'development set' if args.dev else 'paraphrases'}: {result['questions']} questions, top-1 accuracy {result['top1']:.1%}; "
        f"answered right {result['answered_right']:.1%}, "
        f"answered wrong {result['answered_wrong']:.1%}; "
        f"unrelated declined {result['unrelated_declined']:.1%} of {result['unrelated']}"
    )


if __name__ == "__main__":
    main()
