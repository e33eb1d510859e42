"""Answer accuracy table: every set, development and test halves (a measurement, not a test).

    python benchmarks/accuracy.py [-v] [--no-synonyms] [--semantic]

Columns (shares of the rewordings): direct = answered with the right entry; suggested = not
answered, right entry among the did-you-mean choices; wrong = answered with another entry;
abstained = don't know, or wrong choices only; top-1 = the best-ranked entry is right,
whatever the decision. "unrelated answered": questions the FAQ cannot answer that got an
answer. The sets and how they were written: tests/paraphrases.py, tests/accuracy/README.md.
``-v`` lists every miss; ``--no-synonyms`` measures without any synonym group; ``--semantic``
measures with the local sentence encoder fused in (its values chosen by calibrate_fusion.py on
the dev halves).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import HEADER, SETS, build_kb, evaluate, read_cases, row  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    parser.add_argument("--no-synonyms", action="store_true", help="drop every synonym group")
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="with the local sentence encoder (WXBOT_EMBEDDING_URL=local; wxbot[semantic])",
    )
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    embedder = None
    if args.semantic:
        from wxbot.qa.local_model import LocalEmbedder

        embedder = LocalEmbedder()
    print(HEADER)
    for halves in SETS.values():
        kb = build_kb(str(halves["dev"].faq), embedder=embedder)
        if args.no_synonyms:
            from sqlalchemy import delete

            from wxbot.qa.synonyms import synonyms

            with kb.engine.begin() as conn:
                conn.execute(delete(synonyms))
            kb.version = -1
            with kb.engine.connect() as conn:
                kb.refresh_if_stale(conn)
        for half in ("dev", "test"):
            chosen = halves[half]
            cases, unrelated = read_cases(chosen)
            result = evaluate(kb, cases, unrelated, language=chosen.language)
            print(row(chosen.name, result), flush=True)
            if args.verbose:
                for line in result.misses:
                    print("    " + line)


if __name__ == "__main__":
    main()
