"""Deadlines of outbound work: a weather lookup (up to three GETs in a row) fits its service's
budget as a whole, and a slow access_token fetch does not hold SQLite's write lock (which
would stall every user's message). SQLite and MySQL. Each test failed before its fix."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say
from wxbot.dialog.handlers import weather
from wxbot.services.budget import Budget
from wxbot.services.http import Deadline, ServiceError
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
