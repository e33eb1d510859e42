"""Deadlines of outbound work: a weather lookup (up to three GETs in a row) fits its service's
budget as a whole, and a slow access_token fetch does not hold SQLite's write lock (which
would stall every user's message). SQLite and MySQL. Each test failed before its fix.

Below: one call ends by its budget whatever the server does (drips its status line or its
headers, says nothing, or its name takes for ever to resolve), and the watchdog that ends it
never cuts a connection that another call has taken from the pool."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import requests
from urllib3.util.retry import Retry

from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.dialog.handlers import weather
from wxbot.services import http as wxhttp
from wxbot.services.budget import Budget
from wxbot.services.http import Deadline, ServiceError, make_session, request_json
from wxbot.services.weather import WeatherClient
from wxbot.services.wechat_api import WeChatApi

HANGZHOU = {
    "name": "杭州市",
    "latitude": 30.29365,
    "longitude": 120.16142,
    "country": "中国",
    "admin1": "浙江省",
    "population": 6_241_971,
}
BUDGET = 1.0  # WXBOT_TIMEOUTS=weather=1: the whole lookup's deadline


@pytest.fixture
def hangzhou_bot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    # 「杭州市」 is not indexed, 「杭州」 is: geocode, geocode again without 市, forecast.
    fake_apis.places["杭州"] = [HANGZHOU]
    settings = fake_apis.settings(timeouts={"weather": BUDGET}, connect_timeout=0.5)
    return make_app(**settings).extensions["wxbot.bot"]


def test_a_weather_lookup_shares_one_deadline_across_its_calls(hangzhou_bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    # Each GET alone is within the budget (0.6 s < 1 s); the three in a row are not (1.8 s).
    fake_apis.delay.update(geocoding=0.6, forecast=0.6)
    started = time.monotonic()
    reply = content(say(hangzhou_bot, "u1", "天气 杭州市"))
    elapsed = time.monotonic() - started
    assert elapsed < BUDGET + 0.5, f"the lookup took {elapsed:.2f} s on a {BUDGET} s budget"
    assert reply == weather.UNAVAILABLE  # the friendly reply, once the budget is spent
    assert fake_apis.hits["geocoding"] == 2  # the second one got only what was left
    assert fake_apis.hits["forecast"] == 0  # nothing left for it: never sent


def test_a_lookup_that_fits_the_budget_still_answers(hangzhou_bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    fake_apis.delay.update(geocoding=0.15, forecast=0.15)
    reply = content(say(hangzhou_bot, "u1", "天气 杭州市"))
    assert reply.startswith("杭州市天气\n今天（01-15）：晴")
    assert fake_apis.hits["geocoding"] == 2 and fake_apis.hits["forecast"] == 1
    # The next lookup gets a deadline of its own (the first one's is long spent by now).
    time.sleep(BUDGET)
    assert content(say(hangzhou_bot, "u1", "天气 上海")).startswith("上海市天气")


def test_a_spent_deadline_fails_fast_without_a_request() -> None:
    now = [100.0]
    deadline = Deadline("weather", Budget(read=2.0, connect=0.5), clock=lambda: now[0])
    assert deadline.timeout() == (0.5, 2.0)  # the clock starts at the first call
    now[0] += 1.8
    connect, read = deadline.timeout()
    assert connect == pytest.approx(0.2) and read == pytest.approx(0.2)  # what is left
    now[0] += 0.2
    with pytest.raises(ServiceError, match="weather: out of time"):
        deadline.timeout()


def test_a_slow_token_fetch_does_not_stall_other_users_messages(make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    bot = app.extensions["wxbot.bot"]
    api = WeChatApi(APPID, APPSECRET, fake_apis.url, app.extensions["wxbot.engine"], 5.0, clock)
    say(bot, "u1", "你好")  # the user exists: their next message is a plain write
    fake_apis.hold("token")  # stable_token answers slowly (up to its 5 s budget here)
    tokens: list[str] = []
    refresher = threading.Thread(target=lambda: tokens.append(api.access_token()))
    refresher.start()
    fake_apis.wait_entered("token")
    replies: list[Any] = []
    message = threading.Thread(target=lambda: replies.append(say(bot, "u1", "你好")))
    started = time.monotonic()
    message.start()
    message.join(2.0)
    waited = time.monotonic() - started
    stalled = message.is_alive()
    fake_apis.release("token")
    message.join(30)
    refresher.join(30)
    assert not stalled, f"a plain message waited {waited:.1f}+ s for the token fetch"
    assert replies and tokens == ["TOKEN-1"]
    assert api.access_token() == "TOKEN-1"
    assert fake_apis.hits["token"] == 1


# --- a deadline on the whole call: status line, headers, silence, DNS -------------------------
#
# requests' timeouts are per socket read, and http.client reads the status line and each
# header line with reads of its own: a server dripping them a byte at a time held a call far
# past its budget (a 0.5 s call was held 37 s). The bounds below are generous (a loaded shared
# machine); before the watchdog each of these calls was held for many seconds.

CALL = 1.0  # the read budget of the calls below: the whole call's deadline
MARGIN = 2.0  # seconds past the budget a call may take on a loaded machine
ANSWER = b'{"ok": true}'
Behave = Callable[["RawServer", socket.socket, int], bool]


class RawServer:
    """A TCP server on 127.0.0.1: reads each request's head, then ``behave(server, conn, n)``
    (n counts requests from 0) answers it as it likes, True to keep the connection for the
    next request. ``ports`` has the client's port of each request (the same port: the same
    connection, reused)."""

    def __init__(self, behave: Behave) -> None:
        self.behave = behave
        self.stop = threading.Event()
        self.ports: list[int] = []
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with suppress(OSError), conn:
            head = b""
            while not self.stop.is_set():
                while b"\r\n\r\n" not in head:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
                head = head.split(b"\r\n\r\n", 1)[1]  # GETs only: no body
                number = len(self.ports)
                self.ports.append(conn.getpeername()[1])
                if not self.behave(self, conn, number):
                    return

    def drip(self, conn: socket.socket, data: bytes, every: float = 0.3) -> None:
        for i in range(len(data)):
            if self.stop.wait(every):
                return
            conn.sendall(data[i : i + 1])

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn in self.conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@contextmanager
def raw_server(behave: Behave) -> Iterator[RawServer]:
    server = RawServer(behave)
    try:
        yield server
    finally:
        server.close()


def answer_ok(server: RawServer, conn: socket.socket, number: int) -> bool:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(ANSWER)}"
    conn.sendall(head.encode() + b"\r\n\r\n" + ANSWER)
    return True


def drip_status_line(server: RawServer, conn: socket.socket, number: int) -> bool:
    server.drip(conn, b"HTTP/1.1 200 OK\r\n" * 10)
    return False


def drip_headers(server: RawServer, conn: socket.socket, number: int) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    server.drip(conn, b"X-Slow: " + b"z" * 200 + b"\r\n")
    return False


def say_nothing(server: RawServer, conn: socket.socket, number: int) -> bool:
    server.stop.wait(60)
    return False


def within(call: Callable[[], Any], seconds: float) -> tuple[Any, float]:
    """``call()``'s result or exception, and how long it took; fails the test (without
    hanging it) when the call is still running after ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    elapsed = time.monotonic() - started
    assert not thread.is_alive(), f"the call was still running after {elapsed:.1f} s"
    return outcome[0], elapsed


