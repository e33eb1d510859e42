"""The console dashboard's daily figures against what really happened (SQLite and MariaDB):
a known mix of messages, WeChat's retries and events across midnight in WXBOT_TIMEZONE, sent
through the real /wechat callback, and every figure of 概览 checked; and the two ways the
counts went wrong: a hand-off that happens when slow work comes back (a third unknown city)
was never counted, and a returning user whose context had been evicted counted as new again.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.console_helpers import ADMIN_TOKEN
from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import event, say
from wxbot.messages.replies import Silent, Text, TransferToHuman
from wxbot.qa import writer
from wxbot.stats import day_of, read_counts, zone
from wxbot.wechat.simulator import WeChatSimulator

TOKEN, APPID = "hunt-token", "wx00hunt000000001"
TZ = "America/New_York"  # not the default: the days must follow the setting


def stored(bot: Any, when: float) -> Counter[str]:
    bot.stats.flush()
    day = day_of(when, zone(bot.settings.timezone))
    with bot.engine.connect() as conn:
        one = date.fromisoformat(day)
        return read_counts(conn, one, one).get(day, Counter())


@pytest.fixture
def wbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings()).extensions["wxbot.bot"]


def test_a_hand_off_when_slow_work_comes_back_is_counted(wbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "天气")
    say(wbot, "u1", "火星城")  # each city is looked up as slow work: the failure comes back
    say(wbot, "u1", "水星城")
    assert say(wbot, "u1", "木星城") == TransferToHuman()  # the third: handed to a human
    assert stored(wbot, clock()) == Counter(messages=4, new_users=1, handoffs=1)


def test_a_returning_user_whose_context_was_evicted_is_no_new_user(wbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "你好")
    clock.advance(wbot.settings.session_ttl + 10)
    assert wbot.clean_up()[0] == 1  # the expired context is evicted (the language stays)
    say(wbot, "u1", "你好")
    assert stored(wbot, clock()) == Counter(messages=2, new_users=1, unknown=2)


def test_someone_who_unsubscribed_and_follows_again_counts_again(wbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "你好")
    assert wbot.handle(event("u1", "unsubscribe")) == Silent()  # everything about them goes
    assert isinstance(wbot.handle(event("u1", "subscribe")), Text)
    assert stored(wbot, clock())["new_users"] == 2


# --- the dashboard against a known mix ----------------------------------------------------


@pytest.fixture
def app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(
        **fake_apis.settings(token=TOKEN, appid=APPID, admin_token=ADMIN_TOKEN, timezone=TZ)
    )


def _midnight(clock_now: float) -> float:
    """The next local midnight in TZ after ``clock_now``."""
    local = datetime.fromtimestamp(clock_now, ZoneInfo(TZ))
    return datetime.combine(
        local.date() + timedelta(days=1), datetime.min.time(), ZoneInfo(TZ)
    ).timestamp()


def _figure(page: str, pattern: str) -> str:
    found = re.search(pattern, page)
    assert found, f"{pattern!r} not on the dashboard"
    return found.group(1)


def test_every_dashboard_figure_matches_a_known_mix(app, clock) -> None:  # type: ignore[no-untyped-def]
    engine, bot = app.extensions["wxbot.engine"], app.extensions["wxbot.bot"]
    with engine.begin() as conn:
        writer.create_entry(conn, ["营业时间"], "9 点到 21 点。", now=0, source="api")
        writer.create_entry(conn, ["营业执照", "执照"], "见官网。", now=0, source="api")
    client = app.test_client()
    sim = WeChatSimulator(TOKEN, APPID, clock=clock)

    def post(message: dict[str, Any], times: int = 1) -> Any:
        replies = {repr(sim.post(client, message)) for _ in range(times)}  # WeChat's retries
        assert len(replies) == 1, replies  # every retry gets the same reply
        return next(iter(replies))

    midnight = _midnight(clock())
    while datetime.fromtimestamp(midnight, ZoneInfo(TZ)).weekday() in (0,):  # not a Monday
        midnight += 86_400
    clock.now = midnight - 30  # yesterday, 23:59:30 in TZ (the same week)
    post(sim.text("营业时间", "u_old"))  # yesterday: a message, a new user, answered
    clock.now = midnight + 10  # today, 00:00:10
    post(sim.text("营业时间", "u_old"), times=3)  # one message, three deliveries
    post(sim.event("subscribe", "", "u_a"), times=3)  # a new user, no message
    post(sim.event("CLICK", "营业时间", "u_a"), times=2)  # a menu key: answered, no message
    post(sim.event("VIEW", "https://example.com/menu", "u_a"))  # nothing
    post(sim.event("LOCATION", "", "u_a", Latitude=39.9, Longitude=116.4, Precision=30))
    post(sim.event("SCAN", "store_17", "u_a", Ticket="T"))  # a tracking code: nothing
    post(sim.text("周末营业时间一样吗", "u_b"))  # a new user; suggested
    post(sim.text("火星天气预报准不准", "u_b"), times=2)  # unknown
    post(sim.text("人工", "u_b"))  # a hand-off
    post(sim.event("unsubscribe", "", "u_c"))  # never seen: no new user
    for city in ("天气", "火星城", "水星城", "木星城"):  # a new user; a hand-off on the third
        clock.advance(1)
        post(sim.text(city, "u_d"))
    clock.advance(bot.settings.session_ttl + 10)
    bot.clean_up()  # every context expired and evicted
    post(sim.text("营业时间", "u_old"))  # back: answered, no new user
    post(sim.text("营业执照", "u_b"))  # back: answered
    # today: messages u_old 2, u_b 4, u_d 4; new users u_a, u_b, u_d; answered u_old 2,
    # u_a's click, u_b 1; suggested 1; unknown 1; hand-offs u_b, u_d
    today = Counter(messages=10, new_users=3, answered=4, suggested=1, unknown=1, handoffs=2)
    assert stored(bot, clock()) == today
    assert stored(bot, midnight - 30) == Counter(messages=1, new_users=1, answered=1)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {ADMIN_TOKEN}"
    page = client.get("/admin/").text
    assert _figure(page, r'id="messages-today">(\d+)<') == "10"
    assert (
        _figure(page, r'messages-today">\d+</strong><span class="muted small">新用户 (\d+)') == "3"
    )
    assert _figure(page, r'id="messages-week">(\d+)<') == "11"
    assert "新用户 4 · 转人工 2" in page
    # the week's questions: answered 5, suggested 1, unknown 1 (of 7)
    assert _figure(page, r"本周已回答</span><strong>([^<]*)<") == "71%"
    assert "5 个问题" in page
    assert _figure(page, r"给出建议</span><strong>([^<]*)<") == "14%"
    assert _figure(page, r"不会回答</span><strong>([^<]*)<") == "14%"
    assert _figure(page, r"知识库</span><strong>(\d+)<") == "2"
    assert "条目 · 3 个问法" in page
    assert _figure(page, r"进行中的会话</span><strong>(\d+)<") == "2"  # u_old, u_b
    assert "共存 2" in page
    day = datetime.fromtimestamp(clock(), ZoneInfo(TZ)).date()
    assert f"{day.isoformat()[5:]}：不会回答 1，给出建议 1" in page  # today's bar
    yesterday = (day - timedelta(days=1)).isoformat()[5:]
    assert f"{yesterday}：不会回答 0，给出建议 0" in page
    assert '营业时间</a> <span class="count">4 次' in page  # hits: u_old 3, u_a's click 1
