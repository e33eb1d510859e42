"""Outbound time budgets that fit WeChat's window: a slow upstream still reaches the user,
a dead one fails fast with the friendly reply (SQLite and MySQL)."""

from __future__ import annotations

import time

import pytest

from tests.fakeapis import FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from tests.helpers import content, text
from tests.test_slow_path import BEIJING_PREFIX, Delivery, deliveries_seen, wait_for
from wxbot.config import ConfigError, load_settings
from wxbot.services import budget_for


def test_a_forecast_that_takes_7_seconds_reaches_the_user(make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    """Default budgets (no timeout overrides): WeChat's first delivery is dropped after 5 s,
    its retry is answered with the forecast once the upstream answers at 7 s."""
    bot = make_app(**fake_apis.settings()).extensions["wxbot.bot"]
    fake_apis.delay["forecast"] = 7.0
    msg = text("o_slow", "天气 北京", create_time=int(time.time()))
    sent = time.monotonic()
    first = Delivery(bot, msg)  # WeChat gives up on it after 5 s ...
    fake_apis.wait_entered("forecast")
    time.sleep(max(0.0, sent + 5.0 - time.monotonic()))
    second = Delivery(bot, msg)  # ... and delivers the message again
    wait_for(lambda: deliveries_seen(bot, msg.dedup_key) >= 2)
    second.join(15)
    first.join(15)
    assert content(second.reply).startswith(BEIJING_PREFIX)
    assert fake_apis.hits["forecast"] == 1


def test_a_dead_upstream_fails_fast_with_the_friendly_reply(make_app, fake_apis) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(**fake_apis.settings(weather_url=closed_port_url())).extensions["wxbot.bot"]
    started = time.monotonic()
    reply = content(bot.handle(text("o_dead", "天气 北京")))
    assert "天气服务暂时不可用" in reply
    assert time.monotonic() - started < 4  # within the first delivery, not after the budget


def test_budgets_are_per_service() -> None:
    settings = load_settings(
        {
            "WXBOT_HTTP_TIMEOUT": "10",
            "WXBOT_TIMEOUTS": "music=4, llm=12",
            "WXBOT_CONNECT_TIMEOUT": "1",
        }
    )
    assert budget_for(settings, "music").timeout == (1.0, 4.0)
    assert budget_for(settings, "llm").timeout == (1.0, 12.0)
    assert budget_for(settings, "weather").timeout == (1.0, 10.0)  # not listed: the default
    assert budget_for(load_settings({}), "weather").read >= 10  # slow but alive still answers
    with pytest.raises(ConfigError, match="WXBOT_TIMEOUTS"):
        load_settings({"WXBOT_TIMEOUTS": "music"})


def test_the_llm_and_the_flows_webhook_follow_the_budgets() -> None:
    from wxbot.llm import build_fallback
    from wxbot.services import build_services

    llm = {"WXBOT_LLM_URL": "http://127.0.0.1:9/v1", "WXBOT_LLM_MODEL": "m"}
    own = build_fallback(load_settings({**llm, "WXBOT_LLM_TIMEOUT": "9"}))
    assert own is not None and own.client.timeout == (2.0, 9.0)  # its own settings first
    tuned = build_fallback(load_settings({**llm, "WXBOT_TIMEOUTS": "llm=7"}))
    assert tuned is not None and tuned.client.timeout == (2.0, 7.0)
    services = build_services(load_settings({"WXBOT_TIMEOUTS": "webhook=6"}), engine=None)  # type: ignore[arg-type]
    assert services.webhook is not None and services.webhook.timeout == (1.5, 6.0)
