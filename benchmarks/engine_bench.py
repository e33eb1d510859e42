"""Throughput, latency and SQL cost of the message path, end to end over HTTP.

Starts gunicorn (``wsgi:app``) on a fresh database, plays N concurrent WeChat users (safe
mode: signed, AES-encrypted, replies verified and decrypted) and prints messages/second and
p50/p99 latency, then counts the SQL round trips one plain question costs in-process.

    python benchmarks/engine_bench.py --db sqlite --users 50 --messages 20
    python benchmarks/engine_bench.py --db mysql --workers 2 --threads 8

The load generator runs on the same 2-core machine as the server, so absolute figures are
a floor for what a dedicated server would do.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import sql_sent  # noqa: E402
from tests.processes import free_port  # noqa: E402
from wxbot import create_app  # noqa: E402
from wxbot.messages.inbound import Inbound  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402
from wxbot.wechat.simulator import WeChatSimulator  # noqa: E402

TOKEN, APPID = "bench-token", "wxbench000000000"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
MYSQL_SERVER = os.environ.get("WXBOT_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


@contextmanager
def fresh_database(kind: str):  # type: ignore[no-untyped-def]
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        return
    name = f"wxbot_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(MYSQL_SERVER)
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield MYSQL_SERVER.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))


@contextmanager
def gunicorn(url: str, workers: int, threads: int, worker_class: str = "gthread"):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "WXBOT_DATABASE_URL": url,
        "WXBOT_TOKEN": TOKEN,
        "WXBOT_APPID": APPID,
        "WXBOT_ENCODING_AES_KEY": AES_KEY,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            str(workers),
            "-k",
            worker_class,
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    gunicorn.pid = proc.pid  # type: ignore[attr-defined]
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:  # not listening yet, or still starting
                time.sleep(0.1)
        yield base + "/wechat"
    finally:
        proc.terminate()
        proc.wait(10)


def starter_questions() -> list[str]:
    """The first question of each entry in the starter FAQ: every benchmark message is a
    plain question the knowledge base answers."""
    questions, previous = [], ""
    for line in (ROOT / "knowledge" / "faq.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("Q:") and not previous.startswith("Q:"):
            questions.append(line[2:].strip())
        previous = line
    return questions


def load_starter_knowledge(url: str) -> None:
    from wxbot.qa.cli import kb

    app = create_app({"database_url": url, "token": TOKEN, "appid": APPID})
    result = app.test_cli_runner().invoke(kb, ["import", str(ROOT / "knowledge" / "faq.txt")])
    assert result.exit_code == 0, result.output
    app.extensions["wxbot.bot"].close()


def _client(job: tuple[str, list[int], int, int]) -> tuple[list[float], int]:
    """One load-generator process: its users' requests are signed and encrypted up front
    (as WeChat would have done), then sent over keep-alive connections, one thread per
    user at a time. Every reply must be an encrypted envelope; each user's first reply is
    fully verified and decrypted."""
    url, users, messages, threads = job
    parsed = urlsplit(url)
    sim = WeChatSimulator(TOKEN, APPID, AES_KEY, mode="safe")
    questions = starter_questions()
    prepared: dict[int, list[tuple[str, bytes, dict]]] = {}
    for n in users:
        prepared[n] = []
        for i in range(messages):
            message = sim.text(questions[(n * messages + i) % len(questions)], f"o_bench_{n:05d}")
            params, body = sim.sign(message)
            prepared[n].append((parsed.path + "?" + urlencode(params), body.encode(), message))
    checked = 0

    def user(n: int) -> list[float]:
        nonlocal checked
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        own = []
        for i, (path, body, message) in enumerate(prepared[n]):
            started = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "text/xml"})
            response = conn.getresponse()
            text = response.read().decode()
            own.append(time.perf_counter() - started)
            if response.status != 200 or "<Encrypt>" not in text:
                raise RuntimeError(f"bad answer {response.status}: {text[:200]}")
            if i == 0:
                reply = sim.read_reply(text, message)
                assert reply.kind == "text", reply
                checked += 1
        conn.close()
        return own

    with ThreadPoolExecutor(threads) as pool:
        latencies = [x for own in pool.map(user, users) for x in own]
    return latencies, checked


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def server_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def mariadb_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def drive(
    url: str, users: int, messages: int, concurrency: int, processes: int = 2
) -> tuple[float, list[float]]:
    """Send users x messages with ``concurrency`` users in flight, spread over processes."""
    jobs = [
        (url, list(range(p, users, processes)), messages, max(1, concurrency // processes))
        for p in range(processes)
    ]
    with ProcessPoolExecutor(processes) as pool:
        pool.submit(time.sleep, 0).result()  # start the processes before the clock does
        started = time.perf_counter()
        results = list(pool.map(_client, jobs))
    elapsed = time.perf_counter() - started
    latencies = [x for own, _ in results for x in own]
    assert sum(checked for _, checked in results) == users
    return elapsed, latencies


def round_trips(url: str) -> tuple[int, int]:
    """Round trips to the database (each command sent and answered, COMMIT included) for a
    brand-new user's first question and a known user's next question, counted in-process.
    On MySQL they are counted at the driver (a multi-statement query is one round trip);
    on SQLite, statements are counted (there is no network)."""
    app = create_app({"database_url": url, "token": TOKEN, "appid": APPID})
    bot = app.extensions["wxbot.bot"]

    def ask(openid: str, msg_id: str) -> int:
        with sql_sent(bot.engine, this_thread=True) as sent:
            bot.handle(
                Inbound(
                    openid=openid,
                    kind="text",
                    text=starter_questions()[0],
                    msg_id=msg_id,
                    dedup_key=f"{openid}:{msg_id}",
                )
            )
        return len([c for c in sent if not c.upper().startswith("BEGIN")])

    ask("o_rt_warm", "1")
    first = ask("o_rt_new", "2")
    known = ask("o_rt_new", "3")
    bot.close()
    return first, known


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "mysql"])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"])
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    args = parser.parse_args()
    with fresh_database(args.db) as url:
        engine = create_engine(url)
        upgrade(engine)
        engine.dispose()
        load_starter_knowledge(url)
        with gunicorn(url, args.workers, args.threads, args.worker_class) as endpoint:
            drive(endpoint, 4, 3, 4)  # warm-up: workers load jieba and the index
            app_pids = server_pids(gunicorn.pid)  # type: ignore[attr-defined]
            db_pids = mariadb_pids() if args.db == "mysql" else []
            app_cpu, db_cpu = cpu_seconds(app_pids), cpu_seconds(db_pids)
            elapsed, latencies = drive(
                endpoint, args.users, args.messages, args.concurrency, args.clients
            )
            app_cpu = cpu_seconds(app_pids) - app_cpu
            db_cpu = cpu_seconds(db_pids) - db_cpu
        first, known = round_trips(url)
    latencies.sort()
    n = len(latencies)
    print(f"database           {args.db}")
    print(
        f"server             gunicorn -w {args.workers} -k {args.worker_class} --threads {args.threads}, safe mode"
    )
    print(
        f"messages           {n} ({args.users} users x {args.messages}, {args.concurrency} concurrent)"
    )
    print(f"throughput         {n / elapsed:,.0f} messages/s")
    print(f"latency p50        {statistics.median(latencies) * 1000:.1f} ms")
    print(f"latency p99        {latencies[int(n * 0.99) - 1] * 1000:.1f} ms")
    per_message = (app_cpu + db_cpu) / n
    print(
        f"server CPU         {app_cpu / n * 1000:.2f} ms/message in wxbot workers"
        + (f" + {db_cpu / n * 1000:.2f} ms in MariaDB" if db_pids else "")
        + f" (capacity of a dedicated {os.cpu_count()}-core box: "
        + f"~{(os.cpu_count() or 1) / per_message:,.0f} messages/s)"
    )
    print(f"SQL round trips    {known} for a known user's question, {first} for a new user's first")


if __name__ == "__main__":
    main()
