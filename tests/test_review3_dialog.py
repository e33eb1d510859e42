"""Review 3 of the message path's delivery logic: business-flow limits against the engine's
own replies, WeChat's last delivery when an earlier one never reached us, slow answers whose
outcome is lost to an earlier slow answer, and the last delivery racing the resumed work.
SQLite and MySQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say, state_of, text
from tests.test_slow_path import Delivery, deliveries_seen, wait_for
from wxbot.dialog import slow, words
from wxbot.dialog.handlers.weather import WAIT_WEATHER_CHOICE
from wxbot.messages.replies import Silent, Text, TransferToHuman
from wxbot.qa.importer import import_files

BEIJING_PREFIX = "北京市天气\n今天（01-15）：晴"


# --- a business flow's own limits ---------------------------------------------------------


@pytest.mark.parametrize(
    "interlude",
    [
        lambda bot: bot.handle(event("u1", "view", "https://example.com/menu")),
        lambda bot: say(bot, "u1", "继续"),
        lambda bot: say(bot, "u1", "语言 zh"),
    ],
    ids=["menu-link", "more", "language"],
)
def test_a_menu_link_mid_flow_does_not_hand_off_before_the_flows_own_limit(bot, interlude) -> None:  # type: ignore[no-untyped-def]
    # recharge_query allows 10 tries at its order number (WXBOT_MAX_ATTEMPTS is 3)
    say(bot, "u1", "查充值")
    for _ in range(3):
        assert "18 位数字" in content(say(bot, "u1", "12345"))
    assert not isinstance(interlude(bot), TransferToHuman)
    assert state_of(bot, "u1") == ("WAIT_RECHARGE_ORDER", 3)
    assert "18 位数字" in content(say(bot, "u1", "12345"))  # the flow goes on


# --- WeChat's last delivery --------------------------------------------------------------


def test_the_last_delivery_says_still_working_when_an_earlier_one_never_arrived(
    make_app, fake_apis, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The first delivery was lost (or left unanswered while the database blipped): the
    record counts two deliveries, but by its CreateTime the third is WeChat's last."""
    monkeypatch.setattr(slow, "HOLD_SECONDS", 2.0)  # what the bug costs, kept short
    bot = make_app(**fake_apis.settings(reply_deadline=0.3, http_timeout=20)).extensions[
        "wxbot.bot"
    ]
    msg = text("u1", "天气 北京", create_time=int(clock()))
    fake_apis.hold("forecast")
    clock.advance(5)
    second = Delivery(bot, msg)  # WeChat's second delivery
    fake_apis.wait_entered("forecast")
    clock.advance(5)
    third = bot.handle(msg)  # WeChat's third and last: 10 s after CreateTime
    fake_apis.release("forecast")
    second.join(10)
    assert content(third) == words.STILL_WORKING
    reply = content(say(bot, "u1", "你好"))  # so the result comes with the next message
    assert reply.startswith(words.LATE_RESULT) and BEIJING_PREFIX in reply


def _slow_bot(make_app: Any, fake_apis: FakeApis) -> Any:
    """A bot whose slow answers have time to come back within the reply deadline."""
    return make_app(**fake_apis.settings(reply_deadline=5, http_timeout=20)).extensions["wxbot.bot"]


def _held_city_lookup(make_app: Any, fake_apis: FakeApis) -> tuple[Any, Delivery]:
    """The bot, and u1's 「天气 朝阳」 (several places: a numbered list) held in its lookup."""
    bot = _slow_bot(make_app, fake_apis)
    fake_apis.hold("geocoding")
    city = Delivery(bot, text("u1", "天气 朝阳"))
    fake_apis.wait_entered("geocoding")
    return bot, city


# --- two slow answers of one user --------------------------------------------------------


