"""Answers are a function of the knowledge and the question only: not of the process.

Python salts ``hash()`` of strings per process (PYTHONHASHSEED), so the iteration order of a
set of strings, and any table bucketed by ``hash()``, differs between processes. Every
container and every ``wxbot serve`` master has its own seed: if ranking depended on it, the
same question could be answered by one container and not by another. This runs the paraphrase
development sets (words-only matcher, SQLite) in processes with different seeds and requires
the same decisions, rankings and confidences from each.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path

from wxbot.qa.index import SCAN_BUDGET, Bm25Index

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ("1", "3", "7", "11")

SCRIPT = r"""
import logging

logging.disable(logging.INFO)

from tests.paraphrases import SETS, build_kb, read_cases
from wxbot.qa.text import normalize

for name, halves in SETS.items():
    kb = build_kb(str(halves["dev"].faq))
    cases, unrelated = read_cases(halves["dev"])
    for question in [q for _, q in cases] + unrelated:
        found = kb.lookup(question)
        if found.best is not None:
            decision = f"answer {found.best.entry_id} {found.best.confidence:.6f}"
        elif found.suggestions:
            decision = "suggest " + " ".join(
                f"{m.entry_id}:{m.confidence:.6f}" for m in found.suggestions
            )
        else:
            decision = "none"
        ranked = " ".join(f"{h.entry_id}:{h.confidence:.6f}" for h in kb.search(question, 5))
        # what the index is asked, in the order it gets it (the order scores add up in)
        query = kb.analyzer.query(normalize(question), kb._synonyms)
        soft = "|".join(query.soft)
        print(f"{name}\t{question}\t{decision}\t{ranked}\t{soft}")
"""


def _run(seeds: tuple[str, ...], tmp: Path) -> dict[str, str]:
    procs = {}
    for seed in seeds:
        folder = tmp / f"seed-{seed}"
        folder.mkdir()
        # TMPDIR: build_kb's throw-away databases land under pytest's tmp_path
        env = {**os.environ, "PYTHONHASHSEED": seed, "TMPDIR": str(folder)}
        procs[seed] = subprocess.Popen(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
    out = {}
    for seed, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"PYTHONHASHSEED={seed} failed:\n{stderr}"
        out[seed] = stdout
    return out


def test_lookup_does_not_depend_on_the_string_hash_seed(tmp_path: Path) -> None:
    outputs = _run(SEEDS, tmp_path)
    first = SEEDS[0]
    lines = outputs[first].splitlines()
    assert len(lines) > 200  # every dev question of every set was asked
    for seed in SEEDS[1:]:
        other = outputs[seed].splitlines()
        assert len(other) == len(lines)
        differing = [f"{a}\n  vs {b}" for a, b in zip(lines, other, strict=True) if a != b]
        assert not differing, (
            f"PYTHONHASHSEED={first} and {seed} rank or decide differently on "
            f"{len(differing)} questions, e.g.:\n" + "\n".join(differing[:5])
        )


def test_index_search_does_not_depend_on_the_order_of_the_query_terms() -> None:
    # A base large enough that the scan budget is spent: which of the equally common terms
    # are scanned (and so which documents become candidates) and the order in which scores
    # add up must not follow the order the terms come in (a set's order is per process).
    rng = random.Random(7)
    common = [f"c{i}" for i in range(6)]  # six terms, each in exactly `per_term` documents
    per_term = SCAN_BUDGET // 3
    docs = 4 * per_term
    holders = {t: set(rng.sample(range(docs), per_term)) for t in common}
    index = Bm25Index()
    for d in range(docs):
        terms = [t for t in common if d in holders[t]] + [f"own{d}", f"other{d % 97}"]
        if d % 50 == 0:
            terms.append("rare")
        index.add_entry(d + 1, [terms])
    assert all(index.df(t) == per_term for t in common)
    words, soft = ["rare", *common[:3]], common[3:]
    expected = index.search(words, 10, soft=soft)
    assert expected
    for query in itertools.permutations(words):
        for extra in itertools.permutations(soft):
            assert index.search(list(query), 10, soft=extra) == expected
