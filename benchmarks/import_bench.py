"""Knowledge import benchmark: wall time, peak memory, check vs write, for a large CSV.

    python benchmarks/import_bench.py [--rows 200000] [--backends sqlite,mysql]
                                      [--mysql-url URL] [--peer DIR] [--seed 7]

    # before/after in one run: the original code in a worktree next to this tree
    git worktree add /tmp/import_peer HEAD
    python benchmarks/import_bench.py --peer /tmp/import_peer
    git worktree remove /tmp/import_peer

Writes a synthetic CSV of ``--rows`` entries (header ``question,answer,similar``; Chinese
questions of 6-20 characters made of the starter FAQ's words, 0-3 similar questions each,
answers of 30-200 characters, some holding commas so they are quoted), then, for every
backend, into a fresh database (SQLite: a new file; MariaDB/MySQL: a database
``wxbot_importbench_<random>`` created on ``--mysql-url`` and dropped at the end):

- ``first``: the import into the empty database (every row added);
- ``same``: the same file again (every row unchanged: nothing written);
- ``answers``: the file with every answer changed (every row updated).

Each import runs in a child process of its own (what ``wxbot kb import`` or a console
worker does: open the file, then importer.import_parsed), which reports its wall time,
the phases (parse; check = check_parsed, until the last ``checked`` call; plan = matching
the rows to stored entries, until ``planned``; write = the inserts/updates and the
commit), its memory before parsing and its peak (VmHWM, the high-water mark of its
resident set). Code that streams the file (``formats.open_file``: it is read as its rows
are checked) has no parse phase of its own: its reading is in "check", and its "parsed"
column is "-". Older code (a ``--peer`` without open_file) parses the whole file first. ``--peer DIR``: a folder holding another copy of the ``wxbot`` package
(a git worktree of HEAD, say) runs the same imports on databases of its own in the same
run, so the figures sit side by side on the same machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
RUNS = (("first", "kb.csv"), ("same", "kb.csv"), ("answers", "kb-answers.csv"))


def status_kb(field: str) -> int:
    """A figure (kB) of this process's /proc status: VmRSS now, VmHWM its peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


# -- the child: one import, measured -----------------------------------------------------------


def child_upgrade(code: str, url: str) -> None:
    sys.path.insert(0, code)
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def child_import(code: str, url: str, path: str) -> None:
    """Parse ``path`` and import it as the CLI and the console do; print JSON figures."""
    sys.path.insert(0, code)
    import wxbot
    from wxbot.db import make_engine
    from wxbot.qa.importer import import_parsed
    from wxbot.qa.text import question_key

    assert os.path.dirname(os.path.dirname(wxbot.__file__)) == code, wxbot.__file__
    try:
        from wxbot.qa.formats import open_file as read  # streamed: read as it is checked

        streamed = True
    except ImportError:
        from wxbot.qa.formats import parse_file as read  # read whole, then checked

        streamed = False
    question_key("预热")  # the normaliser's tables, loaded once per process in any case
    engine = make_engine(url)
    with engine.connect() as conn:  # the pool's connection made, as a worker has it
        conn.exec_driver_sql("SELECT 1")
    marks: dict[str, float] = {}
    peaks: dict[str, int] = {}

    def checked(_n: int) -> None:
        marks["checked"] = time.perf_counter()

    def planned(_total: int) -> None:
        marks["planned"] = time.perf_counter()
        peaks["planned"] = status_kb("VmHWM")

    base = status_kb("VmRSS")
    started = time.perf_counter()
    parsed = read(path)
    marks["parsed"] = time.perf_counter()
    peaks["parsed"] = status_kb("VmHWM")
    report = import_parsed(engine, [parsed], now=time.time(), checked=checked, planned=planned)
    ended = time.perf_counter()
    check_end = marks.get("checked", marks["parsed"])
    plan_end = marks.get("planned", check_end)
    engine.dispose()
    print(
        json.dumps(
            {
                "summary": report.summary(),
                "streamed": streamed,
                "written": report.written,
                "errors": report.errors[:3],
                "wall": ended - started,
                "parse": marks["parsed"] - started,
                "check": check_end - marks["parsed"],
                "plan": plan_end - check_end,
                "write": ended - plan_end,
                "base_mb": base / 1024,
                "peak_parsed_mb": peaks["parsed"] / 1024,
                "peak_planned_mb": peaks.get("planned", 0) / 1024,
                "peak_mb": status_kb("VmHWM") / 1024,
            }
        )
    )


