"""The shared access_token and customer-service push, against the fake WeChat API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.fakeapis import APPID, APPSECRET, FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from wxbot.config import load_settings
from wxbot.messages.replies import Article, Music, News, Silent, Text, TransferToHuman
from wxbot.services import build_services
from wxbot.services.models import WeChatToken
from wxbot.services.wechat_api import WeChatApi, custom_message

ROOT = Path(__file__).resolve().parent.parent


def api_for(app: Any, fake: FakeApis, clock: Any, secret: str = APPSECRET) -> WeChatApi:
    return WeChatApi(APPID, secret, fake.url, app.extensions["wxbot.engine"], 5.0, clock)


def stored_token(app: Any) -> Any:
    with app.extensions["wxbot.engine"].connect() as conn:
        return conn.execute(select(WeChatToken.__table__)).one()


def test_token_is_fetched_once_and_shared_through_the_database(make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    first = api_for(app, fake_apis, clock)
    assert first.access_token() == "TOKEN-1"
    assert first.access_token() == "TOKEN-1"
    other_container = api_for(make_app(), fake_apis, clock)
    assert other_container.access_token() == "TOKEN-1"
    assert fake_apis.hits["token"] == 1
    row = stored_token(app)
    assert row.access_token == "TOKEN-1" and row.refreshes == 1
    assert row.expires_at == clock.now + 7200
    body = fake_apis.requests[0][2]
    assert body == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": APPSECRET,
        "force_refresh": False,
    }


def test_token_is_renewed_five_minutes_before_it_expires(make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    api = api_for(app, fake_apis, clock)
    api.access_token()
    clock.advance(7200 - 301)
    api.access_token()
    assert fake_apis.hits["token"] == 1
    clock.advance(2)
    api.access_token()
    assert fake_apis.hits["token"] == 2
    assert stored_token(app).refreshes == 2


def test_two_containers_needing_a_token_trigger_one_refresh(make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    apis = [api_for(make_app(), fake_apis, clock) for _ in range(2)]
    fake_apis.hold("token")
    got: list[str] = []
    first = threading.Thread(target=lambda: got.append(apis[0].access_token()))
    first.start()
    fake_apis.wait_entered("token")  # container 1 is refreshing, holding the row lock
    second = threading.Thread(target=lambda: got.append(apis[1].access_token()))
    second.start()
    second.join(0.3)  # give it time to find no valid token and queue on the lock
    fake_apis.release("token")
    first.join(10)
    second.join(10)
    assert got == ["TOKEN-1", "TOKEN-1"]
    assert fake_apis.hits["token"] == 1


_CHILD = """
import sys
from wxbot.db import make_engine
from wxbot.services.wechat_api import WeChatApi
api = WeChatApi(sys.argv[1], sys.argv[2], sys.argv[3], make_engine(sys.argv[4]), 10.0)
print("ready", flush=True)
sys.stdin.readline()
print(api.access_token(), flush=True)
"""


def test_two_processes_needing_a_token_trigger_one_refresh(db_url, make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    make_app()  # creates the schema
    fake_apis.hold("token")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, APPID, APPSECRET, fake_apis.url, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert children[0].stdin is not None
        children[0].stdin.write("go\n")
        children[0].stdin.flush()
        fake_apis.wait_entered("token")
        assert children[1].stdin is not None
        children[1].stdin.write("go\n")
        children[1].stdin.flush()
        time.sleep(0.5)  # let process 2 reach the lock (no assertion on timing)
        fake_apis.release("token")
        tokens = [child.communicate(timeout=30)[0].strip() for child in children]
    finally:
        for child in children:
            child.kill()
    assert tokens == ["TOKEN-1", "TOKEN-1"]
    assert fake_apis.hits["token"] == 1


def test_push_sends_a_customer_service_message(make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**fake_apis.settings(appsecret=APPSECRET))
    services = app.extensions["wxbot.bot"].deps.services
    assert services.push("user-1", Text("北京市天气\n今天：晴")) is True
    assert fake_apis.pushed == [
        {"touser": "user-1", "msgtype": "text", "text": {"content": "北京市天气\n今天：晴"}}
    ]
    assert "北京市天气".encode() in fake_apis.raw[-1]  # UTF-8, not \\u escapes
    _, query, _ = fake_apis.requests[-1]
    assert query["access_token"] == "TOKEN-1"


def test_push_retries_once_with_a_new_token_when_wechat_rejects_it(make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**fake_apis.settings(appsecret=APPSECRET))
    services = app.extensions["wxbot.bot"].deps.services
    assert services.push("user-1", Text("one")) is True
    fake_apis.revoked.add("TOKEN-1")  # e.g. someone fetched a token outside wxbot
    assert services.push("user-1", Text("two")) is True
    assert fake_apis.tokens == ["TOKEN-1", "TOKEN-2"]
    assert fake_apis.requests[-2][2]["force_refresh"] is True
    assert [m["text"]["content"] for m in fake_apis.pushed] == ["one", "two"]


def test_push_is_false_without_an_appsecret(make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**fake_apis.settings())
    services = app.extensions["wxbot.bot"].deps.services
    assert services.wechat_api is None
    assert services.push("user-1", Text("hi")) is False
    assert sum(fake_apis.hits.values()) == 0


def test_push_never_raises(make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    assert api_for(app, fake_apis, clock, secret="wrong").send("u", Text("x")) is False
    fake_apis.down.add("send")
    assert api_for(app, fake_apis, clock).send("u", Text("x")) is False
    engine = app.extensions["wxbot.engine"]
    unreachable = WeChatApi(APPID, APPSECRET, closed_port_url(), engine, 2.0, clock)
    assert unreachable.send("u", Text("x")) is False
    assert api_for(app, fake_apis, clock).send("u", Silent()) is False


def test_build_services_picks_the_sms_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings({}, {"sms_backend": "webhook", "sms_webhook_url": "http://x/sms"})
    assert type(build_services(settings, None).sms).__name__ == "WebhookSender"
    assert type(build_services(load_settings({}), None).sms).__name__ == "ConsoleSender"


def test_custom_message_bodies() -> None:
    song = Music("晴天", "周杰伦", "https://a/q.m4a")
    assert custom_message("u", song)["msgtype"] == "text"  # no thumbnail: a link instead
    assert "https://a/q.m4a" in json.dumps(custom_message("u", song), ensure_ascii=False)
    with_thumb = custom_message("u", Music("晴天", "周杰伦", "https://a/q.m4a", thumb_media_id="m"))
    assert with_thumb["music"] == {
        "title": "晴天",
        "description": "周杰伦",
        "musicurl": "https://a/q.m4a",
        "hqmusicurl": "https://a/q.m4a",
        "thumb_media_id": "m",
    }
    news = custom_message("u", News((Article("t", "d", "https://i", "https://u"),)))
    assert news["news"]["articles"] == [
        {"title": "t", "description": "d", "url": "https://u", "picurl": "https://i"}
    ]
    assert custom_message("u", Silent()) is None
    assert custom_message("u", TransferToHuman()) is None