def test_a_dripping_status_line_is_cut_at_the_budget_and_the_user_reads_the_friendly_text(
    make_app,  # type: ignore[no-untyped-def]
) -> None:
    with raw_server(drip_status_line) as server:
        bot = make_app(
            weather_url=server.url,
            geocoding_url=server.url,
            timeouts={"weather": CALL},
            connect_timeout=0.5,
        ).extensions["wxbot.bot"]
        reply, elapsed = within(lambda: content(say(bot, "u1", "天气 北京")), 30)
        assert reply == weather.UNAVAILABLE
        assert elapsed < CALL + MARGIN, f"the lookup took {elapsed:.1f} s on a {CALL} s budget"
        assert len(server.ports) == 1  # a call cut at its deadline is not sent again


@pytest.mark.parametrize("behave", [drip_status_line, drip_headers, say_nothing])
def test_a_server_that_drips_or_says_nothing_fails_as_a_timeout_within_the_budget(
    behave: Behave,
) -> None:
    with raw_server(behave) as server:
        client = WeatherClient(server.url, server.url, http_timeout=CALL)
        outcome, elapsed = within(lambda: client.geocode("北京"), 30)
        assert isinstance(outcome, ServiceError), outcome
        assert outcome.reason == "timed out"
        assert elapsed < CALL + MARGIN, f"the call took {elapsed:.1f} s on a {CALL} s budget"
        assert len(server.ports) == 1  # GETs are retried on a dropped read, not on this one


