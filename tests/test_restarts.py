"""Restarts and roll-outs: a real `wxbot serve` is stopped (SIGTERM: docker stop, Kubernetes,
systemd; SIGINT: Ctrl-C) or reloaded (SIGHUP) while slow work is under way, and what its
users then receive is checked through the WeChat callback.

Two users were told 「还在处理中」 (WeChat's last delivery came before their LLM answers):
- one answer arrives a few seconds after the signal: the stopping worker lets it finish and
  keeps it for the user's next message;
- one answer never arrives: the worker gives up on it after its bounded drain (well inside a
  container's usual 30 s stop grace period), says so in its log, and the user's next message
  begins with the apology. Before, gunicorn SIGKILLed the worker with the work, and the user
  got nothing, then 「抱歉，你上一个请求没能处理完」 five minutes later.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.fakellm import FakeLlm
from tests.processes import (
    APPID,
    TOKEN,
    free_port,
    post_text,
    reply_content,
    signed_params,
    text_body,
)
from wxbot.db import make_engine
from wxbot.dialog import words
from wxbot.i18n import translate
from wxbot.migrations.schema import upgrade

STILL_WORKING = translate(words.STILL_WORKING, "zh")
APOLOGY = translate(words.APOLOGY, "zh")
LOST = translate(words.WORK_LOST, "zh")
LATE = translate(words.LATE_RESULT, "zh")
CONTAINER_GRACE = 30.0  # Kubernetes' default terminationGracePeriodSeconds
QUICK, STUCK = "快一点的问题", "卡住的问题"

_ids = itertools.count(9_100_000_000)


@pytest.fixture(params=["sqlite", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    url = (
        f"sqlite:///{tmp_path / 'restarts.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("mysql_database_url")
    )
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    """A fake LLM: QUICK is answered 8 s after it is asked, STUCK never (until the test ends)."""
    fake = FakeLlm()
    released = threading.Event()

    def answer(messages: list[dict[str, str]]) -> str:
        question = messages[-1]["content"]
        if STUCK in question:
            released.wait(120)
        elif QUICK in question:
            time.sleep(8)
        return f"LLM答：{question[-12:]}"

    fake.answer = answer
    fake.start()
    yield fake
    released.set()
    fake.stop()


@contextmanager
def wxbot_serve(database_url: str, log: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:  # type: ignore[type-arg]
    """One `wxbot serve` (one worker) with its log in ``log``; yields (/wechat URL, process)."""
    port = free_port()
    environment = {
        **os.environ,
        "WXBOT_DATABASE_URL": database_url,
        "WXBOT_TOKEN": TOKEN,
        "WXBOT_APPID": APPID,
        **env,
    }
    environment.pop("WXBOT_ENCODING_AES_KEY", None)
    command = [sys.executable, "-c", "from wxbot.cli import main; main()", "serve"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "1"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url + "/wechat", proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"wxbot serve exited with {proc.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


def workers_of(proc: subprocess.Popen) -> set[int]:  # type: ignore[type-arg]
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return {int(pid) for pid in children}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(")", 1)[1].split()[0] != "Z"  # a zombie has exited


def last_delivery(url: str, openid: str, question: str) -> str:
    """WeChat's third delivery of a message (its CreateTime 10 s old): slow work not done
    within the reply deadline is answered 「还在处理中」 and its result kept for later."""
    body = text_body(openid, question, next(_ids), create_time=int(time.time()) - 10)
    response = requests.post(url, params=signed_params(), data=body, timeout=60)
    response.raise_for_status()
    return reply_content(response.text)


def _told_to_wait(url: str) -> None:
    """Both users are told 「还在处理中」 while their LLM answers are under way."""
    with_answers: dict[str, str] = {}

    def ask(openid: str, question: str) -> None:
        with_answers[openid] = last_delivery(url, openid, question)

    threads = [
        threading.Thread(target=ask, args=("o_quick", QUICK)),
        threading.Thread(target=ask, args=("o_stuck", STUCK)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert with_answers == {"o_quick": STILL_WORKING, "o_stuck": STILL_WORKING}


def _what_users_see_next(url: str) -> dict[str, str]:
    http = requests.Session()
    return {
        openid: post_text(http, url, openid, "你好", next(_ids))
        for openid in ("o_quick", "o_stuck")
    }


def _check_delivered(seen: dict[str, str]) -> None:
    quick, stuck = seen["o_quick"], seen["o_stuck"]
    # the answer that came back during the drain is delivered with the next message
    assert quick.startswith(LATE) and f"LLM答：{QUICK}" in quick, quick
    # the one that never came back is apologised for at once: not nothing, not 5 minutes later
    assert stuck.startswith(LATE) and APOLOGY in stuck, stuck
    assert LOST not in quick and LOST not in stuck


# SIGTERM on both databases; one is enough for the second signal (no skipped cases in CI)
@pytest.mark.parametrize(
    ("database", "signum"),
    [("sqlite", signal.SIGTERM), ("mysql", signal.SIGTERM), ("sqlite", signal.SIGINT)],
    ids=["sqlite-TERM", "mysql-TERM", "sqlite-INT"],
    indirect=["database"],
)
def test_a_stop_drains_slow_work_and_owns_up_to_what_it_could_not_finish(
    database: str, llm: FakeLlm, tmp_path: Path, signum: signal.Signals
) -> None:
    env = {**llm.env(), "WXBOT_LLM_RATE": "0", "WXBOT_LLM_TIMEOUT": "120"}
    log = tmp_path / "serve.log"
    with wxbot_serve(database, log, **env) as (url, proc):
        _told_to_wait(url)
        stopped = time.monotonic()
        proc.send_signal(signum)
        try:
            proc.wait(CONTAINER_GRACE + 30)
        except subprocess.TimeoutExpired:
            pytest.fail("wxbot serve did not stop")
        took = time.monotonic() - stopped
    assert proc.returncode == 0
    # inside the container's grace period: no SIGKILL from Docker/Kubernetes cuts it short
    assert took < CONTAINER_GRACE, took
    logged = log.read_text(errors="replace")
    assert "gave up on 1 slow job" in logged and "o_stuck" in logged, logged[-3000:]
    with wxbot_serve(database, tmp_path / "again.log", **env) as (url, _):
        _check_delivered(_what_users_see_next(url))


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the stop test covers MySQL
def test_a_reload_drains_the_old_worker_and_the_new_one_serves(
    database: str, llm: FakeLlm, tmp_path: Path
) -> None:
    env = {**llm.env(), "WXBOT_LLM_RATE": "0", "WXBOT_LLM_TIMEOUT": "120"}
    log = tmp_path / "serve.log"
    with wxbot_serve(database, log, **env) as (url, proc):
        _told_to_wait(url)
        (old,) = workers_of(proc)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + CONTAINER_GRACE + 30
        while _alive(old) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(old), "the old worker never finished draining"
        assert proc.poll() is None, "the master keeps serving"
        _check_delivered(_what_users_see_next(url))
    logged = log.read_text(errors="replace")
    assert "gave up on 1 slow job" in logged and "o_stuck" in logged, logged[-3000:]
