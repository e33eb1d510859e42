"""Outbound clients against providers that misbehave the way real ones do: an answer that
drips, one that never ends, one in GBK, a redirect to another host, a redirect loop, JSON of
the wrong shape, NaN and Infinity, a token endpoint answering nonsense. The user reads the
service's friendly text; no call outlives its budget; nothing of ours goes to another host."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.dialog.handlers import weather
from wxbot.messages.replies import Text
from wxbot.services.http import ServiceError
from wxbot.services.music import MusicClient
from wxbot.services.sms import WebhookSender
from wxbot.services.weather import WeatherClient

Serve = Callable[[BaseHTTPRequestHandler], None]


class Provider:
    """One misbehaving HTTP server on 127.0.0.1; ``serve(handler)`` answers each request."""

    def __init__(self, serve: Serve) -> None:
        self.serve = serve
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        self.sent = 0  # body bytes written
        self.stop = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                provider.paths.append(self.path)
                with suppress(BrokenPipeError, ConnectionResetError):
                    provider.serve(self)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                provider.bodies.append(self.rfile.read(length))
                self.do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def provider(serve: Serve) -> Iterator[Provider]:
    one = Provider(serve)
    try:
        yield one
    finally:
        one.close()


def answer(
    handler: BaseHTTPRequestHandler,
    body: bytes,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def run_with_limit(call: Callable[[], Any], seconds: float) -> Any:
    """``call()``'s result or exception; fails the test (without hanging it) past ``seconds``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call was still running after {seconds} s"
    return outcome[0]


# --- a slow drip and an endless answer -------------------------------------------------------


def test_an_answer_that_drips_is_cut_at_the_read_budget() -> None:
    """requests' timeout is per socket read: a byte every 0.2 s never trips a 1 s timeout, and
    the worker waited for the whole answer (here 200 s) past WeChat's last delivery."""

    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            if provider_.stop.is_set():
                return
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.2)

    with provider(drip) as provider_:
        client = WeatherClient(provider_.url, provider_.url, http_timeout=1.0)
        started = time.monotonic()
        outcome = run_with_limit(lambda: client.geocode("北京"), 8)
        assert isinstance(outcome, ServiceError), outcome
        assert outcome.reason == "timed out"
        assert time.monotonic() - started < 3


