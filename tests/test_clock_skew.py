"""Containers whose clocks disagree, sharing one database (SQLite and MySQL).

Each container's own wall clock is the world's plus a skew (NTP drift, or a host minutes
off); the database server's clock is the world's. Every time one container writes (a
context's expiry, an SMS code's, slow work's start) is read by another, so the bot keeps time
by the database's clock (wxbot.database_clock.DatabaseClock): a skewed container must behave
like the others. ``reference`` stands in for the SQL that reads the server's clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import FakeClock
from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of, text
from tests.phone_texts import phone
from tests.test_work_lost import LOST, _slow_bot
from wxbot.database_clock import DatabaseClock
from wxbot.db import make_engine
from wxbot.dialog import words
from wxbot.dialog.slow import Pending, work_lost_after
from wxbot.flows.phone import CODE_TTL, RESEND_AFTER
from wxbot.i18n import translate
from wxbot.models import Context
from wxbot.wechat.simulator import WeChatSimulator

TIMED_OUT = translate(words.TIMED_OUT, "zh")
BUSY = translate(words.BUSY, "zh")
TEN_MINUTES = 600.0
PHONE, MASKED = "13800138000", "138****8000"


@pytest.fixture
def engines(db_url: str) -> Iterator[list[Any]]:
    """Engines the clocks measure on when they have no connection of the bot's at hand."""
    made: list[Any] = []
    yield made
    for engine in made:
        engine.dispose()


@pytest.fixture
def container(make_app, clock: FakeClock, db_url: str, engines: list[Any]):  # type: ignore[no-untyped-def]
    """``container(skew, **settings)``: an app whose host clock is ``skew`` s off the world's."""

    def build(skew: float, **settings: Any) -> Any:
        engines.append(make_engine(db_url))
        host = DatabaseClock(
            engines[-1], local=lambda: clock() + skew, reference=lambda _conn: clock()
        )
        return make_app(clock=host, **settings)

    return build


def bot_of(app: Any) -> Any:
    return app.extensions["wxbot.bot"]


def context_exists(bot: Any, openid: str) -> bool:
    with bot.engine.connect() as conn:
        found = conn.execute(select(Context.openid).where(Context.openid == openid)).first()
    return found is not None


# --- conversation contexts (WXBOT_SESSION_TTL) --------------------------------------------------


@pytest.mark.parametrize("skew", [TEN_MINUTES, 60.0, 5.0])
def test_a_container_ahead_does_not_time_out_a_step_another_started(container, clock, skew) -> None:  # type: ignore[no-untyped-def]
    right, ahead = bot_of(container(0.0)), bot_of(container(skew))
    say(right, "u1", "天气")  # asks for the city
    assert state_of(right, "u1")[0] == "WAIT_WEATHER_CITY"
    clock.advance(TEN_MINUTES - 30)  # idle for less than the TTL, by the database's clock
    reply = content(say(ahead, "u1", "取消"))
    assert TIMED_OUT not in reply, reply
    assert reply == translate(words.CANCELLED, "zh")


@pytest.mark.parametrize("skew", [-TEN_MINUTES, -60.0])
def test_a_context_saved_by_a_container_behind_lives_its_ttl_elsewhere(
    container, clock, skew
) -> None:  # type: ignore[no-untyped-def]
    right, behind = bot_of(container(0.0)), bot_of(container(skew))
    say(behind, "u1", "天气")
    clock.advance(TEN_MINUTES - 30)
    assert TIMED_OUT not in content(say(right, "u1", "取消"))


def test_a_container_behind_still_expires_a_stale_context(container, clock) -> None:  # type: ignore[no-untyped-def]
    right, behind = bot_of(container(0.0)), bot_of(container(-TEN_MINUTES))
    say(right, "u1", "天气")
    clock.advance(TEN_MINUTES + 30)
    assert content(say(behind, "u1", "取消")).startswith(TIMED_OUT)


