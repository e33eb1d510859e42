"""Clocks against WeChat's and against themselves: which delivery a message is on when WeChat's
clock (CreateTime) is not ours, the shared access_token, the database's clock itself, and a
clock stepped back by NTP."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tests.conftest import FakeClock
from tests.fakeapis import APPID, APPSECRET, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, text
from wxbot import create_app
from wxbot.database_clock import CLOCK_SYNC_EVERY, DatabaseClock, database_time
from wxbot.db import make_engine
from wxbot.dialog import engine as engine_module
from wxbot.dialog import words
from wxbot.dialog.wechat_clock import MIN_SAMPLES, WeChatClock
from wxbot.i18n import translate
from wxbot.messages.replies import Withheld
from wxbot.migrations.schema import upgrade
from wxbot.services.budget import Budget
from wxbot.services.http import ServiceError
from wxbot.services.wechat_api import WeChatApi
from wxbot.services.wechat_errors import DOWN_PAUSE, ApiGate, Paused

CANCELLED = translate(words.CANCELLED, "zh")


class Mono:
    """A monotonic clock a test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- which delivery: CreateTime is WeChat's clock, ``now`` ours -------------------------------


def skewed_bot(make_app: Any, wechat: FakeClock, skew: float) -> Any:
    """A bot whose clock (the database server's) is ``skew`` s off WeChat's, after a minute of
    other users' first deliveries (each about half a second old by WeChat's clock)."""
    bot = make_app(clock=lambda: wechat() + skew).extensions["wxbot.bot"]
    for n in range(MIN_SAMPLES + 10):
        bot.handle(text(f"warm{n}", "你好", create_time=int(wechat() - 0.5)))
    return bot


def delivery(wechat: FakeClock, after: float, msg_id: str = "m1") -> Any:
    """A delivery ``after`` s after WeChat stamped the message (0: the first, 5, 10)."""
    return text("u1", "你好", msg_id=msg_id, create_time=int(wechat() - after))


@pytest.mark.parametrize("skew", [9.0, 5.0, 3.0, -3.0, -5.0, -60.0])
def test_each_delivery_is_placed_by_wechat_s_clock(make_app, clock, skew) -> None:  # type: ignore[no-untyped-def]
    bot = skewed_bot(make_app, clock, skew)
    assert not bot.is_last_delivery(delivery(clock, 0.6))
    assert not bot.is_last_delivery(delivery(clock, 5.6))
    assert bot.is_last_delivery(delivery(clock, 10.6))


