"""The customer-service push against WeChat's refusals, a slow or dead API, and hostile text:
each errcode gets its outcome (retry, give up on this message, or pause every push and tell
the operator once), a dead API costs one budget, and no secret reaches a log line."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import FakeClock
from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from wxbot.db import make_engine
from wxbot.messages.replies import Music, Text
from wxbot.migrations.schema import upgrade
from wxbot.services.budget import Budget
from wxbot.services.http import make_session, redact_url_secrets_in_logs, request_json
from wxbot.services.wechat_api import WeChatApi
from wxbot.services.wechat_errors import CONFIG_PAUSE, DOWN_PAUSE, next_beijing_midnight
from wxbot.services.wechat_messages import MAX_PARTS, TEXT_MAX_BYTES, text_parts

LOGGER = "wxbot.services.wechat_api"


@pytest.fixture(name="engine")
def engine_fixture(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """SQLite only: these tests are about WeChat's answers, not the token's storage (the
    token-sharing tests run on both databases)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'wxbot.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def api(fake: FakeApis, engine: Engine, clock: FakeClock, budget: float = 2.0) -> WeChatApi:
    return WeChatApi(APPID, APPSECRET, fake.url, engine, Budget(read=budget, connect=1.0), clock)


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


# --- a slow or dead API ---------------------------------------------------------------------


