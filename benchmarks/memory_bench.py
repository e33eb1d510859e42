"""What the per-user memory costs a plain question, and what the LLM path costs the server.

In-process, one thread, one database: the same engine with and without the memory (the
window riding along the context lock, the history surviving expiry), asked the same known
users' questions one message each in turn, so the machine's noise hits both alike. Prints
per-message medians (wall clock and this process's CPU) and their ratios, database commands
per message (MySQL: round trips), then the server-side time and commands of a question the
LLM answers (a local fake answering at once).

    python benchmarks/memory_bench.py --db sqlite
    python benchmarks/memory_bench.py --db mysql --messages 3000
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import fresh_database, load_starter_knowledge, starter_questions  # noqa: E402
from tests.fakellm import FakeLlm  # noqa: E402
from tests.helpers import sql_sent  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.dialog.engine import Bot  # noqa: E402
from wxbot.dialog.flow import Deps  # noqa: E402
from wxbot.messages.inbound import Inbound  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402

_ids = itertools.count(1)


def message(openid: str, text: str) -> Inbound:
    n = next(_ids)
    return Inbound(openid=openid, kind="text", text=text, msg_id=str(n), dedup_key=f"{openid}:{n}")


def per_message(bot: Bot, users: list[str], questions: list[str], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        bot.handle(message(users[i % len(users)], questions[i % len(questions)]))
    return (time.perf_counter() - started) / count


def interleaved(
    bots: dict[str, Bot], users: dict[str, list[str]], questions: list[str], count: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Each engine answers one message in turn: (wall, CPU) seconds of every message."""
    times: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in bots}
    order = list(bots.items())
    for i in range(count):
        for name, bot in order if i % 2 else reversed(order):  # neither always goes first
            msg = message(users[name][i % len(users[name])], questions[i % len(questions)])
            wall, cpu = time.perf_counter(), time.process_time()
            bot.handle(msg)
            times[name][0].append(time.perf_counter() - wall)
            times[name][1].append(time.process_time() - cpu)
    return times


def statements(bot: Bot, openid: str, text: str) -> int:
    """Commands sent to the database, COMMIT included (MySQL: round trips), by a user at
    WAIT_QUERY (not inside a flow a starter question began), with nothing batched due."""
    bot.handle(message(openid, "取消"))
    bot.stats.flush()
    bot.deps.kb.flush_hits_now()
    with sql_sent(bot.engine, this_thread=True) as sent:
        bot.handle(message(openid, text))
    return len([c for c in sent if not c.upper().startswith("BEGIN")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "mysql"])
    parser.add_argument("--messages", type=int, default=2000, help="per engine")
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    fake = FakeLlm().start()
    with fresh_database(args.db) as url:
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        load_starter_knowledge(url)
        app = create_app({**fake.settings(llm_rate=0, llm_daily_tokens=0), "database_url": url})
        with_memory = app.extensions["wxbot.bot"]
        settings = with_memory.settings
        # the same dialogue table (business flows included): only the memory differs
        without = Bot(
            with_memory.engine,
            settings,
            Deps(settings, kb=with_memory.deps.kb),
            table=with_memory.table,
        )
        questions = starter_questions()
        bots = {"without memory": without, "with memory": with_memory}
        users = {name: [f"o_{i}_{n}" for n in range(args.users)] for i, name in enumerate(bots)}
        for name, bot in bots.items():  # warm-up: users exist, histories full
            per_message(bot, users[name], questions, args.users * 12)
        times = interleaved(bots, users, questions, args.messages)
        sql = {name: statements(bot, users[name][0], questions[0]) for name, bot in bots.items()}
        llm_sql = statements(with_memory, users["with memory"][0], "给我讲一个关于猫的故事吧")
        llm_time = statistics.median(
            per_message(with_memory, [f"o_llm_{i}"], [f"随便聊聊第{i}件事"], 1) for i in range(50)
        )
        without.close()
        with_memory.close()
    fake.stop()
    print(f"database                 {args.db}")
    print(f"knowledge-base answers   {args.messages} messages per engine, interleaved one by one")
    medians = {}
    for name in bots:
        wall, cpu = times[name]
        medians[name] = (statistics.median(wall), statistics.median(cpu))
        print(
            f"  {name:<22} wall p50 {medians[name][0] * 1000:.2f} ms, "
            f"p90 {sorted(wall)[int(len(wall) * 0.9)] * 1000:.2f} ms; "
            f"CPU p50 {medians[name][1] * 1000:.2f} ms; {sql[name]} database commands"
        )
    (plain_wall, plain_cpu), (memory_wall, memory_cpu) = medians.values()
    print(
        f"  ratio with/without     wall {memory_wall / plain_wall:.3f}, "
        f"CPU {memory_cpu / plain_cpu:.3f}"
    )
    print(
        f"LLM answer (fake, instant) {llm_time * 1000:.1f} ms server-side incl. the HTTP call, "
        f"{llm_sql} database commands in all (both transactions, after-commit writes)"
    )


if __name__ == "__main__":
    main()
