"""Answer accuracy of the knowledge base on rewordings (a measurement, not a test).

    python -m tests.paraphrases [--set starter|bank|gov|ja|th|all] [--dev] [-v]
    (benchmarks/accuracy.py prints every set, dev and test, in one table)

Five sets, each with a development half (the only one looked at while choosing weights and
thresholds) and a test half written before tuning and never tuned on:

- ``starter``: the starter FAQ (knowledge/faq.txt, several questions per entry);
  tests/paraphrases.jsonl (test) and tests/paraphrases.dev.jsonl (dev, other entries).
- ``bank``: a bank's FAQ of one question per entry (tests/accuracy/bank_faq.csv);
  tests/accuracy/bank.test.jsonl and bank.dev.jsonl (other entries). See its README.
- ``gov``: a government service hall's FAQ of one question per entry
  (tests/accuracy/gov_faq.csv); gov.test.jsonl and gov.dev.jsonl (other entries).
- ``ja`` / ``th``: a Japanese shopping account's and a Thai mobile operator's FAQ of one
  question per entry, every entry in that language (tests/accuracy/ja_faq.csv, th_faq.csv;
  ja.test.jsonl and ja.dev.jsonl, th.test.jsonl and th.dev.jsonl).

The FAQ is loaded into a throw-away SQLite database through the real importer (with the
starter synonyms the migration seeds) and KnowledgeBase; every rewording goes through
``KnowledgeBase.lookup`` as the bot would ask it. Outcomes per question:

- direct: answered with the expected entry;
- suggested: not answered, the expected entry among the did-you-mean choices;
- wrong: answered with another entry;
- abstained: not answered and the expected entry not offered (don't know, or wrong choices).

Unrelated questions (the FAQ cannot answer them) count when answered at all.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class EvalSet:
    name: str
    faq: Path
    cases: Path  # jsonl: {"expected": question, "paraphrases": [...]}
    unrelated: Path
    # the user's language every lookup passes, as the bot does (kb.lookup(text, language=...));
    # None (the Chinese sets) asks as before. Within a base of one language it changes no score.
    language: str | None = None


SETS: dict[str, dict[str, EvalSet]] = {
    "starter": {
        "dev": EvalSet(
            "starter dev",
            ROOT / "knowledge" / "faq.txt",
            HERE / "paraphrases.dev.jsonl",
            HERE / "paraphrases.dev-unrelated.txt",
        ),
        "test": EvalSet(
            "starter test",
            ROOT / "knowledge" / "faq.txt",
            HERE / "paraphrases.jsonl",
            HERE / "unrelated_questions.txt",
        ),
    },
    "bank": {
        "dev": EvalSet(
            "bank dev",
            HERE / "accuracy" / "bank_faq.csv",
            HERE / "accuracy" / "bank.dev.jsonl",
            HERE / "accuracy" / "bank.dev-unrelated.txt",
        ),
        "test": EvalSet(
            "bank test",
            HERE / "accuracy" / "bank_faq.csv",
            HERE / "accuracy" / "bank.test.jsonl",
            HERE / "accuracy" / "bank.test-unrelated.txt",
        ),
    },
    "gov": {
        "dev": EvalSet(
            "gov dev",
            HERE / "accuracy" / "gov_faq.csv",
            HERE / "accuracy" / "gov.dev.jsonl",
            HERE / "accuracy" / "gov.dev-unrelated.txt",
        ),
        "test": EvalSet(
            "gov test",
            HERE / "accuracy" / "gov_faq.csv",
            HERE / "accuracy" / "gov.test.jsonl",
            HERE / "accuracy" / "gov.test-unrelated.txt",
        ),
    },
    **{
        name: {
            half: EvalSet(
                f"{name} {half}",
                HERE / "accuracy" / f"{name}_faq.csv",
                HERE / "accuracy" / f"{name}.{half}.jsonl",
                HERE / "accuracy" / f"{name}.{half}-unrelated.txt",
                language=name,
            )
            for half in ("dev", "test")
        }
        for name in ("ja", "th")
    },
}


# The sets the shipped weights, thresholds and fusion were chosen on (their dev halves):
# calibrate.py, calibrate_fusion.py and kb_sizes.py's one-base run use these unless told.
TUNED = ("starter", "bank", "gov")


def load_cases(
    dev: bool = False, which: str = "starter"
) -> tuple[list[tuple[str, str]], list[str]]:
    chosen = SETS[which]["dev" if dev else "test"]
    return read_cases(chosen)


def read_cases(chosen: EvalSet) -> tuple[list[tuple[str, str]], list[str]]:
    cases: list[tuple[str, str]] = []
    for line in chosen.cases.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            cases.extend((item["expected"], p) for p in item["paraphrases"])
    unrelated = [
        ln.strip()
        for ln in chosen.unrelated.read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    return cases, unrelated


@dataclass
class Result:
    questions: int = 0
    direct: int = 0
    suggested: int = 0
    wrong: int = 0
    abstained: int = 0
    top1: int = 0
    unrelated: int = 0
    unrelated_answered: int = 0
    misses: list[str] = field(default_factory=list)

    def share(self, name: str) -> float:
        return getattr(self, name) / self.questions if self.questions else 0.0

    # older callers (kb_bench, the regression floor) read these
    def __getitem__(self, key: str) -> float:
        legacy = {
            "top1": self.share("top1"),
            "answered_right": self.share("direct"),
            "answered_wrong": self.share("wrong"),
            "unrelated_declined": 1 - self.unrelated_answered / max(1, self.unrelated),
            "questions": self.questions,
            "unrelated": self.unrelated,
        }
        return legacy[key]


def evaluate(kb, cases, unrelated, verbose: bool = False, language: str | None = None) -> Result:  # type: ignore[no-untyped-def]
    from wxbot.qa import store

    with kb.engine.connect() as conn:
        wanted = {e: store.find_entry(conn, e) for e, _ in cases}
        titles = {}
        for row in store.list_entries(conn, limit=1_000_000)[1]:
            titles[row.id] = row.questions[0] if row.questions else "?"
    missing = [e for e, row in wanted.items() if row is None]
    if missing:
        sys.exit(f"expected questions not in the FAQ: {missing}")
    result = Result(questions=len(cases), unrelated=len(unrelated))
    for expected, question in cases:
        want = wanted[expected].id
        hits = kb.search(question, limit=1)
        result.top1 += bool(hits) and hits[0].entry_id == want
        found = kb.lookup(question, language=language)
        if found.best is not None:
            ok = found.best.entry_id == want
            result.direct += ok
            result.wrong += not ok
            outcome = "" if ok else f"WRONG {titles[found.best.entry_id]!r}"
        elif want in [m.entry_id for m in found.suggestions]:
            result.suggested += 1
            outcome = "suggested"
        else:
            result.abstained += 1
            outcome = "abstained"
        if outcome:
            offered = ", ".join(titles[m.entry_id] for m in found.suggestions)
            result.misses.append(f"{question!r} -> {outcome} [{offered}]; wanted {expected!r}")
    for q in unrelated:
        found = kb.lookup(q, language=language)
        if found.best is not None:
            result.unrelated_answered += 1
            result.misses.append(f"unrelated {q!r} answered with {titles[found.best.entry_id]!r}")
    if verbose:
        for line in result.misses:
            print("  " + line)
    return result


def build_kb(*files: str, kb_options: dict | None = None, embedder=None):  # type: ignore[no-untyped-def]
    """A knowledge base of ``files`` in a throw-away SQLite database; with ``embedder`` (the
    local sentence encoder, or an EmbeddingClient) every question embedded and the model's
    score fusion (LOCAL_MODEL_FUSION, or ``kb_options["fusion"]``) deciding."""
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade
    from wxbot.qa import KnowledgeBase
    from wxbot.qa.embeddings import Semantic, embed_missing
    from wxbot.qa.fusion import LOCAL_MODEL_FUSION
    from wxbot.qa.importer import import_files

    folder = tempfile.mkdtemp(prefix="wxbot-para-")
    engine = make_engine("sqlite:///" + os.path.join(folder, "kb.sqlite3"))
    upgrade(engine)
    report = import_files(engine, list(files), now=time.time())
    if not report.written:
        sys.exit(f"could not import {files}: {report.errors[:5]}")
    options = dict(kb_options or {})
    fusion = options.pop("fusion", LOCAL_MODEL_FUSION)
    if embedder is not None:
        embed_missing(engine, embedder, now=time.time())
        options["semantic"] = Semantic(embedder, engine, 5.0, fusion)
    kb = KnowledgeBase(engine, **options)
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    return kb


HEADER = (
    f"{'set':<18}{'questions':>10}{'direct':>9}{'suggested':>11}{'wrong':>8}"
    f"{'abstained':>11}{'top-1':>8}{'unrelated answered':>21}"
)


def row(name: str, r: Result) -> str:
    return (
        f"{name:<18}{r.questions:>10}{r.share('direct'):>9.1%}{r.share('suggested'):>11.1%}"
        f"{r.share('wrong'):>8.1%}{r.share('abstained'):>11.1%}{r.share('top1'):>8.1%}"
        f"{f'{r.unrelated_answered} of {r.unrelated}':>21}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", default="all", choices=[*SETS, "all"])
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    parser.add_argument("--dev", action="store_true", help="the development halves only")
    args = parser.parse_args()
    names = list(SETS) if args.set == "all" else [args.set]
    print(HEADER)
    for name in names:
        halves = ["dev"] if args.dev else ["dev", "test"]
        kb = build_kb(str(SETS[name]["dev"].faq))
        for half in halves:
            chosen = SETS[name][half]
            cases, unrelated = read_cases(chosen)
            result = evaluate(kb, cases, unrelated, verbose=False, language=chosen.language)
            print(row(chosen.name, result))
            if args.verbose:
                for line in result.misses:
                    print("    " + line)


if __name__ == "__main__":
    main()