def test_an_earlier_slow_answer_does_not_cancel_the_state_of_a_later_one(
    make_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    bot = _slow_bot(make_app, fake_apis)
    fake_apis.hold("music")
    song = Delivery(bot, text("u1", "点歌 晴天"))
    fake_apis.wait_entered("music")
    fake_apis.hold("geocoding")
    city = Delivery(bot, text("u1", "天气 朝阳"))  # several places: a numbered list
    fake_apis.wait_entered("geocoding")
    fake_apis.release("music")  # the song's answer arrives first (overtaken by 朝阳)
    song.join(10)
    fake_apis.release("geocoding")
    city.join(10)
    assert "1. 朝阳区" in content(city.reply)
    assert state_of(bot, "u1")[0] == WAIT_WEATHER_CHOICE
    assert "朝阳区" in content(say(bot, "u1", "1"))  # the pick is understood


def test_a_queued_late_result_does_not_cancel_the_state_of_a_slow_answer(
    make_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    bot, city = _held_city_lookup(make_app, fake_apis)
    bot.resumer.queue_late("u1", Text("结果：小雨"))  # an older message's result, kept meanwhile
    fake_apis.release("geocoding")
    city.join(10)
    assert "结果：小雨" in content(city.reply) and "1. 朝阳区" in content(city.reply)
    assert state_of(bot, "u1")[0] == WAIT_WEATHER_CHOICE


def test_a_location_report_meanwhile_does_not_cancel_the_state_of_a_slow_answer(
    make_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    # WeChat reports the user's location every 5 s while they are in the chat (if enabled)
    bot, city = _held_city_lookup(make_app, fake_apis)
    assert bot.handle(event("u1", "location", latitude=39.9, longitude=116.4)) == Silent()
    fake_apis.release("geocoding")
    city.join(10)
    assert "1. 朝阳区" in content(city.reply)
    assert state_of(bot, "u1")[0] == WAIT_WEATHER_CHOICE


# --- WeChat's last delivery racing the resumed work ---------------------------------------


def test_the_last_delivery_racing_the_resumed_work_does_not_lose_the_result(
    make_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    """The last delivery gives up waiting just as the work resumes: it must either get the
    result or mark the record late before the resumed work reads it (so it is kept)."""
    bot = make_app(**fake_apis.settings(reply_deadline=1.5, http_timeout=20)).extensions[
        "wxbot.bot"
    ]
    msg = text("u1", "天气 北京")
    armed, resuming, go = threading.Event(), threading.Event(), threading.Event()
    turn = bot.dialogue.turn

    def slow_turn(*args: Any, **kwargs: Any) -> Any:  # the resumed work, inside its lock
        if armed.is_set():
            resuming.set()
            go.wait(10)
        return turn(*args, **kwargs)

    bot.dialogue.turn = slow_turn
    fake_apis.hold("geocoding")
    first = Delivery(bot, msg)
    fake_apis.wait_entered("geocoding")
    second = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    third = Delivery(bot, msg)  # WeChat's last delivery, waiting for the result
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 3)
    armed.set()
    fake_apis.release("geocoding")
    assert resuming.wait(10)
    third.join(3)  # its deadline passes while the resumed work holds the user's lock
    go.set()
    for delivery in (first, second, third):
        delivery.join(10)
    assert third.reply is not None
    answered = content(third.reply) + content(say(bot, "u1", "你好"))
    assert BEIJING_PREFIX in answered


# --- a LOCATION report after a did-you-mean list ------------------------------------------

FAQ = Path(__file__).resolve().parent.parent / "knowledge" / "faq.txt"
OFFER = "营业时间"  # 1. 门店营业时间是几点 2. 人工客服几点上班 3. 可以指定送货时间吗


def test_a_location_report_keeps_the_did_you_mean_list(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    report = import_files(app.extensions["wxbot.engine"], [str(FAQ)], now=clock())
    assert report.written and not report.errors
    bot = app.extensions["wxbot.bot"]
    bot.deps.kb.confident = bot.deps.kb.sure = 99.0  # every match is a did-you-mean choice
    say(bot, "probe", OFFER)
    expected = content(say(bot, "probe", "2"))
    assert "2. " in content(say(bot, "u1", OFFER))
    assert bot.handle(event("u1", "location", latitude=39.9, longitude=116.4)) == Silent()
    assert content(say(bot, "u1", "2")) == expected
