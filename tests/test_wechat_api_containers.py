"""The access_token as a multi-container deployment lives it: real processes, each with its
own in-memory copy, sharing one token through the database (SQLite and MariaDB)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import insert

from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from wxbot.messages.replies import Text
from wxbot.services.models import WeChatToken
from wxbot.services.wechat_api import WeChatApi

ROOT = Path(__file__).resolve().parent.parent

# A container: its own WeChatApi (own memory, own locks), driven line by line on stdin.
_CONTAINER = """
import sys
from wxbot.db import make_engine
from wxbot.messages.replies import Text
from wxbot.services.wechat_api import WeChatApi
api = WeChatApi(sys.argv[1], sys.argv[2], sys.argv[3], make_engine(sys.argv[4]), 10.0)
print("ready", flush=True)
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "token":
        print(api.access_token(), flush=True)
    elif command == "send":
        print(api.send("user-1", Text(arg)), flush=True)
"""


class Container:
    def __init__(self, fake: FakeApis, db_url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CONTAINER, APPID, APPSECRET, fake.url, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def ready(self) -> None:
        assert self.readline() == "ready"

    def ask(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def __call__(self, command: str) -> str:
        self.ask(command)
        return self.readline()


@contextmanager
def containers(fake: FakeApis, db_url: str, n: int) -> Iterator[list[Container]]:
    started = [Container(fake, db_url) for _ in range(n)]
    try:
        for container in started:
            container.ready()
        yield started
    finally:
        for container in started:
            container.process.kill()
            container.process.communicate(timeout=10)


def test_processes_whose_token_expires_at_once_fetch_one_not_one_each(  # type: ignore[no-untyped-def]
    db_url, make_app, fake_apis
) -> None:
    app = make_app()
    with app.extensions["wxbot.engine"].begin() as conn:  # a token that expired a second ago
        conn.execute(
            insert(WeChatToken.__table__).values(
                appid=APPID, access_token="OLD", expires_at=time.time() - 1, updated_at=0.0
            )
        )
    with containers(fake_apis, db_url, 3) as running:
        fake_apis.hold("token")
        running[0].ask("token")
        fake_apis.wait_entered("token")  # the first is fetching; the others come meanwhile
        for container in running[1:]:
            container.ask("token")
        time.sleep(0.3)  # let them reach the lock (no assertion depends on this timing)
        fake_apis.release("token")
        assert [container.readline() for container in running] == ["TOKEN-1"] * 3
    assert fake_apis.hits["token"] == 1
    assert [body["force_refresh"] for route, _, body in fake_apis.requests] == [False]


def test_a_token_wechat_rejects_is_renewed_once_for_every_process(  # type: ignore[no-untyped-def]
    db_url, make_app, fake_apis
) -> None:
    app = make_app()
    here = WeChatApi(APPID, APPSECRET, fake_apis.url, app.extensions["wxbot.engine"], 10.0)
    with containers(fake_apis, db_url, 2) as (first, second):
        assert here.access_token() == "TOKEN-1"
        assert first("token") == second("token") == "TOKEN-1"  # from the database
        fake_apis.revoked.add("TOKEN-1")  # WeChat invalidates it early
        assert here.send("user-1", Text("here")) is True  # rejected: one forced refresh
        assert first("send one") == "True"  # rejected too: takes TOKEN-2 from the database
        assert second("send two") == "True"
    assert fake_apis.tokens == ["TOKEN-1", "TOKEN-2"]
    assert [body["force_refresh"] for route, _, body in fake_apis.requests if route == "token"] == [
        False,
        True,
    ]
    assert [m["text"]["content"] for m in fake_apis.pushed] == ["here", "one", "two"]
