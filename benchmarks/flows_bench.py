"""What business flows and languages cost a plain question: the engine in-process, one
thread, SQLite, the same questions with and without the shipped flow files, side by side.

    .venv/bin/python benchmarks/flows_bench.py [--messages 3000]

Prints µs per message for both and their ratio, and the trigger matcher alone.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from wxbot import create_app
from wxbot.flows import load_flows
from wxbot.flows.runner import FlowRunner
from wxbot.messages.inbound import Inbound
from wxbot.migrations.schema import upgrade

QUESTIONS = [
    "你们的营业时间是几点",
    "怎么修改收货地址",
    "How do I reset my password",
    "发票怎么开",
    "会员有什么权益吗",
    "退货运费谁承担",
]


def run(flows_dir: str, messages: int, users: int = 50) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"database_url": f"sqlite:///{tmp}/b.sqlite3", "flows_dir": flows_dir})
        upgrade(app.extensions["wxbot.engine"])
        bot = app.extensions["wxbot.bot"]
        ids = itertools.count()
        questions = itertools.cycle(QUESTIONS)

        def one() -> None:
            n = next(ids)
            bot.handle(
                Inbound(
                    openid=f"u{n % users}",
                    kind="text",
                    text=next(questions),
                    msg_id=str(n),
                    dedup_key=f"k{n}",
                )
            )

        for _ in range(200):  # warm up: contexts exist, caches are hot
            one()
        started = time.perf_counter()
        for _ in range(messages):
            one()
        elapsed = time.perf_counter() - started
        bot.close()
        return elapsed / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as empty:
        without = run(empty, args.messages)
    shipped = str(Path(__file__).resolve().parent.parent / "knowledge" / "flows")
    with_flows = run(shipped, args.messages)
    print(f"plain question, no flow files:      {without:7.0f} µs/message")
    print(f"plain question, shipped flow files: {with_flows:7.0f} µs/message")
    print(f"ratio (with / without):             {with_flows / without:7.2f}")
    matcher = FlowRunner(load_flows(shipped).flows).matcher
    matcher.match("预热")
    started = time.perf_counter()
    for question in QUESTIONS * 500:
        matcher.match(question)
    per = (time.perf_counter() - started) / (len(QUESTIONS) * 500) * 1e6
    print(f"trigger matching alone:             {per:7.0f} µs/message")


if __name__ == "__main__":
    main()
