"""LLM answers inside WeChat's 5-second window: on a retry, after "still working" with the
next message, by customer-service push, and a real 7-second answer with the default timeouts
(SQLite and MySQL). The fake holds requests until released, except in the real-time test."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapis import APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, say, text
from tests.test_slow_path import Delivery, deliveries_seen, wait_for
from wxbot.dialog import words

QUESTION = "你们的服务器在哪个城市"
ANSWER = f"LLM答：{QUESTION}"


@pytest.fixture
def held(make_app, fake_llm: FakeLlm, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    """An app whose LLM hangs until released; reply_deadline small to keep the suite quick."""

    def build(**extra: Any):  # type: ignore[no-untyped-def]
        settings = fake_llm.settings(**fake_apis.settings(reply_deadline=0.3, **extra))
        bot = make_app(**settings).extensions["wxbot.bot"]
        fake_llm.hold()
        return bot

    return build


def test_an_answer_ready_by_wechats_retry_is_delivered_on_it(held, fake_llm) -> None:  # type: ignore[no-untyped-def]
    bot = held()
    msg = text("o_u", QUESTION)
    first = Delivery(bot, msg)
    fake_llm.wait_entered()
    second = Delivery(bot, msg)  # WeChat gave up on the first after 5 s and retried
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    fake_llm.release()
    first.join(10)
    second.join(10)
    assert content(second.reply) == ANSWER and first.reply == second.reply
    assert len(fake_llm.requests) == 1  # the retry did not ask again


def test_still_working_on_the_last_retry_then_delivered_with_the_next_message(
    held, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    bot = held()
    msg = text("o_u", QUESTION)
    first = Delivery(bot, msg)
    fake_llm.wait_entered()
    second = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    assert content(bot.handle(msg)) == words.STILL_WORKING  # WeChat's third and last delivery
    fake_llm.release()
    first.join(10)
    second.join(10)
    reply = content(say(bot, "o_u", "你好"))  # the next message carries the late answer
    assert reply.startswith(words.LATE_RESULT) and ANSWER in reply


def test_a_late_answer_is_pushed_when_the_customer_service_api_exists(
    held, fake_llm, fake_apis
) -> None:  # type: ignore[no-untyped-def]
    bot = held(appsecret=APPSECRET)
    msg = text("o_u", QUESTION)
    first = Delivery(bot, msg)
    fake_llm.wait_entered()
    second = Delivery(bot, msg)
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    assert content(bot.handle(msg)) == words.STILL_WORKING
    fake_llm.release()
    first.join(10)
    second.join(10)
    wait_for(lambda: len(fake_apis.pushed) == 1)
    assert fake_apis.pushed[0]["touser"] == "o_u"
    assert fake_apis.pushed[0]["text"]["content"] == ANSWER


def test_a_seven_second_answer_reaches_the_user_with_the_default_timeouts(
    make_app, fake_llm
) -> None:  # type: ignore[no-untyped-def]
    """Real time, default settings: WeChat waits 5 s per delivery and retries; an answer that
    takes 7 s must not be cut off by our read timeout and arrives on the first retry."""
    bot = make_app(**fake_llm.settings()).extensions["wxbot.bot"]
    fake_llm.delay = 7.0
    msg = text("o_u", QUESTION)
    first = Delivery(bot, msg)
    first.join(5.0)  # WeChat gives up on a delivery after 5 s ...
    assert first.reply is None
    second = Delivery(bot, msg)  # ... and delivers the same message again
    second.join(5.0)
    assert second.reply is not None and content(second.reply) == ANSWER
    assert len(fake_llm.requests) == 1
    first.join(10)  # the first delivery's thread got the same answer, for nobody
    assert first.reply == second.reply
