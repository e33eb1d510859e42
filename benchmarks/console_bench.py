"""Console benchmark: what the daily counters cost a message, how fast the pages answer with a
large knowledge base, and how long a large upload takes to check and import.

    python benchmarks/console_bench.py [--db sqlite|mysql] [--entries 100000] [--messages 3000]

1. Messages, in-process (the engine alone, one thread): the same questions with the daily
   counters on and with a counter that does nothing, in alternating rounds, side by side.
2. Pages (Flask test client, logged in): median of 20 requests each, N entries and 200
   unanswered questions in the base.
3. An upload of N rows through the console's import (check, then import), wall time.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kb_bench import synthetic  # noqa: E402
from wxbot.stats import DailyCounters, zone  # noqa: E402

MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"


class NoCounters:
    """The daily counters switched off: the peer of the side-by-side comparison."""

    def add(self, names) -> None:  # type: ignore[no-untyped-def]
        pass

    def maybe_flush(self) -> None:
        pass

    def flush(self) -> None:
        pass


def database(kind: str, workdir: str) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench.sqlite3", None
    from sqlalchemy import create_engine, text

    name = f"wxbot_cb_{uuid.uuid4().hex[:8]}"
    server = create_engine(MYSQL_SERVER)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    return MYSQL_SERVER.replace("/test?", f"/{name}?"), (server, name)


def drop(handle: object) -> None:
    if handle is None:
        return
    from sqlalchemy import text

    server, name = handle  # type: ignore[misc]
    with server.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    server.dispose()


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue().encode()


def bench_messages(app, questions: list[str], rounds: int = 20) -> None:  # type: ignore[no-untyped-def]
    """Short alternating rounds (on, off, off, on, ...) so a noisy neighbour hits both alike."""
    from tests.helpers import text

    bot = app.extensions["wxbot.bot"]
    real = bot.stats
    per_message: dict[str, list[float]] = {"on": [], "off": []}
    chunk = max(1, len(questions) // rounds)
    for r in range(rounds * 2):
        # each batch of questions runs twice, once per side; which side goes first alternates
        # (the first run of a batch pays for new unanswered rows and a colder cache)
        first = "on" if (r // 2) % 2 == 0 else "off"
        label = first if r % 2 == 0 else ("off" if first == "on" else "on")
        bot.stats = real if label == "on" else NoCounters()
        batch = questions[(r // 2) * chunk : (r // 2 + 1) * chunk]
        started = time.perf_counter()
        for i, q in enumerate(batch):
            bot.handle(text(f"o_bench_{label}_{i % 200}", q))
        per_message[label].append((time.perf_counter() - started) / len(batch) * 1e6)
    bot.stats = real
    on, off = statistics.median(per_message["on"]), statistics.median(per_message["off"])
    print(
        f"message in-process: {on:.0f} µs with daily counters, {off:.0f} µs without: ratio {on / off:.3f}"
    )
    counters = DailyCounters(app.extensions["wxbot.engine"], time.time, zone("Asia/Shanghai"))
    started = time.perf_counter()
    for _ in range(20_000):
        counters.add(["messages", "answered"])
        counters.maybe_flush()
    cost = (time.perf_counter() - started) / 20_000 * 1e6
    print(f"daily counters alone: {cost:.1f} µs per message (batched writes included)")


def bench_pages(app, client) -> None:  # type: ignore[no-untyped-def]
    pages = [
        "/admin/",
        "/admin/unanswered",
        "/admin/unanswered?sort=grouped",
        "/admin/knowledge",
        "/admin/knowledge?q=" + "的",
        "/admin/knowledge?q=没有这个词xyz",
        "/admin/knowledge/1",
        "/admin/conversations",
        "/admin/conversations/o_u1",
        "/admin/synonyms",
        "/admin/learned",
        "/admin/llm",
        "/admin/flows",
        "/admin/knowledge/export?format=csv",
    ]
    for page in pages:
        times = []
        for _ in range(20 if "export" not in page else 3):
            started = time.perf_counter()
            resp = client.get(page)
            times.append((time.perf_counter() - started) * 1000)
            assert resp.status_code == 200, (page, resp.status_code)
        print(f"page {page}: median {statistics.median(times):.1f} ms")


def bench_upload(app, client, rows: list[tuple[str, str]]) -> None:  # type: ignore[no-untyped-def]
    from tests.console_helpers import csrf, wait_for_job

    data = csv_bytes(rows)
    started = time.perf_counter()
    form = {"csrf_token": csrf(client, "/admin/import"), "file": (io.BytesIO(data), "big.csv")}
    job = client.post("/admin/import", data=form, content_type="multipart/form-data")
    job = job.headers["Location"]
    wait_for_job(client, job, ("checked",))
    checked = time.perf_counter() - started
    client.post(job + "/commit", data={"csrf_token": csrf(client, job)})
    state = wait_for_job(client, job, ("done", "failed"))
    done = time.perf_counter() - started - checked
    print(
        f"upload of {len(rows)} rows ({len(data) / 1e6:.1f} MB): checked in {checked:.1f} s, "
        f"imported in {done:.1f} s ({state['status']}, {state['done']} rows written)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "mysql"), default="sqlite")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=4000)
    args = parser.parse_args()

    from tests.console_helpers import ADMIN_TOKEN, login
    from tests.helpers import text
    from wxbot import create_app
    from wxbot.migrations.schema import upgrade
    from wxbot.qa.formats import parse_bytes
    from wxbot.qa.importer import import_parsed

    rows = synthetic(args.entries + 20_000)
    base, upload = rows[: args.entries], rows[args.entries :]
    with tempfile.TemporaryDirectory() as workdir:
        url, handle = database(args.db, workdir)
        try:
            app = create_app({"database_url": url, "admin_token": ADMIN_TOKEN})
            engine = app.extensions["wxbot.engine"]
            upgrade(engine)
            import_parsed(engine, [parse_bytes(csv_bytes(base), "base.csv")], now=time.time())
            bot = app.extensions["wxbot.bot"]
            questions = [q for q, _ in base[: args.messages // 2]]
            questions += [q + "吗" for q, _ in upload[: args.messages - len(questions)]]
            bench_messages(app, questions)
            for i in range(200):
                bot.handle(text(f"o_u{i}", f"未知问题{i}号"))
            client = app.test_client()
            login(client)
            print(f"{args.db}, {args.entries} entries:")
            bench_pages(app, client)
            bench_upload(app, client, upload)
            bot.close()
            engine.dispose()
        finally:
            drop(handle)


if __name__ == "__main__":
    main()
