"""`wxbot serve` as an operator runs it: a reload (SIGHUP), listening addresses, gunicorn's
options that wxbot sets for it."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.processes import free_port, post_text, serve
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade

_ids = itertools.count(7_100_000_000)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'serve.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _messages_total(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("wxbot_messages_total{")
    )


def test_metrics_survive_a_reload(tmp_path: Path) -> None:
    """SIGHUP (README: gunicorn forks new workers and stops the old ones). The old worker's
    exit ran the master's atexit handler it inherited, which removed the multiprocess
    directory every worker writes to: /metrics answered 500 from then on."""
    with serve(_database(tmp_path), count=1, args=("--workers", "1")) as servers:
        url = servers[0]
        base = url.rsplit("/wechat", 1)[0]
        with requests.Session() as http:
            post_text(http, url, "o_reload", "你好", next(_ids))
        old = servers.workers(0)
        servers.procs[0].send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            now = servers.workers(0)
            if now and not set(now) & set(old):
                break
            assert time.monotonic() < deadline, "the reload did not replace the worker"
            time.sleep(0.1)
        with requests.Session() as http:
            post_text(http, url, "o_reload", "再问一次", next(_ids))
            scraped = http.get(base + "/metrics", timeout=10)
    assert scraped.status_code == 200
    assert _messages_total(scraped.text) == 2


def _wxbot(*args: str) -> list[str]:
    return [sys.executable, "-c", "from wxbot.cli import main; main()", *args]


def _environment(database: str, **env: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WXBOT_")}
    return {**environment, "WXBOT_DATABASE_URL": database, **env}


def test_a_port_in_use_is_one_line_before_the_app_loads(tmp_path: Path) -> None:
    """Two `wxbot serve` on one port: the second printed "wxbot listening on ...", loaded
    the app and the index, then gunicorn retried for five seconds of ERROR lines and
    ended with "Can't connect to ('127.0.0.1', 8000)"."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            _wxbot("serve", "--port", str(port)),
            env=_environment(_database(tmp_path)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "listening" not in done.stdout
    assert "Traceback" not in done.stderr and "Can't connect" not in done.stderr


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_serve_on_an_ipv6_address_with_an_unwritable_home(tmp_path: Path) -> None:
    """`--host ::1` (or `::`, every address of a dual-stack container) was handed to
    gunicorn as bind "::1:8000", which it refused: "Error: '' is not a valid port number."
    And with a $HOME it cannot write (a container's user), gunicorn's control socket, which
    wxbot does not use, logged "[ERROR] Control server error" at start and at every fork;
    two `wxbot serve` on one host took the one socket path from each other."""
    port = free_port()
    log = tmp_path / "serve.log"
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    environment = _environment(_database(tmp_path), HOME=str(home), XDG_RUNTIME_DIR="")
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            _wxbot("serve", "--host", "::1", "--port", str(port), "--workers", "1"),
            env=environment,
            stdout=subprocess.PIPE,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    health = requests.get(f"http://[::1]:{port}/healthz", timeout=2)
                    if health.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=30)
    assert f"listening on http://[::1]:{port}/wechat" in out.decode()
    assert "Control server error" not in log.read_text()
    assert "[ERROR]" not in log.read_text()


def test_a_metrics_directory_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR of the operator's own (prometheus-client's docs) that does
    not exist: wxbot served, and every scrape of /metrics was a 500 with a traceback."""
    missing = tmp_path / "no-such-dir"
    done = subprocess.run(
        _wxbot("serve", "--port", str(free_port())),
        env=_environment(_database(tmp_path), PROMETHEUS_MULTIPROC_DIR=str(missing)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"Error: PROMETHEUS_MULTIPROC_DIR='{missing}' is not a directory" in done.stderr
    assert "Traceback" not in done.stderr