def test_a_session_without_retries_fails_as_a_timeout_too() -> None:
    """The embedding client's session retries nothing: its cut call is a timeout as well, not
    a dropped connection."""
    session = make_session(retry_reads=False)
    session.get_adapter("http://").max_retries = Retry(0, read=False, redirect=0)
    with raw_server(drip_headers) as server:
        outcome, elapsed = within(lambda: session.get(server.url, timeout=(0.5, CALL)), 30)
        assert isinstance(outcome, requests.Timeout), outcome
        assert elapsed < CALL + MARGIN


def test_a_reused_connection_that_starts_dripping_is_cut_too() -> None:
    def fine_then_drip(server: RawServer, conn: socket.socket, number: int) -> bool:
        return answer_ok(server, conn, number) if number == 0 else drip_headers(server, conn, 1)

    with raw_server(fine_then_drip) as server:
        session = make_session(retry_reads=False)
        assert request_json(session, "llm", "GET", server.url, timeout=(0.5, CALL)) == {"ok": True}
        call = lambda: request_json(session, "llm", "GET", server.url, timeout=(0.5, CALL))  # noqa: E731
        outcome, elapsed = within(call, 30)
        assert isinstance(outcome, ServiceError) and outcome.reason == "timed out", outcome
        assert elapsed < CALL + MARGIN
        assert len(server.ports) == 2 and server.ports[0] == server.ports[1]


