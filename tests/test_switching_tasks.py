"""A user who changes their mind mid-task: a message that plainly starts another task (its
command word first) leaves the waiting state instead of being read as the city, the phone
number or the code asked for (SQLite and MySQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from tests.phone_texts import phone
from tests.test_flows import FLOW as ADDRESS_FLOW
from wxbot.dialog.handlers import learn, music, weather
from wxbot.flows.models import FlowStat
from wxbot.messages.replies import Music, Text

ADMIN = "o_admin"
TODAY_BEIJING = "北京市天气\n今天（01-15）：晴，-6～5°C，降水概率 0%\n明天（01-16）：小雨，-2～3°C，降水概率 80%"


@pytest.fixture
def bot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    settings = fake_apis.settings(sms_backend="webhook", admin_openids=frozenset({ADMIN}))
    return make_app(**settings).extensions["wxbot.bot"]


def geocoded(fake: FakeApis) -> list[str]:
    return [q["name"] for route, q, _ in fake.requests if route == "geocoding"]


def flow_events(bot: Any, flow: str) -> dict[str, int]:
    table = FlowStat.__table__
    with bot.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.event, table.c.count).where(table.c.flow == flow, table.c.step == "")
        )
        return {event: int(count) for event, count in rows}


def test_a_flow_keyword_while_waiting_for_a_city_starts_the_flow(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "天气")) == weather.ASK_CITY
    assert content(say(bot, "u1", "绑定手机")) == phone.ASK_NUMBER
    assert state_of(bot, "u1") == ("WAIT_PHONE_NUMBER", 0)
    assert geocoded(fake_apis) == []  # 「绑定手机」 was never looked up as a city


def test_a_weather_request_mid_flow_is_answered_and_the_flow_left(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    assert content(say(bot, "u1", "天气 北京")) == TODAY_BEIJING
    assert state_of(bot, "u1") == ("WAIT_QUERY", 0)
    assert flow_events(bot, "bind_phone") == {"entered": 1, "cancelled": 1}


def test_a_song_request_while_waiting_for_the_code(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    assert content(say(bot, "u1", "13800138000")) == phone.SENT.format(phone="138****8000")
    reply = say(bot, "u1", "点歌 晴天")
    assert isinstance(reply, Music) and reply.title == "晴天"
    assert state_of(bot, "u1") == ("WAIT_QUERY", 0)


def test_another_flows_trigger_phrase_starts_that_flow(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    reply = content(say(bot, "u1", "查充值"))
    assert "18" in reply and state_of(bot, "u1") == ("WAIT_RECHARGE_ORDER", 0)
    assert flow_events(bot, "bind_phone")["cancelled"] == 1


def test_a_switch_starts_counting_rounds_afresh(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "天气")
    say(bot, "u1", "火星城")  # unknown: one failed attempt
    assert state_of(bot, "u1") == ("WAIT_WEATHER_CITY", 1)
    say(bot, "u1", "点歌")
    assert state_of(bot, "u1") == ("WAIT_MUSIC_INFO", 0)


@pytest.mark.parametrize("said", ["天气 上海", "上海天气"])
def test_the_waiting_tasks_own_command_is_its_own_answer(bot, fake_apis, said: str) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "天气")
    assert content(say(bot, "u1", said)).startswith("上海市天气")
    assert geocoded(fake_apis) == ["上海"]


def test_the_same_flows_keyword_restarts_it(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    """Typed again mid-flow, a flow's own keyword starts it over (before: the code question
    again, counted as a failed attempt towards a hand-off); no second code goes out."""
    say(bot, "u1", "绑定手机")
    say(bot, "u1", "13800138000")
    assert content(say(bot, "u1", "绑定手机")) == phone.ASK_NUMBER
    assert state_of(bot, "u1") == ("WAIT_PHONE_NUMBER", 0)
    assert len(fake_apis.sms) == 1


def test_a_city_that_only_ends_with_a_command_word_is_still_a_city(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    say(bot, "u1", "北京天气")  # not a phone number: a failed attempt, not a switch
    assert state_of(bot, "u1") == ("WAIT_PHONE_NUMBER", 1)
    assert geocoded(fake_apis) == []


def test_a_song_title_may_start_with_a_command_word(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, "u1", "点歌")) == music.ASK_SONG
    say(bot, "u1", "天气预报")
    terms = [q["term"] for route, q, _ in fake_apis.requests if route == "music"]
    assert terms == ["天气预报"] and geocoded(fake_apis) == []


def test_a_question_being_taught_may_start_with_a_command_word(bot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(bot, ADMIN, "学习")) == learn.ASK_QUESTION
    reply = content(say(bot, ADMIN, "天气预报在哪看"))
    assert reply.startswith(learn.ASK_ANSWER.format(question="天气预报在哪看"))
    assert state_of(bot, ADMIN)[0] == "WAIT_LEARN"


def test_teaching_interrupts_a_wait_only_for_those_who_may_teach(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, ADMIN, "天气")
    assert content(say(bot, ADMIN, "学习")) == learn.ASK_QUESTION
    say(bot, "u2", "天气")
    say(bot, "u2", "学习")  # not a teacher: read as a city, as before
    assert state_of(bot, "u2")[0] == "WAIT_WEATHER_CITY"


@pytest.fixture
def address_bot(make_app, fake_apis: FakeApis, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "address.yaml").write_text(ADDRESS_FLOW, encoding="utf-8")
    settings = fake_apis.settings(flows_dir=str(tmp_path / "flows"))
    return make_app(**settings).extensions["wxbot.bot"]


def test_a_flows_text_step_takes_a_command_word_as_its_answer(address_bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    for line in ("改地址", "公司", "XY2024", "是", "13800138000"):
        say(address_bot, "u1", line)
    assert content(say(address_bot, "u1", "点歌 晴天")).startswith("已把公司地址改为 点歌 晴天")
    assert fake_apis.hits["music"] == 0


def test_a_flows_choice_step_is_left_for_a_song(address_bot) -> None:  # type: ignore[no-untyped-def]
    say(address_bot, "u1", "改地址")
    assert content(say(address_bot, "u1", "点歌")) == music.ASK_SONG
    assert state_of(address_bot, "u1") == ("WAIT_MUSIC_INFO", 0)


def test_a_late_result_still_owed_survives_the_switch(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "天气")
    bot.resumer.queue_late("u1", Text("迟到的结果"))  # slow work finished after its deliveries
    reply = content(say(bot, "u1", "绑定手机"))
    assert "迟到的结果" in reply and phone.ASK_NUMBER in reply, reply
    assert "迟到的结果" not in content(say(bot, "u1", "取消"))  # delivered once
