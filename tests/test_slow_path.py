"""WeChat's 5-second window end to end: a slow fake API, WeChat's retries of one message,
late delivery on the next message or by customer-service push (SQLite and MySQL).

The fake server holds requests until the test releases them, so nothing here depends on
how fast the machine is; reply_deadline is small only to keep the suite quick.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, text
from tests.phone_texts import phone
from wxbot.dialog import words
from wxbot.messages.replies import Music, Reply, Silent, Text
from wxbot.models import SeenMessage

BEIJING_PREFIX = "北京市天气\n今天（01-15）：晴"


@pytest.fixture
def slow_app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    def build(**extra: Any):  # type: ignore[no-untyped-def]
        return make_app(**fake_apis.settings(reply_deadline=0.3, http_timeout=20, **extra))

    return build


def deliveries_seen(bot: Any, dedup_key: str) -> int:
    with bot.engine.connect() as conn:
        found = conn.execute(
            select(SeenMessage.attempts).where(SeenMessage.dedup_key == dedup_key)
        ).scalar_one_or_none()
    return found or 0


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


class Delivery(threading.Thread):
    """One HTTP delivery by WeChat: handle() in a thread, its reply kept."""

    def __init__(self, bot: Any, msg: Any) -> None:
        super().__init__(daemon=True)
        self.bot, self.msg = bot, msg
        self.reply: Reply | None = None
        self.start()

    def run(self) -> None:
        self.reply = self.bot.handle(self.msg)


def three_deliveries_while_slow(bot: Any, fake: FakeApis, msg: Any, route: str) -> tuple:
    """WeChat's three deliveries of ``msg`` while ``route`` hangs; returns (d1, d2, third)."""
    fake.hold(route)
    first = Delivery(bot, msg)
    fake.wait_entered(route)
    second = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    third = bot.handle(msg)  # the last delivery: still nothing ready
    return first, second, third


def test_result_ready_by_a_retry_is_answered_from_the_dedup_record(slow_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app().extensions["wxbot.bot"]
    msg = text("u1", "天气 北京")
    fake_apis.hold("geocoding")
    first = Delivery(bot, msg)
    fake_apis.wait_entered("geocoding")
    second = Delivery(bot, msg)  # WeChat gave up on the first after 5 s and retried
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    fake_apis.release("geocoding")
    first.join(10)
    second.join(10)
    assert content(second.reply).startswith(BEIJING_PREFIX)
    assert first.reply == second.reply
    assert fake_apis.hits["geocoding"] == 1  # the retry did not start the work again
    assert content(bot.handle(msg)).startswith(BEIJING_PREFIX)  # any later retry too


def test_still_working_on_the_last_retry_then_delivered_on_the_next_message(
    slow_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app().extensions["wxbot.bot"]
    msg = text("u1", "天气 北京")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "forecast")
    assert content(third) == words.STILL_WORKING
    fake_apis.release("forecast")
    first.join(10)
    second.join(10)
    assert content(bot.handle(msg)).startswith(BEIJING_PREFIX)  # a late retry gets the result
    reply = content(say(bot, "u1", "你好"))
    assert reply.startswith(words.LATE_RESULT) and BEIJING_PREFIX in reply
    assert BEIJING_PREFIX not in content(say(bot, "u1", "你好"))  # delivered once


def test_late_result_is_pushed_when_the_customer_service_api_is_available(
    slow_app, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app(appsecret=APPSECRET).extensions["wxbot.bot"]
    msg = text("u1", "点歌 晴天")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "music")
    assert content(third) == words.STILL_WORKING
    fake_apis.release("music")
    first.join(10)
    second.join(10)
    assert isinstance(first.reply, Music)
    assert len(fake_apis.pushed) == 1
    pushed = fake_apis.pushed[0]
    assert pushed["touser"] == "u1" and "晴天" in pushed["text"]["content"]
    assert "https://audio.example/qingtian.m4a" in pushed["text"]["content"]
    assert words.LATE_RESULT not in content(say(bot, "u1", "你好"))  # not delivered twice


def test_push_refused_falls_back_to_the_next_message(slow_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app(appsecret=APPSECRET).extensions["wxbot.bot"]
    fake_apis.down.add("send")
    msg = text("u1", "天气 北京")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "geocoding")
    fake_apis.release("geocoding")
    first.join(10)
    second.join(10)
    assert fake_apis.pushed == []
    assert BEIJING_PREFIX in content(say(bot, "u1", "你好"))


def test_slow_sms_gateway_does_not_lose_the_flow(slow_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app(sms_backend="webhook").extensions["wxbot.bot"]
    say(bot, "u1", "绑定手机")
    msg = text("u1", "13800138000")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "sms")
    assert content(third) == words.STILL_WORKING
    fake_apis.release("sms")
    first.join(10)
    second.join(10)
    code = fake_apis.sms[-1]["code"]
    reply = content(say(bot, "u1", code))  # the code arrived by SMS meanwhile
    assert phone.BOUND.format(phone="138****8000") in reply


def test_user_moving_on_keeps_their_new_state(slow_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app().extensions["wxbot.bot"]
    msg = text("u1", "天气 北京")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "geocoding")
    assert content(say(bot, "u1", "点歌")).endswith("发「取消」退出。")  # now waiting for a song
    fake_apis.release("geocoding")
    first.join(10)
    second.join(10)
    reply = say(bot, "u1", "晴天")  # still the music question, and the weather arrives too
    assert reply != Silent()
    assert isinstance(reply, Music | Text)


def test_a_late_result_survives_a_next_message_that_is_itself_slow(slow_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = slow_app().extensions["wxbot.bot"]
    msg = text("u1", "天气 北京")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "geocoding")
    fake_apis.release("geocoding")
    first.join(10)
    second.join(10)
    # the next message starts deferred work of its own (a music search)
    song = say(bot, "u1", "点歌 晴天")
    assert isinstance(song, Music) and song.title == "晴天"  # the new answer goes now
    reply = content(say(bot, "u1", "你好"))  # the late one waits for a text reply
    assert reply.startswith(words.LATE_RESULT) and BEIJING_PREFIX in reply


def test_slow_flow_webhook_is_delivered_with_the_next_message_in_the_users_language(
    slow_app, fake_apis, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{fake_apis.url}/recharge")
    bot = slow_app().extensions["wxbot.bot"]
    say(bot, "u1", "check my recharge")
    msg = text("u1", "202501150830123456")
    first, second, third = three_deliveries_while_slow(bot, fake_apis, msg, "recharge")
    assert (
        content(third)
        == "Still working on it. Send any message in a little while to get the result."
    )
    fake_apis.release("recharge")
    first.join(10)
    second.join(10)
    reply = content(say(bot, "u1", "thanks"))
    assert reply.startswith("[Result of your last request]")
    assert "100 CNY was credited" in reply
