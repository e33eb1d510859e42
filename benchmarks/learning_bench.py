"""What learning from did-you-mean picks does for questions nobody has asked yet.

    python benchmarks/learning_bench.py [--pick right|first] [--users 2] [--semantic]

For each accuracy set (tests/paraphrases.py): the test half is measured on a fresh knowledge
base; then the dev half's rewordings are "asked" by ``--users`` distinct users each, and
whenever the bot offers a did-you-mean list, each user picks from it (``right``: the right
entry when it is offered, as a user who knows what they asked; ``first``: the first choice
whatever it is, a careless user) exactly as the dialogue records a pick
(``qa.learning.record_pick`` with ``WXBOT_ALIAS_MIN_USERS`` = 2); then the test half is
measured again. The test half is never asked during the learning, so the difference is what
the wordings learned from other users' picks do for new wordings. The dev half is measured
again too (the wordings learned themselves: an upper bound, not a claim).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import HEADER, SETS, build_kb, evaluate, read_cases, row  # noqa: E402
from wxbot.qa import learning, store  # noqa: E402

MIN_USERS = 2  # WXBOT_ALIAS_MIN_USERS' default


def learn(kb, cases: list[tuple[str, str]], users: int, pick: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Replay ``cases`` as ``users`` users each; returns (picks, wordings learned, of those
    learned for the wrong entry)."""
    with kb.engine.connect() as conn:
        wanted = {e: store.find_entry(conn, e).id for e, _ in cases}
    picks = learned = wrong = 0
    now = time.time()
    for expected, question in cases:
        want = wanted[expected]
        for user in range(users):
            found = kb.lookup(question)
            if found.best is not None or not found.suggestions:
                break  # answered (or nothing offered): no pick to make, for anyone
            offered = [m.entry_id for m in found.suggestions]
            if pick == "right":
                if want not in offered:
                    break
                chosen = want
            else:
                chosen = offered[0]
            picks += 1
            with kb.engine.begin() as conn:
                made = learning.record_pick(
                    conn, f"o_learner_{user}", question, chosen, now=now, min_users=MIN_USERS
                )
            if made:
                learned += 1
                wrong += chosen != want
                with kb.engine.connect() as conn:
                    kb.refresh_if_stale(conn)  # as every process does after a change
    return picks, learned, wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pick", choices=("right", "first"), default="right")
    parser.add_argument("--users", type=int, default=MIN_USERS, help="users per dev wording")
    parser.add_argument("--semantic", action="store_true", help="with the local encoder fused")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    embedder = None
    if args.semantic:
        from wxbot.qa.local_model import LocalEmbedder

        embedder = LocalEmbedder()
    print(f"users pick: {args.pick}; {args.users} users per dev wording; alias after {MIN_USERS}")
    print(HEADER)
    for halves in SETS.values():
        dev, test = halves["dev"], halves["test"]
        kb = build_kb(str(dev.faq), embedder=embedder)
        test_cases, test_unrelated = read_cases(test)
        print(row(test.name + " before", evaluate(kb, test_cases, test_unrelated)), flush=True)
        dev_cases, dev_unrelated = read_cases(dev)
        picks, learned, wrong = learn(kb, dev_cases, args.users, args.pick)
        print(row(test.name + " after", evaluate(kb, test_cases, test_unrelated)))
        print(row(dev.name + " (learned)", evaluate(kb, dev_cases, dev_unrelated)))
        print(
            f"    {picks} picks on {len(dev_cases)} dev wordings; {learned} wordings learned,"
            f" {wrong} of them for the wrong entry",
            flush=True,
        )


if __name__ == "__main__":
    main()
