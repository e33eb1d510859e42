"""WeChat events as the dialogue handles them (SQLite and MariaDB): a subscribe that leaves a
business flow counts it as cancelled in the flow's funnel (it was counted as timed out), and
what an unsubscribe must forget when the same user follows again within seconds: slow work
under way for the old subscription, a did-you-mean list waiting.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapis import APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say, state_of, text
from tests.test_slow_path import Delivery, deliveries_seen, wait_for
from wxbot.dialog import words
from wxbot.flows import stats as flow_stats
from wxbot.messages.replies import Silent, Text
from wxbot.qa import writer

ORDER_ASK = "请提供 18 位充值订单号（在「我的 - 订单」里可以找到）。"


@pytest.fixture
def app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(reply_deadline=0.3, http_timeout=20, appsecret=APPSECRET))


@pytest.fixture
def bot(app):  # type: ignore[no-untyped-def]
    return app.extensions["wxbot.bot"]


def funnel(app: Any, later: float = 0.0) -> dict[str, Any]:
    bot = app.extensions["wxbot.bot"]
    flows = list(app.extensions["wxbot.flows"].flows)
    with bot.engine.connect() as conn:
        found = flow_stats.funnel(conn, flows, bot.clock() + later)
    whole = found["recharge_query"]
    return {k: v for k, v in whole.items() if k != "steps"}


@pytest.mark.parametrize("scene", ["", "store_17", "天气", "查充值"])
def test_a_subscribe_that_leaves_a_flow_counts_it_as_cancelled(app, bot, scene: str) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "查充值")) == ORDER_ASK
    welcome = content(bot.handle(event("u1", "subscribe", scene)))  # the step is left
    assert welcome.startswith(bot.settings.welcome.split("\n")[0])
    again = 2 if scene == "查充值" else 1  # the scene starts the same flow afresh
    figures = funnel(app, later=bot.settings.session_ttl + 1)  # past every expiry
    assert figures["entered"] == again
    assert figures["cancelled"] == 1
    assert figures["timed_out"] == again - 1


def test_no_late_result_of_an_old_subscription_reaches_the_new_one(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    msg = text("u1", "天气 北京")
    fake_apis.hold("geocoding")
    first = Delivery(bot, msg)
    fake_apis.wait_entered("geocoding")
    Delivery(bot, msg)  # the second delivery, polling the dedup record
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    third = bot.handle(msg)  # WeChat's last delivery: 「还在处理中」, the result is owed
    assert content(third) == words.STILL_WORKING
    assert bot.handle(event("u1", "unsubscribe")) == Silent()
    welcome = bot.handle(event("u1", "subscribe"))
    assert isinstance(welcome, Text)
    fake_apis.release("geocoding")
    first.join(10)
    assert first.reply == Silent()  # (the second polls the forgotten record until it gives up)
    assert fake_apis.pushed == []  # not pushed to someone who unsubscribed meanwhile
    reply = content(say(bot, "u1", "你好"))
    assert "北京" not in reply and words.WORK_LOST not in reply  # nor kept for them
    assert state_of(bot, "u1") == ("WAIT_QUERY", 0)


def test_a_did_you_mean_list_is_forgotten_with_the_subscription(bot) -> None:  # type: ignore[no-untyped-def]
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["营业时间"], "9 点到 21 点。", now=0, source="api")
    listed = content(say(bot, "u1", "周末营业时间一样吗"))
    assert "营业时间" in listed and "1" in listed  # a did-you-mean list waits
    assert bot.handle(event("u1", "unsubscribe")) == Silent()
    bot.handle(event("u1", "subscribe"))
    assert "9 点到 21 点" not in content(say(bot, "u1", "1"))  # no list any more


def test_events_in_one_second_follow_and_leave_and_follow_again(bot) -> None:  # type: ignore[no-untyped-def]
    with bot.engine.begin() as conn:
        writer.create_entry(conn, ["营业时间"], "9 点到 21 点。", now=0, source="api")
    second = 1_800_000_000
    follow = event("u1", "subscribe", create_time=second)
    welcome = content(bot.handle(follow))
    assert bot.handle(follow) == Text(welcome)  # WeChat's retry: the same reply
    hours = event("u1", "click", "营业时间", create_time=second)  # the same second
    assert content(bot.handle(hours)) == "9 点到 21 点。"
    assert content(bot.handle(event("u1", "click", "查充值", create_time=second))) == ORDER_ASK
    assert bot.handle(event("u1", "unsubscribe", create_time=second)) == Silent()
    # following again in that second is the same (sender, CreateTime, Event, EventKey) as the
    # first follow: forgotten with everything else, so it is no retry and gets a welcome
    assert content(bot.handle(follow)) == welcome
    assert state_of(bot, "u1") == ("WAIT_QUERY", 0)


@pytest.mark.parametrize(
    "words_",
    [
        ("🌤天气", "WAIT_WEATHER_CITY"),
        ("🎵点歌", "WAIT_MUSIC_INFO"),
        ("[Smile] 点歌", "WAIT_MUSIC_INFO"),
    ],
)
def test_a_task_word_after_an_emoji_starts_the_task_typed_or_clicked(bot, words_) -> None:  # type: ignore[no-untyped-def]
    word, waits = words_
    say(bot, "u1", word)  # was: 「🌤」 looked up as a city (a failed attempt); 点歌 unknown
    assert state_of(bot, "u1") == (waits, 0)
    bot.handle(event("u2", "click", word))  # a menu key, as typed
    assert state_of(bot, "u2") == (waits, 0)
    assert content(say(bot, "u3", "查充值")) == ORDER_ASK
    bot.handle(event("u3", "click", word))  # mid-step: another task's command starts it
    assert state_of(bot, "u3") == (waits, 0)


def test_an_unsubscribe_that_leaves_a_flow_counts_it_as_cancelled(app, bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "查充值")) == ORDER_ASK
    assert isinstance(bot.handle(event("u1", "unsubscribe")), Silent)
    figures = funnel(app, later=bot.settings.session_ttl + 1)
    assert (figures["entered"], figures["cancelled"], figures["timed_out"]) == (1, 1, 0)


def test_an_unsubscribe_after_the_step_expired_leaves_it_timed_out(app, bot, clock) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "查充值")) == ORDER_ASK
    clock.advance(bot.settings.session_ttl + 1)
    bot.handle(event("u1", "unsubscribe"))
    figures = funnel(app)
    assert (figures["entered"], figures["cancelled"], figures["timed_out"]) == (1, 0, 1)