def test_a_first_delivery_that_meets_a_blip_is_left_for_wechat_s_retry(
    make_app, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    bot = skewed_bot(make_app, clock, 9.0)  # our clock 9 s ahead: the first looks 9 s old

    def blip(*_args: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(bot.statements, "lock", blip)
    monkeypatch.setattr(engine_module, "WECHAT_GIVES_UP", 0.2)  # keep the test short
    reply = bot.handle(delivery(clock, 0.6))
    assert isinstance(reply, Withheld), reply  # not an apology: WeChat has two tries left


def test_few_deliveries_teach_nothing(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(clock=lambda: clock() + 9.0).extensions["wxbot.bot"]
    for n in range(MIN_SAMPLES - 1):
        bot.handle(text(f"warm{n}", "你好", create_time=int(clock())))
    assert bot.is_last_delivery(delivery(clock, 0.6))  # as before: 9 s old by our clock


def test_retries_and_forged_times_do_not_move_the_estimate() -> None:
    mono = Mono()
    wechat = WeChatClock(monotonic=mono)
    for n in range(60):  # every message delivered three times, the first 0.3 s old
        for age in (0.3, 5.3, 10.3):
            wechat.age(1000.0, 1000.0 + age + (n % 7) / 10)
    for _ in range(5):  # a few requests with a CreateTime from far away (a forged body)
        wechat.age(1000.0, 1000.0 - 250)
    mono.now += 2
    assert wechat.offset() == 0.0
    assert wechat.age(1000, 1010.4) >= engine_module.LAST_DELIVERY_AGE


def test_the_estimate_forgets_old_deliveries() -> None:
    mono = Mono()
    wechat = WeChatClock(monotonic=mono)
    for _ in range(30):
        wechat.age(1000.0, 1006.0)  # ours 5.5 s ahead
    assert wechat.offset() == pytest.approx(5.5)
    mono.now += 3600  # an hour without messages: nothing recent to tell by
    assert wechat.offset() == 0.0


# --- the shared access_token ---------------------------------------------------------------------


def test_a_container_ahead_does_not_fetch_a_token_that_is_still_good(
    fake_apis: FakeApis, clock, db_url
) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)

    def container(skew: float) -> WeChatApi:
        host = DatabaseClock(engine, local=lambda: clock() + skew, reference=lambda _: clock())
        return WeChatApi(APPID, APPSECRET, fake_apis.url, engine, Budget(read=2, connect=1), host)

    right, ahead = container(0.0), container(600.0)
    token = right.access_token()
    clock.advance(7200 - 300 - 200)  # 200 s before the refresh margin, by the database's clock
    assert ahead.access_token() == token
    assert fake_apis.hits["token"] == 1
    engine.dispose()


# --- the database's clock ----------------------------------------------------------------------


def test_the_app_keeps_time_by_the_database_s_clock(db_url) -> None:  # type: ignore[no-untyped-def]
    import time

    app = create_app({"database_url": db_url})
    engine = app.extensions["wxbot.engine"]
    upgrade(engine)
    bot = app.extensions["wxbot.bot"]
    assert isinstance(bot.clock, DatabaseClock)
    with engine.connect() as conn:
        assert abs(database_time(conn) - time.time()) < 1.0  # one host: the same clock
    assert content(say(bot, "u1", "你好"))
    assert abs(bot.clock.offset) < 1.0 and abs(bot.clock() - time.time()) < 1.0
    bot.close()
    engine.dispose()


def test_the_offset_is_measured_once_a_minute_and_a_host_step_is_corrected() -> None:
    world, mono, reads = FakeClock(), Mono(), []
    host = FakeClock(world() + 30)  # 30 s ahead

    def reference(_conn: Any) -> float:
        reads.append(1)
        return world()

    clock = DatabaseClock(None, local=host, reference=reference, monotonic=mono)
    assert clock() == host()  # nothing measured yet: the host's clock
    clock.sync(conn=object())  # type: ignore[arg-type]
    assert clock() == pytest.approx(world())
    clock.sync(conn=object())  # type: ignore[arg-type]
    assert len(reads) == 1  # not due yet
    host.now -= 3600  # NTP steps the host back an hour
    world.advance(1)
    mono.now += CLOCK_SYNC_EVERY
    clock.sync(conn=object())  # type: ignore[arg-type]
    assert clock() == pytest.approx(world())


def test_a_slow_measurement_is_not_taken() -> None:
    host = FakeClock()

    def slow(_conn: Any) -> float:
        host.advance(5)  # the answer took 5 s: the offset could be anything within them
        return host() + 100

    clock = DatabaseClock(None, local=host, reference=slow, monotonic=Mono())
    clock.sync(conn=object())  # type: ignore[arg-type]
    assert clock.offset == 0.0


def test_a_database_that_does_not_answer_leaves_the_last_offset() -> None:
    engine = make_engine("mysql+pymysql://nobody@127.0.0.1:1/none?connect_timeout=1")
    clock = DatabaseClock(engine, local=FakeClock(), monotonic=Mono())
    clock.offset = 2.0
    clock.sync()  # logged, not raised
    assert clock.offset == 2.0
    engine.dispose()


# --- a clock stepped back ----------------------------------------------------------------------


def test_a_push_pause_is_not_stretched_by_a_clock_stepped_back() -> None:
    clock, elapsed = FakeClock(), Mono()
    gate = ApiGate(clock, monotonic=elapsed)
    gate.unreachable(ServiceError("wechat_api", "timed out"))
    with pytest.raises(Paused):
        gate.check()
    clock.now -= 3600  # NTP steps the clock back an hour
    clock.advance(DOWN_PAUSE - 1)
    elapsed.now += DOWN_PAUSE - 1
    with pytest.raises(Paused):
        gate.check()
    clock.advance(1)
    elapsed.now += 1
    gate.check()  # asks WeChat again after the pause, not an hour later


def test_a_clock_stepped_back_an_hour_breaks_no_conversation(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]
    say(bot, "u1", "天气")
    clock.now -= 3600  # NTP steps the clock back an hour: the context is not stale
    assert content(say(bot, "u1", "取消")) == CANCELLED
    say(bot, "u1", "天气")
    assert bot.clean_up() == (0, 0)
    clock.now += 3600 + 700  # and forward past the TTL: the step times out as it would have
    assert content(say(bot, "u1", "取消")).startswith(translate(words.TIMED_OUT, "zh"))
