"""Review findings in wxbot/services: each test failed before its fix."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import insert

from tests.fakeapis import APPID, APPSECRET, FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from wxbot.messages.replies import Text
from wxbot.services.budget import Budget
from wxbot.services.http import ServiceError
from wxbot.services.models import WeChatToken
from wxbot.services.music import MusicClient
from wxbot.services.weather import WeatherClient
from wxbot.services.webhook import WebhookClient
from wxbot.services.wechat_api import WeChatApi


def test_a_hung_get_is_not_sent_twice_nor_waited_for_twice(fake_apis: FakeApis) -> None:
    # A read timeout is a slow service, not a stale keep-alive connection: retrying it
    # doubles the read budget (12 s -> 24 s: past WeChat's last delivery) and the load.
    fake_apis.hold("geocoding")
    fake_apis.hold("music")
    budget = Budget(read=0.5, connect=0.5)
    weather = WeatherClient(fake_apis.url, fake_apis.url, http_timeout=budget)
    started = time.monotonic()
    with pytest.raises(ServiceError, match="timed out"):
        weather.geocode("北京")
    assert time.monotonic() - started < 0.95
    assert fake_apis.hits["geocoding"] == 1
    with pytest.raises(ServiceError, match="timed out"):
        MusicClient(fake_apis.url, http_timeout=budget).search("晴天")
    assert fake_apis.hits["music"] == 1


def test_a_dropped_keep_alive_get_is_still_retried_once(fake_apis: FakeApis) -> None:
    weather = WeatherClient(fake_apis.url, fake_apis.url, http_timeout=Budget(0.5, 0.5))
    fake_apis.drop_next["geocoding"] = 1
    assert weather.geocode("上海")[0].name == "上海市"
    assert fake_apis.hits["geocoding"] == 2


def test_the_access_token_reaches_no_log(make_app, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    # WeChat wants the token in the query string; urllib3 logs the URL when it retries a
    # failed connection (WARNING) and on every request (DEBUG).
    app = make_app()
    engine = app.extensions["wxbot.engine"]
    secret_token = "ACCESS-TOKEN-0123456789-SECRET"
    with engine.begin() as conn:
        conn.execute(
            insert(WeChatToken.__table__).values(
                appid=APPID, access_token=secret_token, expires_at=clock.now + 7200, updated_at=0
            )
        )
    api = WeChatApi(APPID, APPSECRET, closed_port_url(), engine, 2.0, clock)
    with caplog.at_level(logging.DEBUG):
        assert api.send("user-1", Text("hi")) is False
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "custom/send" in logged  # the retry was logged ...
    assert secret_token not in logged  # ... without the token


class _CookieWebhook(BaseHTTPRequestHandler):
    """A business webhook behind a framework that sets a session cookie per caller."""

    protocol_version = "HTTP/1.1"
    seen: list[str | None] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(self.headers.get("Cookie"))
        data = json.dumps({"reply": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"sessionid={body['openid']}; Path=/")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_one_users_cookies_are_not_sent_with_another_users_call() -> None:
    # One Session serves every user: a cookie set for alice's call would ride along bob's.
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CookieWebhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/recharge"
        client = WebhookClient(5.0)
        client.post(url, {"openid": "o_alice"})
        client.post(url, {"openid": "o_bob"})
    finally:
        server.shutdown()
        server.server_close()
    assert _CookieWebhook.seen == [None, None]