def test_a_container_ahead_evicts_no_live_context(container, clock) -> None:  # type: ignore[no-untyped-def]
    right, ahead = bot_of(container(0.0)), bot_of(container(TEN_MINUTES))
    say(right, "u1", "天气")
    clock.advance(60)
    ahead.clean_up()  # `wxbot sessions cleanup` run on the skewed host
    assert context_exists(right, "u1")
    clock.advance(TEN_MINUTES)
    assert ahead.clean_up()[0] == 1  # expired by the database's clock: goes


def test_the_session_cap_is_not_made_room_for_by_a_container_ahead(container, clock) -> None:  # type: ignore[no-untyped-def]
    right = bot_of(container(0.0, max_sessions=1))
    ahead = bot_of(container(TEN_MINUTES, max_sessions=1))
    say(right, "u1", "天气")
    clock.advance(60)
    assert content(say(ahead, "u2", "你好")) == BUSY  # u1's context is live: no room
    assert state_of(right, "u1")[0] == "WAIT_WEATHER_CITY"


# --- SMS codes: expiry and resend interval ---------------------------------------------------


@pytest.fixture
def sms_container(container, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return lambda skew: bot_of(container(skew, **fake_apis.settings(sms_backend="webhook")))


def test_a_code_sent_by_one_container_is_accepted_by_one_ahead(  # type: ignore[no-untyped-def]
    sms_container, fake_apis: FakeApis, clock
) -> None:
    right, ahead = sms_container(0.0), sms_container(CODE_TTL + 100)
    say(right, "u1", "绑定手机")
    assert content(say(right, "u1", PHONE)) == phone.SENT.format(phone=MASKED)
    clock.advance(30)
    assert content(say(ahead, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(phone=MASKED)


def test_a_container_behind_lets_a_resend_through_after_the_interval(  # type: ignore[no-untyped-def]
    sms_container, fake_apis: FakeApis, clock
) -> None:
    right, behind = sms_container(0.0), sms_container(-TEN_MINUTES)
    say(right, "u1", "绑定手机")
    say(right, "u1", PHONE)
    clock.advance(RESEND_AFTER + 1)
    assert content(say(behind, "u1", "重发")) == phone.SENT.format(phone=MASKED)
    assert len(fake_apis.sms) == 2


# --- slow work under way ---------------------------------------------------------------------


def test_a_container_ahead_does_not_call_work_under_way_lost(  # type: ignore[no-untyped-def]
    container, clock, monkeypatch
) -> None:
    right = _slow_bot(container(0.0))
    ahead = bot_of(container(work_lost_after(right.settings) + 60))
    # The work's worker took it and is still on it; WeChat's last delivery was told 「还在处理中」.
    monkeypatch.setattr(right.slow, "start", lambda *_: Pending(future=None, attempts=3))
    right.handle(text("u1", "慢"))
    clock.advance(10)
    assert LOST not in content(say(ahead, "u1", "你好"))


# --- the replay window of WeChat's signed requests ---------------------------------------------


@pytest.mark.parametrize("skew", [TEN_MINUTES, -TEN_MINUTES])
def test_a_container_minutes_off_still_serves_wechat(container, clock, skew) -> None:  # type: ignore[no-untyped-def]
    app = container(skew, token="skew-token", appid="wx00skew000000001")
    sim = WeChatSimulator("skew-token", "wx00skew000000001", None, "plain", clock=clock)
    client = app.test_client()
    assert content(sim.send(client, "天气", openid="u1"))  # judged by the database's clock
    assert state_of(bot_of(app), "u1")[0] == "WAIT_WEATHER_CITY"


def test_a_replay_outside_every_clock_s_window_is_refused(container, clock) -> None:  # type: ignore[no-untyped-def]
    app = container(TEN_MINUTES, token="skew-token", appid="wx00skew000000001")
    sim = WeChatSimulator("skew-token", "wx00skew000000001", None, "plain", clock=clock)
    params, body = sim.sign(sim.text("你好", "u1"))
    client = app.test_client()
    assert sim.request(client, "POST", params, body).status == 200
    clock.advance(400)  # the database's clock and the host's (600 s ahead) both say: too old
    answer = sim.request(client, "POST", params, body)
    assert answer.status == 403 and "window" in answer.text
