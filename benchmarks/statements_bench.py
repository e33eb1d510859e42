"""The database work of one message alone, wxbot's and WeRoBot's, side by side on one MariaDB.

No HTTP, no XML, no dialogue: each thread plays known users' plain questions against the
database only, through the real code of each.

- **wxbot**: the message path's own statements (``wxbot.dialog.locked.MessageStatements``,
  as ``Bot`` builds them, with the knowledge version, language and history window read
  after the lock): lock the user's row and read the dedup record and the extras (one round
  trip), then insert the dedup record, save the context and COMMIT (one round trip).
- **wxbot, no dedup**: the same without the dedup record (lock, extras, save, COMMIT): what
  keeping the dedup record in its own table costs.
- **WeRoBot 1.13.1**: ``MySQLStorage.get`` and ``.set`` on an autocommit PyMySQL connection,
  as benchmarks/werobot_app.py serves it (no lock, no dedup).

It prints, per message, the CPU of the client (this process: PyMySQL, SQLAlchemy's
connection handling) and of MariaDB, rounds alternating so both see the same box, and the
ratios. Where the side-by-side's gap that the database explains comes from.

    pip install -e '.[bench]'
    python benchmarks/statements_bench.py [--rounds 3] [--messages 4000] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import cpu_seconds, fresh_database, mariadb_pids  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.db import committed_in_sql, transaction  # noqa: E402
from wxbot.dialog.context import saved_values  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402

USERS = 200
HISTORY = [["user", "信用卡怎么申请"], ["bot", "您可以在手机银行申请信用卡。" * 3]] * 3
REPLY = json.dumps({"type": "text", "content": "您可以在手机银行申请信用卡。" * 3})

Step = Callable[[Any, str, int], None]  # (connection, openid, n)


def wxbot_steps(url: str) -> tuple[Any, Step, Step]:
    """The engine's statements of a known user's plain question, with and without dedup."""
    app = create_app({"database_url": url}, load_knowledge=False)
    bot = app.extensions["wxbot.bot"]
    statements, engine = bot.statements, bot.engine
    with transaction(engine) as conn:  # known users: their contexts exist
        for i in range(USERS):
            locked = statements.create_and_lock(conn, f"u{i}", "seed", 0.0, 600.0, count=False)
            assert locked.ctx is not None

    def message(conn: Any, openid: str, n: int, dedup: bool = True) -> None:
        with transaction(engine) as tx:
            locked = statements.lock(tx, openid, uuid.uuid4().hex)
            ctx = locked.ctx
            assert ctx is not None and locked.seen is None
            ctx.history = HISTORY
            now = time.time()
            if dedup:
                statements.finish_and_commit(tx, ctx, now, 600.0, uuid.uuid4().hex, REPLY, "done")
            else:  # finish_and_commit's statements less the dedup record's INSERT
                ctx.version += 1
                values = saved_values(ctx, now, 600.0)
                save = (*[values[c] for c in statements._saved], ctx.openid)
                statements._run(tx, [(statements._save, save), ("COMMIT", ())])
                committed_in_sql(tx)

    return engine, message, lambda c, o, n: message(c, o, n, dedup=False)


def werobot_step(url: str) -> Callable[[], Any]:
    """WeRoBot's session storage on its own autocommit connection per thread."""
    from werobot.session.mysqlstorage import MySQLStorage

    parts = make_url(url)

    def connect() -> Any:
        conn = pymysql.connect(
            host=parts.host,
            port=parts.port or 3306,
            user=parts.username,
            database=parts.database,
            charset="utf8mb4",
            autocommit=True,
        )
        return MySQLStorage(conn)

    return connect


def run(threads: int, messages: int, setup: Callable[[], Any], step: Step) -> tuple[float, float]:
    """(client CPU ms, MariaDB CPU ms) per message, ``threads`` at once."""
    counter = iter(range(messages))
    lock = threading.Lock()

    def worker() -> None:
        handle = setup()
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            step(handle, f"u{n % USERS}", n)

    before = resource.getrusage(resource.RUSAGE_SELF)
    server_before = cpu_seconds(mariadb_pids())
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    server = cpu_seconds(mariadb_pids()) - server_before
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return client / messages * 1000, server / messages * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with fresh_database("mysql") as wx_url, fresh_database("mysql") as wr_url:
        upgrade(create_engine(wx_url))
        engine, with_dedup, without_dedup = wxbot_steps(wx_url)
        connect = werobot_step(wr_url)
        storage = connect()
        for i in range(USERS):
            storage.set(f"u{i}", {"history": HISTORY})

        def werobot(store: Any, openid: str, _n: int) -> None:
            session = store.get(openid)
            session["history"] = HISTORY
            store.set(openid, session)

        variants: list[tuple[str, Callable[[], Any], Step]] = [
            ("wxbot", lambda: None, with_dedup),
            ("wxbot, no dedup", lambda: None, without_dedup),
            ("WeRoBot", connect, werobot),
        ]
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in variants}
        for _ in range(args.rounds):
            for name, setup, step in variants:
                figures[name].append(run(args.threads, args.messages, setup, step))
        engine.dispose()
    print(f"{args.threads} threads, {args.messages} messages a round, {args.rounds} rounds")
    print("per message, ms of CPU        client       MariaDB      total")
    totals = {}
    for name, runs in figures.items():
        client = [c for c, _ in runs]
        server = [s for _, s in runs]
        total = [c + s for c, s in runs]
        totals[name] = statistics.median(total)
        print(
            f"{name:<24} {min(client):.3f}–{max(client):.3f}  "
            f"{min(server):.3f}–{max(server):.3f}  {min(total):.3f}–{max(total):.3f}"
        )
    peer = totals["WeRoBot"]
    for name in ("wxbot", "wxbot, no dedup"):
        print(f"CPU per message, {name} / WeRoBot (medians): {totals[name] / peer:.2f}×")


if __name__ == "__main__":
    main()