def test_an_enormous_answer_is_not_read_into_memory() -> None:
    """A wrong URL serving a file (or a runaway API): 64 MB were read whole before json()."""
    size = 64 * 1024 * 1024

    def endless(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        chunk = b"[" * 65536
        for _ in range(size // len(chunk)):
            handler.wfile.write(chunk)
            provider_.sent += len(chunk)

    with provider(endless) as provider_:
        client = MusicClient(provider_.url, http_timeout=5.0)
        outcome = run_with_limit(lambda: client.search("晴天"), 20)
        assert isinstance(outcome, ServiceError), outcome
        assert outcome.reason == "unreachable (AnswerTooLarge)"
        time.sleep(0.2)
        assert provider_.sent < 16 * 1024 * 1024  # socket buffers, then the client hung up


def test_a_gzip_bomb_is_cut_at_the_limit_too() -> None:
    import gzip

    bomb = gzip.compress(b" " * (16 * 1024 * 1024))  # 16 MB of spaces in 16 KB

    with provider(lambda h: answer(h, bomb, headers={"Content-Encoding": "gzip"})) as provider_:
        client = MusicClient(provider_.url, http_timeout=5.0)
        outcome = run_with_limit(lambda: client.search("晴天"), 20)
        assert isinstance(outcome, ServiceError)
        assert outcome.reason == "unreachable (AnswerTooLarge)"


def test_an_ordinary_answer_still_reads_whole_and_keeps_the_connection() -> None:
    body = json.dumps({"results": [{"name": "北京市", "latitude": 39.9, "longitude": 116.4}]})
    connections: set[int] = set()

    def ok(handler: BaseHTTPRequestHandler) -> None:
        connections.add(handler.client_address[1])
        answer(handler, body.encode("utf-8"))

    with provider(ok) as provider_:
        client = WeatherClient(provider_.url, provider_.url, http_timeout=2.0)
        assert [p.name for p in client.geocode("北京")] == ["北京市"]
        assert [p.name for p in client.geocode("北京二")] == ["北京市"]
        assert len(connections) == 1  # the answer was read to its end: the connection reused


def test_a_connection_reset_mid_answer_is_a_service_error() -> None:
    import socket
    import struct

    def reset(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"results": [')
        handler.wfile.flush()
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.shutdown(socket.SHUT_RDWR)

    with provider(reset) as p:
        outcome = run_with_limit(
            lambda: WeatherClient(p.url, p.url, http_timeout=3.0).geocode("北京"), 5
        )
    assert isinstance(outcome, ServiceError)
    assert outcome.reason.startswith("unreachable")


def test_a_gzipped_answer_is_decoded() -> None:
    import gzip

    body = json.dumps({"results": [{"name": "上海市", "latitude": 31.2, "longitude": 121.5}]})
    packed = gzip.compress(body.encode("utf-8"))
    with provider(lambda h: answer(h, packed, headers={"Content-Encoding": "gzip"})) as p:
        places = WeatherClient(p.url, p.url, http_timeout=2.0).geocode("上海")
    assert [place.name for place in places] == ["上海市"]


# --- encodings -------------------------------------------------------------------------------


def test_a_gbk_answer_without_a_charset_is_refused_not_garbled() -> None:
    """JSON is UTF-8 unless the Content-Type says otherwise; requests replaced the undecodable
    bytes and the user read 「����天气」."""
    body = json.dumps(
        {"results": [{"name": "北京市", "latitude": 39.9, "longitude": 116.4}]},
        ensure_ascii=False,
    ).encode("gbk")
    with provider(lambda h: answer(h, body)) as provider_:
        client = WeatherClient(provider_.url, provider_.url, http_timeout=2.0)
        with pytest.raises(ServiceError, match="not JSON"):
            client.geocode("北京")


def test_a_gbk_answer_that_says_so_is_read() -> None:
    body = json.dumps(
        {"results": [{"name": "北京市", "latitude": 39.9, "longitude": 116.4}]},
        ensure_ascii=False,
    ).encode("gbk")
    with provider(lambda h: answer(h, body, content_type="application/json; charset=GBK")) as p:
        assert [x.name for x in WeatherClient(p.url, p.url, http_timeout=2.0).geocode("北京")] == [
            "北京市"
        ]


# --- redirects -------------------------------------------------------------------------------


def test_a_redirect_to_another_host_gets_nothing_of_ours() -> None:
    """A 307 keeps the method and the body: the SMS webhook's phone number and code went to
    whatever host the answer named."""
    with provider(lambda h: answer(h, b'{"ok": true}')) as elsewhere:

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            location = f"http://localhost:{elsewhere.port}/steal"  # another host name
            answer(handler, b"", status=307, headers={"Location": location})

        with provider(redirect) as webhook:
            sender = WebhookSender(f"{webhook.url}/sms", http_timeout=2.0)
            with pytest.raises(ServiceError, match="HTTP 307"):
                sender.send("13800138000", "123456")
            assert len(webhook.bodies) == 1
            assert elsewhere.bodies == [] and elsewhere.paths == []


def test_a_redirect_on_the_same_host_is_still_followed() -> None:
    def serve(handler: BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/old"):
            answer(handler, b"", status=301, headers={"Location": "/search?term=x"})
        else:
            answer(handler, json.dumps({"results": []}).encode())

    with provider(serve) as p:
        assert MusicClient(f"{p.url}/old", http_timeout=2.0).search("晴天") == []
        assert [path.split("?")[0] for path in p.paths] == ["/old/search", "/search"]


def test_a_redirect_loop_costs_a_few_calls_not_thirty() -> None:
    """requests follows 30 redirects, each with a fresh timeout: 30 budgets, not one."""
    with provider(lambda h: answer(h, b"", status=302, headers={"Location": h.path})) as p:
        with pytest.raises(ServiceError, match="TooManyRedirects"):
            MusicClient(p.url, http_timeout=2.0).search("晴天")
        assert len(p.paths) <= 3


# --- JSON of the wrong shape -----------------------------------------------------------------


@pytest.mark.parametrize("results", [5, {"name": "北京"}, True])
def test_results_that_are_not_a_list_are_a_service_error(results: Any) -> None:
    body = json.dumps({"results": results}).encode()
    with provider(lambda h: answer(h, body)) as p:
        with pytest.raises(ServiceError, match="not a list"):
            WeatherClient(p.url, p.url, http_timeout=2.0).geocode("北京")
        with pytest.raises(ServiceError, match="not a list"):
            MusicClient(p.url, http_timeout=2.0).search("晴天")


def test_a_place_with_absurd_numbers_is_skipped() -> None:
    body = (
        b'{"results": [{"name": "A", "latitude": NaN, "longitude": 1},'
        b' {"name": "B", "latitude": 1, "longitude": 1, "population": 1e999},'
        b' {"name": "C", "latitude": 91, "longitude": 1},'
        b' {"name": "D", "latitude": 30, "longitude": 120}]}'
    )
    with provider(lambda h: answer(h, body)) as p:
        places = WeatherClient(p.url, p.url, http_timeout=2.0).geocode("x")
    assert [place.name for place in places] == ["D"]


@pytest.fixture
def wbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings()).extensions["wxbot.bot"]


def test_a_forecast_with_infinity_reads_without_the_numbers(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    """Python's json reads Infinity; rounding it for the reply raised in the resume, and the
    user read the generic apology (with a traceback in the log) instead of a forecast."""
    fake_apis.daily = {
        "time": ["2027-01-15", "2027-01-16"],
        "weather_code": [0, 61],
        "temperature_2m_max": [float("inf"), 3.2],
        "temperature_2m_min": [-6.1, float("-inf")],
        "precipitation_probability_max": [float("nan"), 80],
    }
    assert content(say(wbot, "u1", "天气 北京")).splitlines() == [
        "北京市天气",
        "今天（01-15）：晴",
        "明天（01-16）：小雨，降水概率 80%",
    ]


@pytest.mark.parametrize(
    "misbehave",
    [
        lambda h: answer(h, b"<html><body>502 Bad Gateway</body></html>", 200, "text/html"),
        lambda h: answer(h, b"<html>Bad Gateway</html>", 502, "text/html"),
        lambda h: answer(h, b'{"error": "slow down"}', 429, headers={"Retry-After": "30"}),
        lambda h: answer(h, b'{"results": [{"name": 1}'),  # truncated JSON
        lambda h: answer(h, b"[]"),
    ],
    ids=["html-200", "html-502", "429", "truncated", "list"],
)
def test_the_user_reads_the_friendly_text_whatever_the_provider_says(
    make_app, misbehave: Serve
) -> None:  # type: ignore[no-untyped-def]
    with provider(misbehave) as p:
        bot = make_app(weather_url=p.url, geocoding_url=p.url).extensions["wxbot.bot"]
        assert say(bot, "u1", "天气 北京") == Text(weather.UNAVAILABLE)


def test_an_unresolvable_host_is_the_friendly_text(make_app) -> None:  # type: ignore[no-untyped-def]
    url = "http://no-such-host.invalid"
    bot = make_app(weather_url=url, geocoding_url=url).extensions["wxbot.bot"]
    assert say(bot, "u1", "天气 北京") == Text(weather.UNAVAILABLE)


# --- the token endpoint answering nonsense ----------------------------------------------------


@pytest.mark.parametrize(
    "token_answer",
    [
        {"access_token": "T-1", "expires_in": "abc"},
        {"access_token": "T-1", "expires_in": float("inf")},
        {"access_token": "T-1", "expires_in": -5},
        {"access_token": "x" * 600, "expires_in": 7200},
        {"access_token": {"value": "T"}, "expires_in": 7200},
        {"access_token": "T 1&x=2", "expires_in": 7200},
    ],
    ids=["lifetime-text", "lifetime-infinite", "lifetime-negative", "too-long", "object", "query"],
)
def test_a_malformed_token_answer_is_a_warning_not_a_crash(
    make_app, fake_apis: FakeApis, caplog: pytest.LogCaptureFixture, token_answer: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    """A lifetime that is no number raised ValueError (logged as a crash, with a traceback);
    Infinity or a 600-character token failed to be stored on MySQL; a negative lifetime
    made every push fetch a token again. None of it reaches the database now."""
    plain_answer = fake_apis.answer

    def answer_token(route: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if route == "token":
            return 200, token_answer
        return plain_answer(route, query, body)

    fake_apis.answer = answer_token  # type: ignore[method-assign]
    app = make_app(**fake_apis.settings(appid=APPID, appsecret=APPSECRET))
    api = app.extensions["wxbot.bot"].deps.services.wechat_api
    assert api is not None
    with caplog.at_level(logging.WARNING):
        assert api.send("o_user", Text("你好")) is False
    assert fake_apis.pushed == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert any("malformed" in r.getMessage() for r in caplog.records)
    with app.extensions["wxbot.engine"].connect() as conn:
        from sqlalchemy import text

        stored = conn.execute(text("SELECT access_token FROM wechat_tokens")).scalars().all()
    assert all(len(token) <= 512 and "T-1" not in token for token in stored)