@pytest.fixture
def slow_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``*.slow.test`` resolves only when the test ends (a broken resolver: getaddrinfo
    ignores socket timeouts); ``*.fast.test`` is 127.0.0.1. The names asked are listed."""
    real = socket.getaddrinfo
    release = threading.Event()
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".slow.test"):
            asked.append(host)
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if isinstance(host, str) and host.endswith(".fast.test"):
            asked.append(host)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield asked
    release.set()


def test_a_slow_resolver_is_waited_for_within_the_connect_budget(
    slow_resolver: list[str],
) -> None:
    session = make_session()
    call = lambda: request_json(  # noqa: E731
        session, "weather", "GET", "http://api.slow.test/v1", timeout=(0.5, 10.0)
    )
    outcome, elapsed = within(call, 30)
    assert isinstance(outcome, ServiceError), outcome
    assert outcome.reason == "timed out"
    # Connect budget 0.5 s, tried twice (a connection error is retried once): far less than
    # the 10 s read budget, and a broken resolver's 5-10 s.
    assert elapsed < 2 * 0.5 + MARGIN, f"the call took {elapsed:.1f} s"
    assert slow_resolver == ["api.slow.test"]  # the retry waited for the same lookup


def test_a_name_that_resolves_is_connected_to_and_reused(slow_resolver: list[str]) -> None:
    with raw_server(answer_ok) as server:
        session = make_session()
        url = server.url.replace("127.0.0.1", "api.fast.test")
        for _ in range(2):
            assert request_json(session, "weather", "GET", url, timeout=(0.5, CALL)) == {"ok": True}
        assert slow_resolver == ["api.fast.test"]  # resolved once: the connection was reused
        assert len(server.ports) == 2 and server.ports[0] == server.ports[1]


def test_a_normal_call_still_works_and_its_connection_is_reused() -> None:
    with raw_server(answer_ok) as server:
        session = make_session()
        for _ in range(3):
            assert request_json(session, "music", "GET", server.url, timeout=(0.5, CALL)) == {
                "ok": True
            }
            time.sleep(0.05)
        time.sleep(CALL + 0.3)  # the calls' deadlines pass while the connection is idle
        assert request_json(session, "music", "GET", server.url, timeout=(0.5, CALL)) == {
            "ok": True
        }
        assert len(server.ports) == 4 and len(set(server.ports)) == 1, server.ports


# --- the watchdog never cuts a connection another call has taken ------------------------------


@contextmanager
def held_after_its_answer(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """Call A reads its answer whole (its connection goes back to the pool), then is held,
    past its deadline, until ``go`` is set: the window where a watchdog that went by the call
    alone would shut a connection that is in the pool, or in another call's hands."""
    read_answer = wxhttp._read_answer
    released, go = threading.Event(), threading.Event()
    held: list[threading.Thread] = []

    def read_then_wait(*args: Any) -> None:
        read_answer(*args)
        if threading.current_thread() in held:
            released.set()
            go.wait(10)

    monkeypatch.setattr(wxhttp, "_read_answer", read_then_wait)
    try:
        yield released, (go, held)
    finally:
        go.set()


def start_call_a(session: requests.Session, url: str, held: list[Any]) -> list[Any]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(session.get(url, timeout=(0.5, 0.5)))
        except BaseException as exc:  # noqa: BLE001
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    held.append(thread)
    thread.start()
    return outcome


def test_a_pooled_connection_is_not_cut_by_its_last_callers_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with raw_server(answer_ok) as server, held_after_its_answer(monkeypatch) as (released, g):
        go, held = g
        session = make_session(retry_reads=False)
        outcome_a = start_call_a(session, server.url, held)
        assert released.wait(10)
        time.sleep(0.5 + 0.5)  # A's deadline passes, and passes again, with A still running
        b = session.get(server.url, timeout=(0.5, 5.0))  # takes A's connection from the pool
        assert b.json() == {"ok": True}
        go.set()
        held[0].join(10)
        assert server.ports[0] == server.ports[1], "B found A's connection cut"
        assert isinstance(outcome_a[0], requests.Timeout)  # A itself outlived its deadline


def test_a_connection_in_another_calls_hands_is_not_cut_by_a_late_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a_due = [0.0]

    def slow_second(server: RawServer, conn: socket.socket, number: int) -> bool:
        if number == 1:  # B's answer: after A's deadline has passed (and been looked at)
            server.stop.wait(max(a_due[0] + 0.6 - time.monotonic(), 0))
        return answer_ok(server, conn, number)

    with raw_server(slow_second) as server, held_after_its_answer(monkeypatch) as (released, g):
        go, held = g
        session = make_session(retry_reads=False)
        a_due[0] = time.monotonic() + 0.5
        outcome_a = start_call_a(session, server.url, held)
        assert released.wait(10)
        b = session.get(server.url, timeout=(0.5, 5.0))  # A's connection, while A is held
        assert time.monotonic() > a_due[0] + 0.5  # B was under way when A's deadline passed
        assert b.json() == {"ok": True}
        go.set()
        held[0].join(10)
        assert server.ports[0] == server.ports[1]
        assert isinstance(outcome_a[0], requests.Timeout)
