"""Local stand-ins for the public APIs wxbot calls: Open-Meteo geocoding and forecast, the
iTunes Search API, an SMS webhook, WeChat's API and a business flow's webhook (recharge). One threaded http.server on 127.0.0.1
answers all of them (each service gets the same base URL), so tests never reach the internet.

Knobs, all per route name (``geocoding``, ``forecast``, ``music``, ``sms``, ``token``, ``send``,
``recharge``):
- ``down``: routes that answer HTTP 503;
- ``hold(route)``: requests wait until ``release(route)`` (slowness without sleeps);
- ``delay``: seconds to sleep before answering (for demos and benchmarks only);
- ``drop_next[route] = n``: close the next n connections without answering;
- ``places`` / ``songs``: what geocoding and music search find (empty list = no results);
  geocoding names them in the ``language`` asked for, as the real API does (NAMES);
- WeChat's API (``token``, ``send``): ``errcodes[route]``: the next answers are these errcodes,
  oldest first; ``errcode_always[route]``: every answer is this errcode; ``text_limit``: the
  longest pushed text content in UTF-8 bytes (longer: 45002); ``force_interval``: seconds
  between two accepted ``force_refresh`` fetches (sooner: 45011), 0 = no limit.
Observations: ``hits`` (requests per route), ``entered`` (an Event per route, set on arrival),
``sms`` (webhook bodies), ``pushed`` (accepted customer-service messages), ``tokens``,
``webhooks`` (bodies the recharge webhook received; it answers in the payload's language).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

APPID = "wx0000000000demo"
APPSECRET = "fake-app-secret"

PLACES: dict[str, list[dict[str, Any]]] = {
    "北京": [
        {
            "name": "北京市",
            "latitude": 39.9075,
            "longitude": 116.39723,
            "country": "中国",
            "admin1": "北京市",
            "population": 11716620,
        },
        {"name": "北京", "latitude": 25.0, "longitude": 110.0, "country": "中国", "admin1": "广西"},
    ],
    "上海": [
        {
            "name": "上海市",
            "latitude": 31.22222,
            "longitude": 121.45806,
            "country": "中国",
            "admin1": "上海市",
            "population": 22315474,
        }
    ],
    "朝阳": [
        {
            "name": "朝阳区",
            "latitude": 39.92,
            "longitude": 116.44,
            "country": "中国",
            "admin1": "北京市",
            "population": 3_000_000,
        },
        {
            "name": "朝阳市",
            "latitude": 41.57,
            "longitude": 120.45,
            "country": "中国",
            "admin1": "辽宁省",
            "population": 2_900_000,
        },
    ],
}

# The real API's ``language`` parameter (open-meteo/geocoding-api): each name in that language
# where GeoNames has one, else the place's main name (for these places the English one); a
# language it does not know, or none given, is English. PLACES hold the ``language=zh``
# answers; a name missing here (a test's own place) is answered as it is stored.
NAMES: dict[str, dict[str, str]] = {
    "en": {
        "北京市": "Beijing",
        "北京": "Beijing",
        "中国": "China",
        "广西": "Guangxi",
        "上海市": "Shanghai",
        "朝阳区": "Chaoyang",
        "朝阳市": "Chaoyang",
        "辽宁省": "Liaoning",
    },
    "ja": {
        "北京市": "北京市",
        "中国": "中国",
        "广西": "広西チワン族自治区",
        "上海市": "上海市",
        "朝阳区": "朝陽区",
        "朝阳市": "朝陽市",
        "辽宁省": "遼寧省",
    },
    "th": {
        "北京市": "ปักกิ่ง",
        "中国": "จีน",
        "广西": "กวางสี",
        "上海市": "เซี่ยงไฮ้",
        "朝阳区": "เขตเฉาหยาง",
        "朝阳市": "เฉาหยาง",
        "辽宁省": "มณฑลเหลียวหนิง",
    },
}
PLACE_FIELDS = ("name", "country", "admin1", "admin2")


def in_language(place: dict[str, Any], language: str) -> dict[str, Any]:
    """A PLACES entry as the real API names it for ``language``."""
    if language == "zh":
        return place
    names, main = NAMES.get(language, NAMES["en"]), NAMES["en"]
    named = {
        k: names.get(v) or main.get(v, v)
        for k, v in place.items()
        if k in PLACE_FIELDS and isinstance(v, str)
    }
    return {**place, **named}


SONGS: dict[str, list[dict[str, Any]]] = {
    "晴天": [
        {
            "trackName": "晴天",
            "artistName": "周杰伦",
            "collectionName": "叶惠美",
            "previewUrl": "https://audio.example/qingtian.m4a",
        }
    ],
}

DAILY: dict[str, list[Any]] = {
    "time": ["2027-01-15", "2027-01-16"],
    "weather_code": [0, 61],
    "temperature_2m_max": [5.4, 3.2],
    "temperature_2m_min": [-6.1, -2.5],
    "precipitation_probability_max": [0, 80],
}

RECHARGE_REPLIES = {
    "zh": "充值 100 元已于 01-15 10:32 到账，刷新余额即可看到。",
    "en": "100 CNY was credited on 01-15 at 10:32. Refresh your balance to see it.",
    "th": "เงิน 100 หยวนเข้าบัญชีแล้วเมื่อ 01-15 เวลา 10:32 รีเฟรชยอดเงินเพื่อดู",
    "tl": "Pumasok na ang 100 CNY noong 01-15, 10:32. I-refresh ang balance mo para makita ito.",
    "ja": "100元は01-15 10:32に入金済みです。残高を更新してご確認ください。",
}

# What WeChat says with each errcode (the shapes of real answers; rid values made up).
ERRMSGS = {
    -1: "system error rid: 6650b1a2-0a1b2c3d-4e5f6a7b",
    40001: "invalid credential, access_token is invalid or not latest rid: 6650b1a2-1",
    40164: "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6650b1a2-2",
    42001: "access_token expired rid: 6650b1a2-3",
    43004: "require subscribe rid: 6650b1a2-4",
    45002: "content size out of limit rid: 6650b1a2-5",
    45009: "reach max api daily quota limit rid: 6650b1a2-6",
    45011: "api minute-quota reach limit  mustslower  retry next minute rid: 6650b1a2-7",
    45015: "response out of time limit or subscription is canceled rid: 6650b1a2-8",
    45047: "out of response count limit rid: 6650b1a2-9",
    48001: "api unauthorized rid: 6650b1a2-a",
}

ROUTES = {
    "/v1/search": "geocoding",
    "/v1/forecast": "forecast",
    "/search": "music",
    "/sms": "sms",
    "/cgi-bin/stable_token": "token",
    "/cgi-bin/message/custom/send": "send",
    "/recharge": "recharge",
}


class FakeApis:
    def __init__(self) -> None:
        self.places: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in PLACES.items()}
        self.songs: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in SONGS.items()}
        self.daily: dict[str, list[Any]] = dict(DAILY)
        self.down: set[str] = set()
        self.delay: dict[str, float] = {}
        self.drop_next: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()
        self.entered: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.raw: list[bytes] = []  # POST bodies as sent (to check the encoding)
        self.sms: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []
        self.tokens: list[str] = []  # issued, oldest first
        self.webhooks: list[dict[str, Any]] = []
        self.revoked: set[str] = set()
        self.token_lifetime = 7200
        self.errcodes: defaultdict[str, list[int]] = defaultdict(list)
        self.errcode_always: dict[str, int] = {}
        self.text_limit = 2048
        self.force_interval = 0.0
        self._forced_at = 0.0  # time.monotonic() of the last accepted force_refresh
        self._gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Settings overrides pointing every service at this server."""
        return {
            "weather_url": self.url,
            "geocoding_url": self.url,
            "music_url": self.url,
            "api_url": self.url,
            "sms_webhook_url": f"{self.url}/sms",
            **extra,
        }

    def start(self) -> FakeApis:
        self._thread.start()
        return self

    def stop(self) -> None:
        for gate in self._gates.values():
            gate.set()
        self._server.shutdown()
        self._server.server_close()

    def hold(self, route: str) -> None:
        self._gates[route] = threading.Event()
        self.entered[route].clear()

    def release(self, route: str) -> None:
        gate = self._gates.pop(route, None)
        if gate is not None:
            gate.set()

    def wait_entered(self, route: str, timeout: float = 10.0) -> None:
        assert self.entered[route].wait(timeout), f"no request reached {route!r}"

    # --- answers -------------------------------------------------------------------------

    def answer(self, route: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        if route == "geocoding":
            language = query.get("language", "en")
            found = self.places.get(query.get("name", ""), [])
            results = [in_language(p, language) for p in found]
            return 200, ({"results": results} if results else {"generationtime_ms": 0.1})
        if route == "forecast":
            return 200, {
                "latitude": float(query["latitude"]),
                "longitude": float(query["longitude"]),
                "timezone": "Asia/Shanghai",
                "daily": self.daily,
            }
        if route == "music":
            results = self.songs.get(query.get("term", ""), [])
            return 200, {"resultCount": len(results), "results": results}
        if route == "sms":
            self.sms.append(body)
            return 200, {"ok": True}
        if route in ("token", "send"):
            code = self._next_errcode(route)
            if code is not None:
                return 200, {"errcode": code, "errmsg": ERRMSGS.get(code, "error")}
        if route == "token":
            return 200, self._token(body)
        if route == "recharge":
            self.webhooks.append(body)
            language = body.get("language") if isinstance(body, dict) else "zh"
            return 200, {"reply": RECHARGE_REPLIES.get(language, RECHARGE_REPLIES["zh"])}
        if route == "send":
            token = query.get("access_token", "")
            if token not in self.tokens or token in self.revoked:
                return 200, {"errcode": 40001, "errmsg": "invalid credential"}
            content = (body.get("text") or {}).get("content", "") if isinstance(body, dict) else ""
            if len(content.encode("utf-8", "surrogatepass")) > self.text_limit:
                return 200, {"errcode": 45002, "errmsg": ERRMSGS[45002]}
            self.pushed.append(body)
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 404, {"error": "no such route"}

    def _next_errcode(self, route: str) -> int | None:
        with self._lock:
            if route in self.errcode_always:
                return self.errcode_always[route]
            if self.errcodes[route]:
                return self.errcodes[route].pop(0)
        return None

    def _token(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("appid") != APPID or body.get("secret") != APPSECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self._lock:
            if body.get("force_refresh") and self.force_interval:
                if time.monotonic() - self._forced_at < self.force_interval:
                    return {"errcode": 45011, "errmsg": ERRMSGS[45011]}
                self._forced_at = time.monotonic()
            if (
                self.tokens
                and not body.get("force_refresh")
                and self.tokens[-1] not in self.revoked
            ):
                return {"access_token": self.tokens[-1], "expires_in": self.token_lifetime}
            token = f"TOKEN-{len(self.tokens) + 1}"
            self.tokens.append(token)
        return {"access_token": token, "expires_in": self.token_lifetime}


def _make_handler(fake: FakeApis) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real APIs (and stale-connection drops)
        disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms ACK wait

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve(None)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.raw.append(raw)
            try:
                body = json.loads(raw.decode("utf-8")) if raw else None
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            self._serve(body)

        def _serve(self, body: Any) -> None:
            parsed = urlparse(self.path)
            route = ROUTES.get(parsed.path, "unknown")
            query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            with fake._lock:
                fake.hits[route] += 1
                fake.requests.append((route, query, body))
                drop = fake.drop_next[route] > 0
                if drop:
                    fake.drop_next[route] -= 1
            fake.entered[route].set()
            if drop:  # hang up without a word: the client sees a broken connection
                self.close_connection = True
                return
            gate = fake._gates.get(route)
            if gate is not None:
                gate.wait(30)
            if fake.delay.get(route):
                time.sleep(fake.delay[route])
            if route in fake.down:
                status, payload = 503, {"error": "service unavailable"}
            else:
                status, payload = fake.answer(route, query, body)
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout under test): nobody to answer

    return Handler


@pytest.fixture(name="fake_apis")
def fake_apis_fixture() -> Iterator[FakeApis]:
    """Import ``fake_apis_fixture`` into a test module to use the ``fake_apis`` fixture."""
    fake = FakeApis().start()
    yield fake
    fake.stop()


def closed_port_url() -> str:
    """A base URL where nothing listens (connection refused at once)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"
