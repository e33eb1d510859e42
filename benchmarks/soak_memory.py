"""Does one worker's memory stay bounded under weeks of real and hostile traffic?

Runs the real app in-process (create_app on a temporary SQLite database with the starter
knowledge) and sends it, through its WSGI callback, messages from ever-new users with
ever-new texts: questions with a novel tail, unknown questions, English, language commands,
stickers, pictures, events with made-up names, weather and music requests (their services
point at a closed local port, so the slow path runs and fails fast), flow triggers. Every
``--admin-every`` messages it also sends an admin-API request with a wrong token from an
ever-new client address. Every ``--every`` messages it prints the process's RSS (VmRSS of
/proc/self/status) and the size of every per-process container that could grow with traffic
(see tests/test_memory_bounds*.py for the bound of each): the figures should flatten.

    python benchmarks/soak_memory.py                       # 200,000 messages
    python benchmarks/soak_memory.py --messages 20000 --every 2000
    python benchmarks/soak_memory.py --tracemalloc          # + the lines that grew most

Messages go one at a time on one thread (a worker's memory, not its throughput, is the
subject), so no timing figures are printed.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import logging
import random
import sys
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import APPID, TOKEN, starter_questions  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402
from wxbot.wechat.simulator import WeChatSimulator  # noqa: E402

AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ADMIN_TOKEN = "soak-admin-token-right"
DEAD_SERVICE = "http://127.0.0.1:9"  # discard port: nothing listens, connections are refused
CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]  # the commonest block's first 3000
LATIN = "abcdefghijklmnopqrstuvwxyz"


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def answer_memo(kb: Any) -> Any:
    """The answer cache's Memo (kb.lookup is count_lookups' wrapper of cache_lookups')."""
    lookup = kb.lookup
    for _ in range(3):
        if hasattr(lookup, "memo"):
            return lookup.memo
        code = getattr(lookup, "__code__", None)
        if code is None or "lookup" not in code.co_freevars:
            return None
        lookup = lookup.__closure__[code.co_freevars.index("lookup")].cell_contents
    return None


def call(app: Any, method: str, path: str, **request: Any) -> int:
    """One request straight through the WSGI app, as gunicorn makes it (Flask's test client
    adds reference cycles of its own to every request); returns the status code."""
    environ = EnvironBuilder(path=path, method=method, **request).get_environ()
    status: list[str] = []
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    try:
        for _ in body:
            pass
    finally:
        getattr(body, "close", lambda: None)()
    return int(status[0].split()[0])


def metric_series() -> int:
    """Label sets of wxbot's Prometheus metrics (children of labelled metrics)."""
    from wxbot import metrics

    return sum(len(getattr(m, "_metrics", {}) or {}) for m in metrics._made.values())


def warning_registries() -> int:
    return sum(
        len(getattr(module, "__warningregistry__", {}) or {})
        for module in list(sys.modules.values())
    )


def sizes(app: Any) -> dict[str, int]:
    """The containers the audit looked at (tests/test_memory_bounds*.py), by name."""
    from wxbot.db import _committed_in_sql
    from wxbot.i18n import catalog

    ext = app.extensions
    bot = ext["wxbot.bot"]
    kb = bot.deps.kb
    services = bot.deps.services
    memo = answer_memo(kb)
    index = getattr(kb, "_index", None)
    gate = getattr(services.wechat_api, "gate", None) if services.wechat_api else None
    return {
        "answer_memo": len(memo) if memo is not None else -1,
        "trigger_memo": len(ext["wxbot.flows"].matcher._memo),
        "clock_samples": len(bot.wechat_clock._samples),
        "slow_jobs": len(bot.slow._jobs),
        "slow_queue": bot.slow._pool._tasks.qsize(),
        "stats_pending": len(bot.stats._pending),
        "stats_unsent": len(bot.stats._unsent),
        "kb_hits": len(kb.hits._hits),
        "index_docs": len(index._alive) if index is not None else -1,
        "weather_cache": len(services.weather.places._data) + len(services.weather.forecasts._data),
        "music_cache": len(services.music.cache._data),
        "api_alarms": len(gate._alarmed) if gate is not None else 0,
        "catalogs": len(catalog._catalogs),
        "metric_series": metric_series(),
        "committed_ids": len(_committed_in_sql),
        "sa_compiled": len(bot.engine._compiled_cache or {}),
        "loggers": len(logging.root.manager.loggerDict),
        "warn_registry": warning_registries(),
        "threads": threading.active_count(),
        "gc_objects": len(gc.get_objects()),
    }


def random_text(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choices(CJK, k=rng.randint(low, high)))


def random_words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(LATIN, k=rng.randint(2, 9))) for _ in range(n))


