"""Knowledge changes while the bot is serving: what users' messages feel in a worker that
catches up with a large change, how much memory the catching-up takes, and how many full
index builds a change costs.

    python benchmarks/kb_rebuild_bench.py [--entries 100000] [--threads 4] [--peer DIR]
                                          [--scenarios first-import,reimport,synonyms,...]

A worker is a child process: it loads its index like gunicorn's master does, then runs
``--threads`` message threads (each: BEGIN, read the version, refresh_if_stale, lookup,
COMMIT, then a 20 ms pause: a moderately busy worker) while the parent, playing the
operator in another process, makes one change. Reported per scenario:

- first: the slowest of the threads' first messages after the change (WeChat's limit: 5 s);
- max / p99: over every message until 1 s after the new index answers;
- stale for: how long messages were answered from the previous index;
- builds: full index builds the worker made (a needless one costs seconds of CPU);
- RSS: before the change, peak while catching up, and 2 s after.

``--peer DIR`` names a folder holding another ``wxbot`` package (e.g. a copy of the code
before a change); both run on copies of the same SQLite database in the same run,
alternating, so the figures sit side by side.

Scenarios: ``first-import`` (N rows imported into a base of the 126 starter entries),
``reimport`` (the same N questions imported again with new answers), ``synonyms`` (a
synonym group added: everything is re-indexed), ``burst`` (200 entries taught one
transaction each while users ask), ``older-reader`` (a message whose transaction read a
version older than the index's, as a thread that raced another does).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAUSE = 0.02  # between one thread's messages
AFTER = 1.0  # seconds measured after the new index answers


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the worker (child process) ----------------------------------------------------------------


def worker(code: str, url: str, probes_path: str, threads: int) -> None:
    """Load, say "ready", wait for the parent's "go <target version>", then message until the
    index reaches the target (+AFTER); print one JSON line."""
    sys.path.insert(0, code)
    import gc

    from wxbot.db import make_engine
    from wxbot.qa import KnowledgeBase, versions

    engine = make_engine(url)
    kb = KnowledgeBase(engine)
    kb.load_at_start()
    kb.wait_until_rebuilt(600)
    builds = [0]
    build = kb._build  # noqa: SLF001 - a benchmark may count

    def counted(snap):  # type: ignore[no-untyped-def]
        builds[0] += 1
        return build(snap)

    kb._build = counted  # type: ignore[method-assign]
    with open(probes_path, encoding="utf-8") as fh:
        probes = json.load(fh)
    for text in probes[:50]:
        kb.lookup(text)  # lazy set-up out of the way
    gc.collect()
    rss_before = rss_mb()
    print("ready", flush=True)
    command = sys.stdin.readline().split()
    target = int(command[1])
    older = command[0] == "older"  # one message reads a version older than the index's
    if older:
        with engine.begin() as conn:
            kb.refresh_if_stale(conn)  # the index is at the newest version now
        assert kb.version == target, (kb.version, target)

    samples: list[tuple[float, float, int]] = []  # (start, seconds, thread)
    firsts: dict[int, float] = {}
    lock = threading.Lock()
    started = time.perf_counter()
    caught_up = [0.0]
    stop = threading.Event()
    peak = [rss_mb()]

    def message(n: int, text: str, version: int | None = None) -> None:
        t = time.perf_counter()
        with engine.begin() as conn:
            seen = versions.read_version(conn) if version is None else version
            kb.refresh_if_stale(conn, seen)
            kb.lookup(text)
        dt = time.perf_counter() - t
        with lock:
            samples.append((t - started, dt, n))
            firsts.setdefault(n, dt)

    def user(n: int) -> None:
        i = n
        while not stop.is_set():
            message(n, probes[i % len(probes)])
            i += threads
            time.sleep(PAUSE)

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            swapped = not getattr(kb, "_building", not kb.wait_until_rebuilt(0))
            if not caught_up[0] and kb.version >= target and swapped:
                caught_up[0] = time.perf_counter() - started
            time.sleep(0.02)

    if older:
        message(-1, probes[0], target - 1)  # the racing thread's message
    pool = [threading.Thread(target=user, args=(n,)) for n in range(threads)]
    pool.append(threading.Thread(target=watch))
    for t in pool:
        t.start()
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        if caught_up[0] and time.perf_counter() - started > caught_up[0] + AFTER:
            break
        time.sleep(0.05)
    stop.set()
    for t in pool:
        t.join()
    kb.wait_until_rebuilt(600)
    gc.collect()
    time.sleep(2)
    gc.collect()
    times = sorted(dt for _, dt, _ in samples)
    print(
        json.dumps(
            {
                "first": max(firsts.values()),
                "max": times[-1],
                "p50": times[len(times) // 2],
                "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
                "messages": len(times),
                "stale": caught_up[0],
                "builds": builds[0],
                "rss_before": rss_before,
                "rss_peak": peak[0],
                "rss_after": rss_mb(),
            }
        ),
        flush=True,
    )


# -- the operator (parent) ---------------------------------------------------------------------


def write_csv(path: str, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def make_base(folder: str, name: str, files: list[str]) -> str:
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade
    from wxbot.qa.importer import import_files

    path = os.path.join(folder, name)
    engine = make_engine("sqlite:///" + path)
    upgrade(engine)
    for f in files:
        report = import_files(engine, [f], now=time.time())
        assert report.written, report.errors[:3]
    engine.dispose()
    return path


def change(scenario: str, url: str, files: dict[str, str]) -> None:
    """The operator's change, made in this (another) process."""
    from wxbot.db import make_engine
    from wxbot.qa import synonyms, writer
    from wxbot.qa.importer import import_files

    engine = make_engine(url)
    now = time.time()
    if scenario == "first-import":
        assert import_files(engine, [files["big"]], now=now).written
    elif scenario == "reimport":
        assert import_files(engine, [files["big2"]], now=now).written
    elif scenario == "synonyms":
        with engine.begin() as conn:
            synonyms.create(conn, ["基准测试词甲", "基准测试词乙"], now=now)
    elif scenario == "older-reader":
        for i in range(2):
            with engine.begin() as conn:
                writer.create_entry(conn, [f"基准较旧读者问题{i}"], "答。", now=now, source="api")
    engine.dispose()


