"""wxbot and WeRoBot side by side: one machine, one MariaDB, one question mix, safe mode.

Runs WeRoBot 1.13.1 (benchmarks/werobot_app.py: gunicorn sync workers, its MySQL session
storage, the starter FAQ as a dict) and then wxbot (`wxbot serve`: gunicorn, the starter FAQ
in its knowledge base, every message locking the user's row and deduplicated), each on a
fresh database, each driven by the same load generator (pre-signed, AES-encrypted WeChat
messages from N users, each user sending in turn). For each it prints the peak throughput
(a closed loop with C users in flight), then p50/p99 latency at 70 % of that peak (an open
loop at a fixed rate, latency counted from when each message was due), and the ratio.

    pip install -e '.[bench]'
    python benchmarks/side_by_side.py                       # both, defaults below
    python benchmarks/side_by_side.py --runs 3 --werobot-workers 4 --workers 2 --threads 4

The load generator shares the machine's cores with both servers, as in production tests
of a single box; the figures are for comparing the two, run after run.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.engine_bench import (  # noqa: E402
    AES_KEY,
    APPID,
    TOKEN,
    _client,
    cpu_seconds,
    fresh_database,
    load_starter_knowledge,
    mariadb_pids,
    round_trips,
    server_pids,
    starter_questions,
)
from tests.processes import free_port  # noqa: E402
from wxbot.migrations.schema import upgrade  # noqa: E402
from wxbot.wechat.simulator import WeChatSimulator  # noqa: E402


@contextmanager
def server(command: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    """Start a server command (with {port}), wait for it to answer, yield its /wechat URL."""
    port = free_port()
    proc = subprocess.Popen(
        [part.format(port=port) for part in command],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/wechat"
    server.pid = proc.pid  # type: ignore[attr-defined]
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
            try:
                requests.get(url, timeout=1)  # any HTTP answer: it is listening
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def peak(url: str, users: int, messages: int, concurrency: int, clients: int) -> float:
    """Closed loop: ``concurrency`` users in flight; messages per second."""
    jobs = [
        (url, list(range(p, users, clients)), messages, max(1, concurrency // clients))
        for p in range(clients)
    ]
    with ProcessPoolExecutor(clients) as pool:
        pool.submit(time.sleep, 0).result()
        started = time.perf_counter()
        results = list(pool.map(_client, jobs))
    elapsed = time.perf_counter() - started
    return sum(len(latencies) for latencies, _ in results) / elapsed


def _paced(job: tuple[str, int, list[int], int, float, float, int]) -> list[float]:
    """Open loop for one load-generator process: thread k of T sends its j-th message when
    it is due (start + (j * T_all + k_all) / rate); latency counts from that moment, so a
    server that falls behind is charged for the queue it builds."""
    url, offset, user_ids, count, rate, start, all_threads = job
    parsed = urlsplit(url)
    sim = WeChatSimulator(TOKEN, APPID, AES_KEY, mode="safe")
    questions = starter_questions()
    threads = len(user_ids)

    def user(k: int) -> list[float]:
        openid = f"o_paced_{user_ids[k]:05d}"
        prepared = []
        for j in range(count):
            message = sim.text(questions[(k + j) % len(questions)], openid)
            params, body = sim.sign(message)
            prepared.append((parsed.path + "?" + urlencode(params), body.encode()))
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        own = []
        for j, (path, body) in enumerate(prepared):
            due = start + (j * all_threads + offset + k) / rate
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            conn.request("POST", path, body, {"Content-Type": "text/xml"})
            response = conn.getresponse()
            text = response.read()
            if response.status != 200 or b"<Encrypt>" not in text:
                raise RuntimeError(f"bad answer {response.status}: {text[:200]!r}")
            own.append(time.time() - due)
        conn.close()
        return own

    with ThreadPoolExecutor(threads) as pool:
        return [x for own in pool.map(user, range(threads)) for x in own]


def at_rate(url: str, rate: float, seconds: float, threads: int, clients: int) -> list[float]:
    """Open loop at ``rate`` messages/s for about ``seconds``; the latencies."""
    per_thread = max(5, int(rate * seconds / threads))
    start = time.time() + 1.0
    per_client = threads // clients
    jobs = [
        (
            url,
            p * per_client,
            list(range(100_000 + p * per_client, 100_000 + (p + 1) * per_client)),
            per_thread,
            rate,
            start,
            per_client * clients,
        )
        for p in range(clients)
    ]
    with ProcessPoolExecutor(clients) as pool:
        return [x for lat in pool.map(_paced, jobs) for x in lat]


def measure(name: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    peak(url, 8, 3, 8, args.clients)  # warm-up: every worker has loaded and connected
    pids, db_pids = server_pids(server.pid), mariadb_pids()  # type: ignore[attr-defined]
    cpu_before = cpu_seconds(pids), cpu_seconds(db_pids)
    rates = [
        peak(url, args.users, args.messages, args.concurrency, args.clients)
        for _ in range(args.repeat)
    ]
    sent = args.users * args.messages * args.repeat
    app_cpu = (cpu_seconds(pids) - cpu_before[0]) / sent * 1000
    db_cpu = (cpu_seconds(db_pids) - cpu_before[1]) / sent * 1000
    best = max(rates)
    latencies = sorted(at_rate(url, best * 0.7, args.paced_seconds, 48, args.clients))
    n = len(latencies)
    figures = {
        "peak": best,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[max(0, int(n * 0.99) - 1)] * 1000,
        "cpu": app_cpu + db_cpu,
    }
    print(
        f"{name:8s} peak {best:7,.0f} msg/s | at 70% ({best * 0.7:,.0f} msg/s): "
        f"p50 {figures['p50']:6.1f} ms, p99 {figures['p99']:6.1f} ms | server CPU "
        f"{app_cpu:.2f} + MariaDB {db_cpu:.2f} ms/msg",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20, help="per user, per peak run")
    parser.add_argument("--concurrency", type=int, default=32, help="users in flight at peak")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--repeat", type=int, default=2, help="peak runs; the best counts")
    parser.add_argument("--paced-seconds", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=1, help="alternate the two this many times")
    parser.add_argument("--werobot-workers", type=int, default=4)
    parser.add_argument("--workers", type=int, help="wxbot serve --workers (its default)")
    parser.add_argument("--threads", type=int, help="wxbot serve --threads (its default)")
    parser.add_argument(
        "--driver",
        choices=("pymysql", "mysqldb"),
        default="pymysql",
        help="wxbot's MySQL driver (mysqldb: mysqlclient, the C driver, if installed)",
    )
    args = parser.parse_args()
    credentials = {"BENCH_TOKEN": TOKEN, "BENCH_APPID": APPID, "BENCH_AES_KEY": AES_KEY}
    wxbot_command = [sys.executable, "-c", "from wxbot.cli import main; main()"]
    wxbot_command += ["serve", "--port", "{port}"]
    if args.workers:
        wxbot_command += ["--workers", str(args.workers)]
    if args.threads:
        wxbot_command += ["--threads", str(args.threads)]
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for run in range(args.runs):
        print(f"run {run + 1}", flush=True)
        with fresh_database("mysql") as url:
            db = url.split("@", 1)[1].split("?")[0]  # host:port/name
            env = {
                **credentials,
                "WEROBOT_MYSQL": db,
                "BENCH_FAQ": str(ROOT / "knowledge" / "faq.txt"),
            }
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                str(args.werobot_workers),
                "-k",
                "sync",
                "-b",
                "127.0.0.1:{port}",
                "benchmarks.werobot_app:app",
            ]
            with server(command, env) as endpoint:
                theirs = measure("WeRoBot", endpoint, args)
        with fresh_database("mysql") as url:
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
            load_starter_knowledge(url)
            env = {
                "WXBOT_DATABASE_URL": url.replace("+pymysql", f"+{args.driver}", 1),
                "WXBOT_TOKEN": TOKEN,
                "WXBOT_APPID": APPID,
                "WXBOT_ENCODING_AES_KEY": AES_KEY,
            }
            with server(wxbot_command, env) as endpoint:
                ours = measure("wxbot", endpoint, args)
            if run == 0:
                first, known = round_trips(url)
        ratios.append(ours["peak"] / theirs["peak"])
        cpu_ratios.append(theirs["cpu"] / ours["cpu"])
        print(
            f"ratio    wxbot / WeRoBot: peak throughput {ratios[-1]:.2f}x, "
            f"messages per CPU-second (server + MariaDB) {cpu_ratios[-1]:.2f}x",
            flush=True,
        )
    if len(ratios) > 1:
        print(
            f"over {len(ratios)} runs: throughput {min(ratios):.2f}x - {max(ratios):.2f}x, "
            f"per CPU-second {min(cpu_ratios):.2f}x - {max(cpu_ratios):.2f}x"
        )
    print(f"wxbot round trips: {known} for a known user's question, {first} for a new user's")


if __name__ == "__main__":
    main()