# -- the parent: data, databases, runs ---------------------------------------------------------


def vocabulary() -> list[str]:
    """Words of the starter FAQ (cut by rjieba): realistic service vocabulary."""
    import rjieba

    text = (ROOT / "knowledge" / "faq.txt").read_text(encoding="utf-8")
    text = "\n".join(line[2:] for line in text.splitlines() if line[:2] in ("Q:", "A:"))
    words = {w for w in rjieba.cut(text) if re.fullmatch(r"[\u4e00-\u9fff]{1,4}", w)}
    return sorted(words)


def synthetic(n: int, seed: int) -> list[tuple[str, str, str]]:
    """(question, answer, similar) rows; every question unique by its normalised key."""
    sys.path.insert(0, str(ROOT))
    from wxbot.qa.text import question_key

    words = vocabulary()
    rnd = random.Random(seed)
    endings = ["", "", "吗", "呢", "？", "怎么办", "怎么弄", "可以吗", "在哪里"]
    starts = ["", "", "", "请问", "我想问", "你好，", "麻烦问下"]
    seen: set[str] = set()

    def unique(text: str) -> bool:
        key = question_key(text)
        if not key or key in seen:
            return False
        seen.add(key)
        return True

    def phrase(k: int) -> list[str]:
        return rnd.choices(words, k=k)

    rows: list[tuple[str, str, str]] = []
    while len(rows) < n:
        core = phrase(rnd.randint(3, 6))
        question = "".join(core) + rnd.choice(endings)
        if len(question) > 24 or not unique(question):
            continue
        similar: list[str] = []
        for _ in range(rnd.choice((0, 1, 1, 2, 2, 3))):
            other = core[:]
            other[rnd.randrange(len(other))] = rnd.choice(words)
            if rnd.random() < 0.5:
                rnd.shuffle(other)
            text = rnd.choice(starts) + "".join(other) + rnd.choice(endings)
            if unique(text):
                similar.append(text)
        sentences = []
        while sum(map(len, sentences)) < rnd.randint(30, 200):
            sep = "，" if rnd.random() < 0.6 else ", "  # ASCII commas: quoted fields
            sentences.append(sep.join("".join(phrase(rnd.randint(2, 5))) for _ in range(2)) + "。")
        rows.append((question, "".join(sentences), "|".join(similar)))
    return rows


def write_csv(path: str, rows: list[tuple[str, str, str]], suffix: str = "") -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["question", "answer", "similar"])
        out.writerows((q, a + suffix, s) for q, a, s in rows)


