"""Knowledge-base benchmark: import, index build, memory, match latency, paraphrase accuracy.

    python benchmarks/kb_bench.py [--entries 100000] [--database-url URL] [--queries 5000]

Builds a synthetic base (questions of 3-6 words drawn from jieba's dictionary by frequency,
answers of 20-40 words: a wider vocabulary than a real FAQ, so memory is on the safe side),
imports it through the real importer (CSV file → validation → bulk upsert), loads it into a
KnowledgeBase like a worker does at start-up, then times lookups of questions with one
character dropped or replaced, and of unrelated text. Targets: import 100k rows < 30 s,
match p99 < 5 ms, one worker < ~300 MB.
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
    from wxbot.qa.text import get_analyzer

    freq = get_analyzer()._jieba.FREQ  # noqa: SLF001 - a benchmark may peek
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


def worker(url: str, path: str, queries: int) -> None:
    """Child process: load like a worker does, then time lookups; prints JSON."""
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
    # The peer, on the same index in the same run: questions' words only (no answer
    # evidence, no character re-ranking), i.e. the matcher before issue 9.
    kb.char_weight, kb.answer_weight = 0.0, 0.0
    lexical = timed()
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
                "build_s": build_s,
                "vocabulary": index.vocabulary_size(),
                "postings": index.postings_count(),
                "lookups": len(probes),
                "p50": percentile(times, 0.5) * 1000,
                "p99": percentile(times, 0.99) * 1000,
                "max": max(times) * 1000,
                "peer_p50": percentile(lexical, 0.5) * 1000,
                "peer_p99": percentile(lexical, 0.99) * 1000,
                "fresh_ms": fresh_ms,
            }
        )
    )


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    args = parser.parse_args()

    from wxbot.db import make_engine, upgrade
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
    # A fresh process measures what one worker costs: nothing of the import lingers in it.
    child = subprocess.run(
        [sys.executable, __file__, "--worker", url, path, str(args.queries)],
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(child.stdout)

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
    print(
        f"worker start-up (jieba + index of every entry): {measured['build_s']:.1f} s; "
        f"vocabulary {measured['vocabulary']} terms, {measured['postings']} postings"
    )
    print(
        f"memory of one worker (RSS): {measured['rss_python']:.0f} MB bare python, "
        f"{measured['rss_jieba']:.0f} MB with jieba, {measured['rss_loaded']:.0f} MB with the "
        f"index and answers in memory"
    )
    print(
        f"match latency over {measured['lookups']} lookups: p50 {measured['p50']:.2f} ms, "
        f"p99 {measured['p99']:.2f} ms, max {measured['max']:.2f} ms"
    )
    print(
        f"  peer (question words only, as before issue 9) on the same index: p50 "
        f"{measured['peer_p50']:.2f} ms, p99 {measured['peer_p99']:.2f} ms; full / peer p50 "
        f"= {measured['p50'] / measured['peer_p50']:.2f}x"
    )
    print(f"freshness check (version row read, nothing changed): {measured['fresh_ms']:.3f} ms")
    print(
        f"paraphrases: {para['questions']} questions, top-1 accuracy {para['top1']:.1%}; "
        f"answered right {para['answered_right']:.1%}, wrong {para['answered_wrong']:.1%}; "
        f"unrelated declined {para['unrelated_declined']:.1%}"
    )


if __name__ == "__main__":
    main()
