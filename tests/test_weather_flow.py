"""Weather through the engine, against the fake Open-Meteo server (SQLite and MySQL)."""

from __future__ import annotations

import pytest

from tests.fakeapis import FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, location, say, state_of
from wxbot.dialog.handlers import weather
from wxbot.i18n import translate
from wxbot.messages.replies import Silent, TransferToHuman
from wxbot.services.weather import HEADER

TODAY_BEIJING = "北京市天气\n今天（01-15）：晴，-6～5°C，降水概率 0%\n明天（01-16）：小雨，-2～3°C，降水概率 80%"


@pytest.fixture
def wbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings()).extensions["wxbot.bot"]


def forecast_points(fake: FakeApis) -> list[tuple[str, str]]:
    return [(q["latitude"], q["longitude"]) for r, q, _ in fake.requests if r == "forecast"]


@pytest.mark.parametrize("ask", ["天气 北京", "北京天气", "北京今天天气怎么样", "weather 北京"])
def test_city_in_the_request(wbot, ask: str) -> None:  # type: ignore[no-untyped-def]
    assert content(say(wbot, "u1", ask)) == TODAY_BEIJING
    assert state_of(wbot, "u1") == ("WAIT_QUERY", 0)


def test_missing_city_waits_for_it(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(wbot, "u1", "天气")) == weather.ASK_CITY
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CITY", 0)
    assert fake_apis.hits["geocoding"] == 0
    reply = content(say(wbot, "u1", "上海"))
    assert reply.startswith("上海市天气\n今天（01-15）：晴")
    assert state_of(wbot, "u1") == ("WAIT_QUERY", 0)


def test_unknown_city_asks_again_as_a_failed_attempt(wbot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(wbot, "u1", "天气 火星城")) == weather.UNKNOWN_CITY.format(city="火星城")
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CITY", 1)
    assert content(say(wbot, "u1", "水星城")) == weather.UNKNOWN_CITY.format(city="水星城")
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CITY", 2)
    assert content(say(wbot, "u1", "北京")) == TODAY_BEIJING
    assert state_of(wbot, "u1") == ("WAIT_QUERY", 0)


def test_three_unknown_cities_hand_off(wbot) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "天气")
    say(wbot, "u1", "火星城")
    say(wbot, "u1", "水星城")
    assert say(wbot, "u1", "木星城") == TransferToHuman()
    assert state_of(wbot, "u1")[0] == "WAIT_QUERY"


def test_city_suffix_is_retried_without_it(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(wbot, "u1", "天气 上海市")).startswith("上海市天气")
    names = [q["name"] for r, q, _ in fake_apis.requests if r == "geocoding"]
    assert names == ["上海市", "上海"]