def burst(url: str, count: int) -> None:
    """Teach ``count`` entries, one transaction each, as fast as an admin script would."""
    from wxbot.db import make_engine
    from wxbot.qa import writer

    engine = make_engine(url)
    for i in range(count):
        with engine.begin() as conn:
            writer.create_entry(
                conn, [f"连续教学的问题第{i}条"], f"答案{i}", now=time.time(), source="chat"
            )
    engine.dispose()


def run_side(code: str, scenario: str, db: str, files: dict[str, str], args) -> dict:  # type: ignore[no-untyped-def]
    from wxbot.db import make_engine
    from wxbot.qa import versions

    url = "sqlite:///" + db
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", code, url, files["probes"], str(args.threads)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    engine = make_engine(url)
    if scenario == "burst":
        with engine.connect() as conn:
            target = versions.read_version(conn) + 200
        child.stdin.write(f"go {target}\n")
        child.stdin.flush()
        burst(url, 200)
    else:
        change(scenario, url, files)
        with engine.connect() as conn:
            target = versions.read_version(conn)
        child.stdin.write(f"{'older' if scenario == 'older-reader' else 'go'} {target}\n")
        child.stdin.flush()
    engine.dispose()
    out = child.stdout.readline()
    child.wait()
    return json.loads(out)


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--peer", default="", help="a folder holding another wxbot package")
    parser.add_argument("--scenarios", default="first-import,reimport,synonyms,burst,older-reader")
    args = parser.parse_args()

    from benchmarks.kb_bench import synthetic

    folder = tempfile.mkdtemp(prefix="wxbot-rebuild-bench-")
    rows = synthetic(args.entries)
    files = {"big": os.path.join(folder, "big.csv"), "big2": os.path.join(folder, "big2.csv")}
    write_csv(files["big"], rows)
    write_csv(files["big2"], [(q, "新的" + a) for q, a in rows])
    files["probes"] = os.path.join(folder, "probes.json")
    with open(files["probes"], "w", encoding="utf-8") as fh:
        json.dump([q for q, _ in rows[: args.entries : max(1, args.entries // 500)]], fh)
    starter = str(ROOT / "knowledge/faq.txt")
    small = make_base(folder, "small.sqlite3", [starter])
    large = make_base(folder, "large.sqlite3", [starter, files["big"]])

    sides = {"this tree": str(ROOT)}
    if args.peer:
        sides["peer"] = str(Path(args.peer).resolve())
    print(f"{args.entries} synthetic entries, SQLite, {args.threads} message threads per worker")
    header = f"{'scenario':<13} {'side':<10} {'first':>7} {'max':>7} {'p99':>7} {'stale':>6}"
    print(header + f" {'builds':>6} {'RSS before/peak/after MB':>25}")
    for scenario in args.scenarios.split(","):
        for name, code in sides.items():
            db = os.path.join(folder, "run.sqlite3")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db + suffix):
                    os.remove(db + suffix)
            shutil.copy(small if scenario == "first-import" else large, db)
            m = run_side(code, scenario, db, files, args)
            print(
                f"{scenario:<13} {name:<10} {m['first']:>6.2f}s {m['max']:>6.2f}s "
                f"{m['p99']:>6.2f}s {m['stale']:>5.1f}s {m['builds']:>6} "
                f"{m['rss_before']:>9.0f} / {m['rss_peak']:.0f} / {m['rss_after']:.0f}",
                flush=True,
            )
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