def messages(sim: WeChatSimulator, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Ever-new users (one message each) saying ever-new things."""
    questions = starter_questions()
    n = 0
    while True:
        n += 1
        openid = f"oSoak{n:012d}{rng.getrandbits(32):08x}"
        roll = rng.random()
        if roll < 0.40:  # a known question with a tail nobody wrote before
            text = f"{rng.choice(questions)}{random_text(rng, 1, 6)}"
        elif roll < 0.55:  # an unknown question
            text = random_text(rng, 4, 30)
        elif roll < 0.63:  # English (detected: the user's language changes)
            text = random_words(rng, rng.randint(3, 8))
        elif roll < 0.66:  # a language command, known or not
            text = f"语言 {rng.choice(['en', 'th', 'ja', 'tl', 'zh', random_words(rng, 1)])}"
        elif roll < 0.70:  # a flow trigger with a value
            text = f"我要查充值 {rng.randint(10**17, 10**18 - 1)}"
        elif roll < 0.74:  # weather: the slow path, against a dead service
            text = f"天气 {random_text(rng, 2, 4)}"
        elif roll < 0.77:  # music, likewise
            text = f"点歌 {random_text(rng, 2, 6)}"
        elif roll < 0.80:
            yield sim.text(rng.choice(["/::)", "[Smile]", "👍👍", "[微笑]"]), openid)
            continue
        elif roll < 0.84:
            yield sim.image(openid, media_id=f"m{n}")
            continue
        elif roll < 0.86:
            yield sim.voice(random_text(rng, 0, 8), openid)
            continue
        elif roll < 0.88:
            yield sim.location(rng.uniform(-80, 80), rng.uniform(-170, 170), "", openid)
            continue
        elif roll < 0.93:  # events WeChat never sends, each name new (a forged delivery)
            name = f"evt_{rng.getrandbits(40):010x}"
            yield sim.event(name, random_words(rng, 1), openid)
            continue
        elif roll < 0.96:
            yield sim.event("CLICK", f"KEY_{rng.getrandbits(32):x}", openid)
            continue
        elif roll < 0.98:
            yield sim.event("subscribe", "", openid)
            continue
        else:
            yield sim.event("unsubscribe", "", openid)
            continue
        yield sim.text(text, openid)


def client_addresses(rng: random.Random) -> Iterator[str]:
    """Ever-new client addresses: IPv4 and IPv6 (an attacker's /64 holds 2^64 of them)."""
    base = int(ipaddress.IPv6Address("2001:db8::"))
    while True:
        if rng.random() < 0.5:
            yield str(ipaddress.IPv4Address(rng.getrandbits(32)))
        else:
            yield str(ipaddress.IPv6Address(base + rng.getrandbits(64)))


def stored_rows(app: Any, table: str) -> int:
    from sqlalchemy import table as sql_table

    with app.extensions["wxbot.engine"].connect() as conn:
        return int(conn.execute(select(func.count()).select_from(sql_table(table))).scalar_one())


def run(args: argparse.Namespace, report: Callable[[str], None] = print) -> None:
    rng = random.Random(args.seed)
    logging.disable(logging.WARNING)  # a dead service logs per message: not what is measured
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/soak.sqlite3"
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        config = {
            "database_url": url,
            "token": TOKEN,
            "appid": APPID,
            "encoding_aes_key": AES_KEY if args.mode != "plain" else None,
            "admin_token": ADMIN_TOKEN,
            "max_sessions": 10**9,  # every new user is served, none refused as busy
            "weather_url": DEAD_SERVICE,
            "geocoding_url": DEAD_SERVICE,
            "music_url": DEAD_SERVICE,
            "connect_timeout": 0.2,
        }
        app = create_app(config)
        runner = app.test_cli_runner()
        from wxbot.qa.cli import kb as kb_cli

        result = runner.invoke(kb_cli, ["import", str(ROOT / "knowledge" / "faq.txt")])
        assert result.exit_code == 0, result.output
        sim = WeChatSimulator(TOKEN, APPID, AES_KEY if args.mode != "plain" else None, args.mode)
        addresses = client_addresses(rng)
        stream = messages(sim, rng)
        if args.tracemalloc:
            tracemalloc.start(10)
        snapshot = None
        statuses: dict[int, int] = {}
        columns: list[str] = []
        for n in range(1, args.messages + 1):
            params, body = sim.sign(next(stream))
            status = call(
                app,
                "POST",
                "/wechat",
                query_string=params,
                data=body.encode(),
                content_type="text/xml",
                environ_base={"REMOTE_ADDR": "127.0.0.1"},
            )
            statuses[status] = statuses.get(status, 0) + 1
            if n % args.admin_every == 0:
                path = rng.choice(["/admin/api/stats", "/admin/api/knowledge", "/admin/"])
                status = call(
                    app,
                    "GET",
                    path,
                    headers={"Authorization": f"Bearer wrong-{rng.getrandbits(48):x}"},
                    environ_base={"REMOTE_ADDR": next(addresses)},
                )
                statuses[status] = statuses.get(status, 0) + 1
            if n == args.warmup or (n > args.warmup and n % args.every == 0):
                collected = gc.collect()
                figures = sizes(app)
                figures["gc_cycles"] = collected
                figures["failure_rows"] = stored_rows(app, "console_login_failures")
                if not columns:
                    columns = list(figures)
                    report("messages  rss_mib  " + "  ".join(columns))
                line = f"{n:>8}  {rss_kib() / 1024:7.1f}  " + "  ".join(
                    f"{figures[c]:>{len(c)}}" for c in columns
                )
                report(line)
                if args.tracemalloc:
                    current = tracemalloc.take_snapshot().filter_traces(
                        [tracemalloc.Filter(False, tracemalloc.__file__)]
                    )
                    if snapshot is not None:
                        for stat in current.compare_to(snapshot, "lineno")[:5]:
                            report(f"          {stat}")
                    snapshot = current
        report(f"HTTP statuses: {dict(sorted(statuses.items()))}")
        app.extensions["wxbot.bot"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--every", type=int, default=10_000, help="print sizes this often")
    parser.add_argument("--warmup", type=int, default=1_000, help="first line after this many")
    parser.add_argument("--admin-every", type=int, default=10, help="a wrong-token admin request")
    parser.add_argument("--mode", default="safe", choices=["plain", "compat", "safe"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tracemalloc", action="store_true", help="print what grew most")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