def test_several_places_let_the_user_choose(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    reply = content(say(wbot, "u1", "朝阳天气"))
    assert (
        reply
        == "找到多个叫「朝阳」的地方，请回复序号：\n1. 朝阳区（中国 北京市）\n2. 朝阳市（中国 辽宁省）"
    )
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CHOICE", 0)
    assert content(say(wbot, "u1", "3")) == weather.BAD_CHOICE.format(n=2)
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CHOICE", 1)
    assert content(say(wbot, "u1", "２")).startswith("朝阳市天气\n今天")  # full-width digit
    assert forecast_points(fake_apis) == [("41.5700", "120.4500")]
    assert state_of(wbot, "u1") == ("WAIT_QUERY", 0)


def test_choice_by_name_or_another_city(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "天气 朝阳")
    assert content(say(wbot, "u1", "朝阳区")).startswith("朝阳区天气")
    say(wbot, "u1", "天气 朝阳")
    assert content(say(wbot, "u1", "上海")).startswith("上海市天气")


def test_location_message_gives_the_weather_there(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    reply = content(wbot.handle(location("u1", 23.1291, 113.2644, "广州市海珠区")))
    assert reply.startswith("广州市海珠区天气\n今天（01-15）：晴")
    assert forecast_points(fake_apis) == [("23.1291", "113.2644")]
    assert fake_apis.hits["geocoding"] == 0


def test_a_location_report_leaves_a_waiting_city_question_to_the_user(
    wbot, fake_apis: FakeApis
) -> None:  # type: ignore[no-untyped-def]
    """WeChat sends LOCATION reports on its own (on entering the chat, every 5 s): one that
    arrived after 「天气」 used to answer the question with the weather here, and the city the
    user then typed went to the knowledge base. Only a location the user sends answers it."""
    say(wbot, "u1", "天气")
    assert wbot.handle(event("u1", "location", latitude=31.2, longitude=121.5)) == Silent()
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CITY", 0)
    assert sum(fake_apis.hits.values()) == 0


def test_unrequested_location_reports_are_ignored(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert wbot.handle(event("u1", "location", latitude=31.2, longitude=121.5)) == Silent()
    assert sum(fake_apis.hits.values()) == 0


def test_non_weather_questions_are_not_claimed(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "天气冷了怎么办")
    assert fake_apis.hits["geocoding"] == 0
    assert state_of(wbot, "u1")[0] == "WAIT_QUERY"


@pytest.mark.parametrize("route", ["geocoding", "forecast"])
def test_service_down_says_so_and_ends_the_flow(wbot, fake_apis: FakeApis, route: str) -> None:  # type: ignore[no-untyped-def]
    fake_apis.down.add(route)
    assert content(say(wbot, "u1", "天气 北京")) == weather.UNAVAILABLE
    assert state_of(wbot, "u1") == ("WAIT_QUERY", 0)
    fake_apis.down.clear()
    assert content(say(wbot, "u1", "天气 北京")) == TODAY_BEIJING


def test_unreachable_service_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    url = closed_port_url()
    bot = make_app(weather_url=url, geocoding_url=url).extensions["wxbot.bot"]
    assert content(say(bot, "u1", "天气 北京")) == weather.UNAVAILABLE


def test_repeated_weather_is_served_from_the_cache(wbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "天气 北京")
    say(wbot, "u2", "北京天气")
    assert fake_apis.hits["geocoding"] == 1 and fake_apis.hits["forecast"] == 1


def test_parse_request() -> None:
    assert weather.parse_request("天气") == ""
    assert weather.parse_request("天气怎么样") == ""
    assert weather.parse_request("明天天气") == ""
    assert weather.parse_request("我想知道北京的天气") == "北京"
    assert weather.parse_request("帮我查一下杭州的天气怎么样") == "杭州"
    assert weather.parse_request("天气：上海") == "上海"
    assert weather.parse_request("今天天气好吗") is None
    assert weather.parse_request("你好") is None


@pytest.mark.parametrize(
    "ask, language",
    [
        ("北京の天気", "ja"),
        ("天気 北京", "ja"),
        ("北京の天気は？", "ja"),
        ("สภาพอากาศ 北京", "th"),
        ("สภาพอากาศที่北京", "th"),
    ],
)
def test_asked_in_japanese_or_thai_answered_in_it(wbot, fake_apis, ask: str, language: str) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", f"language {language}")
    reply = content(say(wbot, "u1", ask))
    beijing = {"ja": "北京市", "th": "ปักกิ่ง"}[language]  # geocoding asked in their language
    assert reply.startswith(translate(HEADER, language, place=beijing) + "\n"), reply
    assert [q["name"] for r, q, _ in fake_apis.requests if r == "geocoding"] == ["北京"]


@pytest.mark.parametrize("ask", ["天気", "天気はどうですか", "พยากรณ์อากาศ"])
def test_the_japanese_or_thai_word_alone_asks_for_the_city(wbot, ask: str) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", "language ja")
    assert content(say(wbot, "u1", ask)) == translate(weather.ASK_CITY, "ja")
    assert state_of(wbot, "u1") == ("WAIT_WEATHER_CITY", 0)


@pytest.mark.parametrize(
    "said", ["天气真好", "天气不错啊", "天气好热", "天気がいいですね", "สภาพอากาศดีมาก"]
)
def test_talk_about_the_weather_is_not_a_city(wbot, fake_apis, said: str) -> None:  # type: ignore[no-untyped-def]
    """It was looked up as a city (「没有找到「真好」」) and left the user waiting for one."""
    say(wbot, "u1", said)
    assert fake_apis.hits["geocoding"] == 0
    assert state_of(wbot, "u1")[0] == "WAIT_QUERY"


@pytest.mark.parametrize(
    "said, city",
    [
        ("天气太原", "太原"),
        ("天气 冷水江", "冷水江"),
        ("สภาพอากาศวันนี้", ""),
        ("天気 さいたま", "さいたま"),
    ],
)
def test_cities_that_start_like_small_talk_are_still_cities(said: str, city: str) -> None:
    assert weather.parse_request(said) == city