def test_a_hung_token_fetch_costs_each_push_one_budget_not_one_per_waiting_thread(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock
) -> None:
    # Was: the threads queued on the process's refresh lock and each, in turn, made its own
    # fetch of the full budget: the 16th late result of a burst waited 16 budgets (over 3
    # minutes at the default 12 s), holding a worker thread all along.
    wechat = api(fake_apis, engine, clock, budget=0.5)
    fake_apis.hold("token")
    started = time.monotonic()
    took: list[float] = []

    def push(n: int) -> None:
        assert wechat.send(f"user-{n}", Text("天气")) is False
        took.append(time.monotonic() - started)

    threads = [threading.Thread(target=push, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    fake_apis.release("token")
    assert len(took) == 4
    assert max(took) < 1.4, f"pushes took {sorted(took)} s with a 0.5 s budget"
    assert fake_apis.hits["token"] == 1  # one fetch tried, not one per waiting thread


def test_a_dead_api_is_tried_once_per_pause_not_once_per_push(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    wechat = api(fake_apis, engine, clock, budget=0.3)
    assert wechat.send("user-1", Text("one")) is True
    fake_apis.hold("send")  # WeChat stops answering
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    started = time.monotonic()
    assert wechat.send("user-2", Text("two")) is False  # waits its budget once
    assert [wechat.send(f"user-{n}", Text("x")) for n in range(3, 8)] == [False] * 5
    assert time.monotonic() - started < 1.5  # the five later pushes did not wait
    assert fake_apis.hits["send"] == 2
    assert len([m for m in records(caplog, logging.WARNING) if "paused" in m]) == 1
    fake_apis.release("send")
    clock.advance(DOWN_PAUSE)
    assert wechat.send("user-9", Text("back")) is True  # tried again after the pause
    assert records(caplog, logging.INFO)[-1].startswith("WeChat's API answers again")


# --- errcodes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "code", "explained"),
    [
        ("token", 40164, "IP白名单"),
        ("send", 40164, "IP白名单"),
        ("send", 48001, "no customer-service API"),
        ("token", 40125, "WXBOT_APPSECRET is wrong"),
        ("token", 40001, "WXBOT_APPSECRET is wrong"),  # from the token endpoint: the secret
    ],
)
def test_a_configuration_error_is_told_once_and_pauses_pushes(  # noqa: PLR0913
    fake_apis: FakeApis,
    engine: Engine,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    route: str,
    code: int,
    explained: str,
) -> None:
    # Was: one WARNING per late result ("custom/send to X refused: 40164 ..."), each one a
    # call to WeChat, and nothing telling the operator what to do.
    wechat = api(fake_apis, engine, clock)
    fake_apis.errcode_always[route] = code
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert [wechat.send(f"user-{n}", Text("x")) for n in range(5)] == [False] * 5
    errors = records(caplog, logging.ERROR)
    assert len(errors) == 1 and explained in errors[0] and str(code) in errors[0]
    assert not records(caplog, logging.WARNING)
    assert fake_apis.hits[route] == 1  # the other four were not sent
    del fake_apis.errcode_always[route]  # the operator fixes it
    clock.advance(CONFIG_PAUSE - 1)
    assert wechat.send("user-5", Text("x")) is False  # still paused
    clock.advance(1)
    assert wechat.send("user-6", Text("fixed")) is True
    assert fake_apis.pushed[-1]["text"]["content"] == "fixed"


def test_the_daily_quota_pauses_pushes_until_midnight_in_beijing(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.now = next_beijing_midnight(clock.now) - 3600  # 23:00 in Beijing
    wechat = api(fake_apis, engine, clock)
    fake_apis.errcodes["send"] = [45009]
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert wechat.send("user-1", Text("x")) is False
    clock.advance(3599)
    assert wechat.send("user-2", Text("x")) is False  # 23:59:59: still spent, not asked
    assert fake_apis.hits["send"] == 1
    assert len(records(caplog, logging.ERROR)) == 1
    clock.advance(1)
    assert wechat.send("user-3", Text("new day")) is True


def test_system_busy_is_retried_once_not_in_a_loop(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock
) -> None:
    # Was: -1 ("system busy, try again") gave up at once.
    wechat = api(fake_apis, engine, clock)
    fake_apis.errcodes["send"] = [-1]
    assert wechat.send("user-1", Text("x")) is True
    assert fake_apis.hits["send"] == 2
    fake_apis.errcodes["send"] = [-1, -1, -1]
    assert wechat.send("user-1", Text("y")) is False
    assert fake_apis.hits["send"] == 4
    fake_apis.errcodes["send"] = []
    assert wechat.send("user-1", Text("z")) is True  # busy pauses nothing


@pytest.mark.parametrize("code", [45015, 45047, 43004, 40003, 99999])
def test_a_refusal_about_one_message_gives_it_up_and_pauses_nothing(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock, code: int
) -> None:
    wechat = api(fake_apis, engine, clock)
    fake_apis.errcodes["send"] = [code]
    assert wechat.send("user-1", Text("x")) is False  # the engine keeps it for their next message
    assert fake_apis.hits["send"] == 1  # not retried
    assert wechat.send("user-2", Text("y")) is True  # the next user's push goes


def test_a_token_wechat_keeps_rejecting_is_forced_once_not_per_push(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock
) -> None:
    # Was: every push forced a new token (stable_token allows 20 forced refreshes a day,
    # and each one voids the token every other container is using).
    wechat = api(fake_apis, engine, clock)
    fake_apis.errcode_always["send"] = 40001
    assert [wechat.send(f"user-{n}", Text("x")) for n in range(5)] == [False] * 5
    forced = [body for route, _, body in fake_apis.requests if route == "token"]
    assert [body["force_refresh"] for body in forced] == [False, True]
    assert fake_apis.hits["send"] == 6  # 1 + 1 retry, then one try per push
    clock.advance(30)
    del fake_apis.errcode_always["send"]
    fake_apis.revoked.add(fake_apis.tokens[-1])
    assert wechat.send("user-6", Text("ok")) is True  # a later rejection is forced again
    assert fake_apis.requests[-2][2]["force_refresh"] is True


# --- message bodies ---------------------------------------------------------------------------


def test_a_text_too_long_for_one_message_is_pushed_as_several(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock
) -> None:
    # Was: pushed whole; WeChat refused it (45002) and the user got nothing pushed.
    wechat = api(fake_apis, engine, clock)
    lines = [f"第{n}行：北京市今天晴，最高5°C，最低-6°C 🌞" for n in range(120)]
    text = "\n".join(lines)
    assert len(text.encode()) > 2 * fake_apis.text_limit
    assert wechat.send("user-1", Text(text)) is True
    parts = [body["text"]["content"] for body in fake_apis.pushed]
    assert 3 <= len(parts) <= 4
    assert all(len(part.encode()) <= fake_apis.text_limit for part in parts)
    assert "\n".join(parts) == text  # cut at line breaks, nothing lost


def test_text_parts_split_on_characters_and_stop_at_wechats_push_limit() -> None:
    emoji = "😀" * 2000  # 8000 bytes, no line break: cut between characters
    parts = text_parts(emoji)
    assert [len(p.encode()) for p in parts] == [2048, 2048, 2048, 1856]
    assert "".join(parts) == emoji
    huge = "字" * 10_000  # 30000 bytes: more parts than WeChat lets us push
    parts = text_parts(huge)
    assert len(parts) == MAX_PARTS and parts[-1].endswith("…")
    assert all(len(p.encode()) <= TEXT_MAX_BYTES for p in parts)
    assert text_parts("短") == ["短"] and text_parts("") == []


def test_hostile_characters_reach_wechat_as_utf8_json(
    fake_apis: FakeApis, engine: Engine, clock: FakeClock
) -> None:
    wechat = api(fake_apis, engine, clock)
    text = 'a 😀 b ]]> c "quoted" \\ d \n e \t f <x>&amp; 中文'
    assert wechat.send("user-1", Text(text)) is True
    assert fake_apis.pushed[-1]["text"]["content"] == text
    raw = fake_apis.raw[-1]
    assert "😀".encode() in raw and "中文".encode() in raw and b"\\u" not in raw
    # Was: a lone surrogate (a webhook's JSON "\ud83d" without its pair) failed the
    # encoding and the push crashed with a traceback.
    assert wechat.send("user-1", Text("天气 \ud83d 晴")) is True
    assert fake_apis.pushed[-1]["text"]["content"] == "天气 \ufffd 晴"
    song = Music('晴天 "live"', "周杰伦 ]]>", "https://a.example/q.m4a?x=1&y=2", thumb_media_id="m")
    assert wechat.send("user-1", song) is True
    assert fake_apis.pushed[-1]["music"]["musicurl"] == "https://a.example/q.m4a?x=1&y=2"
    sent = fake_apis.hits["send"]
    assert wechat.send("user-1", Text("  \n")) is False  # WeChat refuses empty text (44004)
    assert fake_apis.hits["send"] == sent


# --- secrets ----------------------------------------------------------------------------------


def _malformed_headers_server(body: bytes) -> tuple[socket.socket, threading.Thread]:
    """Answers one request with a header block urllib3 cannot parse (it logs a WARNING with
    the request's URL, then uses the answer anyway)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nnot a header\r\n\r\n%s" % (len(body), body)
        )
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_no_urllib3_log_line_carries_the_access_token(caplog: pytest.LogCaptureFixture) -> None:
    # Was: urllib3.connection's "Failed to parse headers (url=...?access_token=...)" WARNING
    # was not redacted (only connectionpool, poolmanager and retry were).
    redact_url_secrets_in_logs()
    server, thread = _malformed_headers_server(b'{"errcode": 0}')
    url = f"http://127.0.0.1:{server.getsockname()[1]}/cgi-bin/message/custom/send"
    with caplog.at_level(logging.DEBUG):
        data = request_json(
            make_session(retry_reads=False),
            "wechat",
            "POST",
            url,
            (1.0, 2.0),
            params={"access_token": "SECRET-TOKEN-42"},
            data=b"{}",
        )
    thread.join(5)
    server.close()
    assert data == {"errcode": 0}
    logged = [r.getMessage() for r in caplog.records]
    assert any("Failed to parse headers" in m for m in logged)  # the line exists ...
    assert not any("SECRET-TOKEN-42" in m for m in logged)  # ... without the token
    assert any("access_token=***)" in m for m in logged)  # and stays readable


def test_the_appsecret_and_token_reach_no_log_or_error(  # noqa: PLR0913
    fake_apis: FakeApis,
    engine: Engine,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    wechat = api(fake_apis, engine, clock, budget=0.3)
    assert wechat.send("user-1", Text("x")) is True
    fake_apis.revoked.add("TOKEN-1")
    fake_apis.drop_next["send"] = 1  # a broken connection: requests' error names the URL
    assert wechat.send("user-1", Text("y")) is False
    clock.advance(DOWN_PAUSE)
    assert wechat.send("user-1", Text("z")) is True  # rejected, refreshed, retried
    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    upgrade(other)
    wrong = WeChatApi(APPID, "wrong-secret-123", fake_apis.url, other, 1.0, clock)
    assert wrong.send("user-1", Text("x")) is False  # 40125, logged once
    other.dispose()
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "40125" in logged
    for secret in (APPSECRET, "wrong-secret-123", *fake_apis.tokens):
        assert secret not in logged