class Database:
    """A fresh database per (backend, side): SQLite file or a MySQL database, dropped after."""

    def __init__(self, backend: str, folder: str, mysql_url: str, label: str) -> None:
        self.backend = backend
        self.name = ""
        if backend == "sqlite":
            self.url = "sqlite:///" + os.path.join(folder, f"{label}.sqlite3")
            return
        from sqlalchemy import create_engine, make_url, text

        self.server = create_engine(mysql_url)
        self.name = f"wxbot_importbench_{uuid.uuid4().hex[:10]}"
        with self.server.connect() as conn:
            conn.execute(
                text(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            )
        self.url = make_url(mysql_url).set(database=self.name).render_as_string(False)

    def drop(self) -> None:
        if self.name:
            from sqlalchemy import text

            with self.server.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {self.name}"))
            self.server.dispose()


def run_child(*args: str) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if child.returncode:
        raise SystemExit(f"child {args[0]} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1]) if args[0] == "--import" else {}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--upgrade":
        child_upgrade(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--import":
        child_import(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,mysql", help="comma-separated")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL, help="a server (no database)")
    parser.add_argument("--peer", default="", help="a folder with another copy of wxbot")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    sides = {"this tree": str(ROOT)}
    if args.peer:
        peer = str(Path(args.peer).resolve())
        if not os.path.isdir(os.path.join(peer, "wxbot")):
            parser.error(f"--peer {args.peer}: no wxbot package there")
        sides["peer"] = peer
    folder = tempfile.mkdtemp(prefix="wxbot-import-bench-")
    started = time.perf_counter()
    rows = synthetic(args.rows, args.seed)
    write_csv(os.path.join(folder, "kb.csv"), rows)
    write_csv(os.path.join(folder, "kb-answers.csv"), rows, "（已更新）")
    questions = sum(1 + (s.count("|") + 1 if s else 0) for _, _, s in rows)
    size = os.path.getsize(os.path.join(folder, "kb.csv")) / 1e6
    print(
        f"{args.rows} rows, {questions} questions, {size:.1f} MB CSV "
        f"(generated in {time.perf_counter() - started:.0f} s); sides: "
        + ", ".join(f"{name} = {code}" for name, code in sides.items())
    )
    del rows

    results: list[tuple[str, str, str, dict]] = []
    header = (
        f"{'backend':7} {'side':9} {'run':8} {'wall s':>7} {'parse':>6} {'check':>6} "
        f"{'plan':>6} {'write':>6} {'base MB':>8} {'parsed':>7} {'peak MB':>8}  result"
    )
    print(header)
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        for side, code in sides.items():
            db = Database(backend, folder, args.mysql_url, side.replace(" ", "-"))
            try:
                run_child("--upgrade", code, db.url)
                for run, name in RUNS:
                    m = run_child("--import", code, db.url, os.path.join(folder, name))
                    results.append((backend, side, run, m))
                    streamed = m.get("streamed", False)
                    parse = f"{'-':>6}" if streamed else f"{m['parse']:6.1f}"
                    parsed = f"{'-':>7}" if streamed else f"{m['peak_parsed_mb']:7.0f}"
                    print(
                        f"{backend:7} {side:9} {run:8} {m['wall']:7.1f} {parse} "
                        f"{m['check']:6.1f} {m['plan']:6.1f} {m['write']:6.1f} "
                        f"{m['base_mb']:8.0f} {parsed} {m['peak_mb']:8.0f}  {m['summary']}"
                        + ("" if m["written"] or run == "same" else " NOT WRITTEN")
                        + (f" {m['errors']}" if m["errors"] else ""),
                        flush=True,
                    )
            finally:
                db.drop()
    if len(sides) > 1:
        print("\nthis tree vs peer (peak RSS, wall, check):")
        for backend, side, run, m in results:
            if side != "this tree":
                continue
            p = next(r for b, s, n, r in results if (b, s, n) == (backend, "peer", run))
            print(
                f"  {backend:7} {run:8} peak {p['peak_mb']:.0f} -> {m['peak_mb']:.0f} MB, "
                f"wall {p['wall']:.1f} -> {m['wall']:.1f} s, parse+check "
                f"{p['parse'] + p['check']:.1f} -> {m['parse'] + m['check']:.1f} s, plan+write "
                f"{p['plan'] + p['write']:.1f} -> {m['plan'] + m['write']:.1f} s"
            )
    print(
        f"(files in {folder}; peak = VmHWM of the importing process, base = its RSS before "
        "parsing, parsed = its VmHWM once the file is parsed; '-': the file is read as it is "
        "checked)"
    )


if __name__ == "__main__":
    main()
