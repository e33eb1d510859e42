"""Knowledge-base benchmark: import, index build, memory, match latency, paraphrase accuracy.

    python benchmarks/kb_bench.py [--entries 100000] [--database-url URL] [--queries 5000]
                                  [--peer main]

Builds a synthetic base (questions of 3-6 words drawn from jieba's dictionary by frequency,
answers of 20-40 words: a wider vocabulary than a real FAQ, so memory is on the safe side),
imports it through the real importer (CSV file → validation → bulk upsert), loads it into a
KnowledgeBase like a worker does at start-up, then times lookups of questions with one
character dropped or replaced, and of unrelated text. Targets: import 100k rows < 30 s,
match p99 < 5 ms, one worker < ~300 MB.

The peer is the matcher of another git revision (``--peer``, default ``main``: the code
before this branch), checked out into a temporary folder and run by the same worker on the
same database in the same run, so both sides see the same machine.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def synthetic(n: int, seed: int = 7) -> list[tuple[str, str]]:
    import jieba  # (the bench extra) its dictionary's words and frequencies

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    freq = tokenizer.FREQ
    words = [w for w, f in freq.items() if f > 0 and 1 <= len(w) <= 4]
    cum = list(itertools.accumulate(freq[w] ** 0.5 for w in words))
    rnd = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, str]] = []
    while len(rows) < n:
        q = "".join(rnd.choices(words, cum_weights=cum, k=rnd.randint(3, 6)))
        if q in seen:
            continue
        seen.add(q)
        a = "".join(rnd.choices(words, cum_weights=cum, k=rnd.randint(20, 40))) + "。"
        rows.append((q, a))
    return rows


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def worker(url: str, path: str, queries: int, code: str) -> None:
    """Child process: load like a worker does, then time lookups; prints JSON. ``code``: the
    folder whose ``wxbot`` package is measured."""
    sys.path.insert(0, code)
    rss_python = rss_mb()
    from wxbot.db import make_engine
    from wxbot.qa import KnowledgeBase
    from wxbot.qa.text import get_analyzer

    get_analyzer()
    rss_jieba = rss_mb()
    engine = make_engine(url)
    kb = KnowledgeBase(engine)
    started = time.perf_counter()
    with engine.connect() as conn:
        kb.refresh_if_stale(conn)
    build_s = time.perf_counter() - started
    rss_loaded = rss_mb()
    with open(path, encoding="utf-8", newline="") as fh:
        questions = [row[0] for row in csv.reader(fh)]
    rnd = random.Random(11)
    probes: list[str] = []
    for _ in range(queries):
        q = rnd.choice(questions)
        i = rnd.randrange(len(q))
        probes.append(q[:i] + q[i + 1 :] if rnd.random() < 0.5 else q[:i] + "的" + q[i + 1 :])
    probes += ["今天股市怎么样", "帮我写一首诗", "量子力学是什么", "hello world"] * 50

    def timed() -> list[float]:
        times: list[float] = []
        for text in probes:
            t = time.perf_counter()
            kb.lookup(text)
            times.append(time.perf_counter() - t)
        return times

    times = timed()
    rss_after = rss_mb()  # with the caches the lookups filled
    with engine.connect() as conn:
        t = time.perf_counter()
        for _ in range(1000):
            kb.refresh_if_stale(conn)
        fresh_ms = time.perf_counter() - t
    index = kb._index  # noqa: SLF001 - a benchmark may peek
    print(
        json.dumps(
            {
                "rss_python": rss_python,
                "rss_jieba": rss_jieba,
                "rss_loaded": rss_loaded,
                "rss_after": rss_after,
                "build_s": build_s,
                "vocabulary": index.vocabulary_size(),
                "postings": index.postings_count(),
                "lookups": len(probes),
                "p50": percentile(times, 0.5) * 1000,
                "p99": percentile(times, 0.99) * 1000,
                "max": max(times) * 1000,
                "fresh_ms": fresh_ms,
            }
        )
    )


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    parser.add_argument("--peer", default="main", help="git revision to compare with ('' = none)")
    args = parser.parse_args()

    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade
    from wxbot.qa.importer import import_files
    from wxbot.qa.text import get_analyzer

    get_analyzer()
    folder = tempfile.mkdtemp(prefix="wxbot-kb-bench-")
    url = args.database_url or "sqlite:///" + os.path.join(folder, "kb.sqlite3")
    engine = make_engine(url)
    upgrade(engine)

    rows = synthetic(args.entries)
    path = os.path.join(folder, "synthetic.csv")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)

    started = time.perf_counter()
    report = import_files(engine, [path], now=time.time())
    import_s = time.perf_counter() - started
    assert report.written, report.errors[:5]
    started = time.perf_counter()
    again = import_files(engine, [path], now=time.time())
    reimport_s = time.perf_counter() - started

    del rows
    root = Path(__file__).resolve().parent.parent
    sides = {"this branch": str(root)}
    if args.peer:
        peer = os.path.join(folder, "peer")
        os.mkdir(peer)
        tree = subprocess.run(
            ["git", "-C", str(root), "archive", args.peer], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", peer], input=tree, check=True)
        sides[f"peer ({args.peer})"] = peer

    def measure(code: str) -> dict:
        # A fresh process measures what one worker costs: nothing of the import lingers in it.
        child = subprocess.run(
            [sys.executable, __file__, "--worker", url, path, str(args.queries), code],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(child.stdout)

    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(2):  # alternate, so the machine's noise hits both sides alike
        for name, code in sides.items():
            runs[name].append(measure(code))
    measured = {n: min(r, key=lambda m: m["p50"]) for n, r in runs.items()}
    ours = measured["this branch"]

    from tests.paraphrases import build_kb, evaluate, load_cases

    cases, unrelated = load_cases()
    para = evaluate(
        build_kb(str(Path(__file__).resolve().parent.parent / "knowledge/faq.txt")),
        cases,
        unrelated,
    )
    print("(accuracy of every set: benchmarks/accuracy.py)")

    print(f"database: {engine.dialect.name}; entries: {args.entries}")
    print(
        f"import: {import_s:.1f} s ({report.summary()}); re-import: {reimport_s:.1f} s "
        f"({again.summary()})"
    )
    for name, m in measured.items():
        print(f"{name}:")
        print(
            f"  worker start-up (jieba + index of every entry): {m['build_s']:.1f} s; "
            f"vocabulary {m['vocabulary']} terms, {m['postings']} postings"
        )
        print(
            f"  memory (RSS): {m['rss_python']:.0f} MB bare python, {m['rss_jieba']:.0f} MB "
            f"with jieba, {m['rss_loaded']:.0f} MB with the index and answers, "
            f"{m['rss_after']:.0f} MB after the lookups (caches filled)"
        )
        print(
            f"  match latency over {m['lookups']} lookups: p50 {m['p50']:.2f} ms, "
            f"p99 {m['p99']:.2f} ms, max {m['max']:.2f} ms"
        )
    if len(measured) > 1:
        peer = next(m for n, m in measured.items() if n != "this branch")
        print(
            f"this branch / peer: p50 {ours['p50'] / peer['p50']:.2f}x, p99 "
            f"{ours['p99'] / peer['p99']:.2f}x, memory after lookups "
            f"{ours['rss_after'] - peer['rss_after']:+.0f} MB, start-up "
            f"{ours['build_s'] / peer['build_s']:.2f}x"
        )
    print(f"freshness check (version row read, nothing changed): {ours['fresh_ms']:.3f} ms")
    print(
        f"paraphrases: {para['questions']} questions, top-1 accuracy {para['top1']:.1%}; "
        f"answered right {para['answered_right']:.1%}, wrong {para['answered_wrong']:.1%}; "
        f"unrelated declined {para['unrelated_declined']:.1%}"
    )


if __name__ == "__main__":
    main()
