"""Unit tests of the outbound clients against the local fake APIs (no database, no internet)."""

from __future__ import annotations

import logging

import pytest

from tests.fakeapis import FakeApis, closed_port_url, fake_apis_fixture  # noqa: F401
from wxbot.services.http import ServiceError, TTLCache
from wxbot.services.music import MusicClient
from wxbot.services.sms import ConsoleSender, WebhookSender, make_sender
from wxbot.services.weather import Place, WeatherClient, describe_code, pick_place


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def weather_client(fake: FakeApis, clock: Clock | None = None) -> WeatherClient:
    return WeatherClient(fake.url, fake.url, http_timeout=5, clock=clock)


# --- weather ---------------------------------------------------------------------------------


def test_geocode_returns_places_in_order(fake_apis: FakeApis) -> None:
    places = weather_client(fake_apis).geocode("朝阳")
    assert [p.label for p in places] == ["朝阳区（中国 北京市）", "朝阳市（中国 辽宁省）"]
    route, query, _ = fake_apis.requests[-1]
    assert route == "geocoding"
    assert query["name"] == "朝阳" and query["language"] == "zh"


def test_geocode_unknown_name_is_empty(fake_apis: FakeApis) -> None:
    assert weather_client(fake_apis).geocode("不存在的地方") == []


def test_pick_place_prefers_a_much_bigger_city_and_asks_otherwise(fake_apis: FakeApis) -> None:
    client = weather_client(fake_apis)
    beijing = client.geocode("北京")
    assert len(beijing) == 2
    assert pick_place(beijing) == beijing[0]
    assert pick_place(client.geocode("朝阳")) is None
    assert pick_place(client.geocode("上海")) is not None
    assert pick_place([]) is None


def test_forecast_in_readable_chinese(fake_apis: FakeApis) -> None:
    forecast = weather_client(fake_apis).forecast(39.9075, 116.39723, "北京市")
    text = forecast.to_text()
    assert text.splitlines() == [
        "北京市天气",
        "今天（01-15）：晴，-6～5°C，降水概率 0%",
        "明天（01-16）：小雨，-2～3°C，降水概率 80%",
    ]
    _, query, _ = fake_apis.requests[-1]
    assert query["daily"] == (
        "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"
    )
    assert query["timezone"] == "auto" and query["forecast_days"] == "2"


def test_forecast_is_cached_for_ten_minutes(fake_apis: FakeApis) -> None:
    clock = Clock()
    client = weather_client(fake_apis, clock)
    client.forecast(39.9075, 116.39723, "北京市")
    client.forecast(39.9075, 116.39723, "北京")  # same ~1 km cell, other name
    assert fake_apis.hits["forecast"] == 1
    clock.now += 599
    client.forecast(39.9075, 116.39723, "北京市")
    assert fake_apis.hits["forecast"] == 1
    clock.now += 2
    client.forecast(39.9075, 116.39723, "北京市")
    assert fake_apis.hits["forecast"] == 2


def test_geocoding_is_cached(fake_apis: FakeApis) -> None:
    client = weather_client(fake_apis)
    client.geocode("上海")
    client.geocode("上海")
    assert fake_apis.hits["geocoding"] == 1


def test_service_down_raises_service_error_and_is_not_cached(fake_apis: FakeApis) -> None:
    client = weather_client(fake_apis)
    fake_apis.down.add("forecast")
    with pytest.raises(ServiceError) as info:
        client.forecast(31.2, 121.4, "上海")
    assert info.value.service == "weather" and "503" in info.value.reason
    fake_apis.down.clear()
    assert client.forecast(31.2, 121.4, "上海").days


def test_unreachable_service_raises_service_error() -> None:
    client = WeatherClient(closed_port_url(), closed_port_url(), http_timeout=2)
    with pytest.raises(ServiceError, match="unreachable"):
        client.geocode("北京")


def test_one_retry_after_a_dropped_connection(fake_apis: FakeApis) -> None:
    client = weather_client(fake_apis)
    fake_apis.drop_next["geocoding"] = 1
    assert client.geocode("上海")[0].name == "上海市"
    assert fake_apis.hits["geocoding"] == 2


def test_only_one_retry(fake_apis: FakeApis) -> None:
    client = weather_client(fake_apis)
    fake_apis.drop_next["geocoding"] = 2
    with pytest.raises(ServiceError):
        client.geocode("上海")
    assert fake_apis.hits["geocoding"] == 2


def test_malformed_forecast_is_a_service_error(fake_apis: FakeApis) -> None:
    fake_apis.daily = {"nothing": []}
    with pytest.raises(ServiceError, match="daily"):
        weather_client(fake_apis).forecast(1.0, 2.0, "x")


def test_wmo_codes() -> None:
    assert describe_code(0) == "晴"
    assert describe_code(95) == "雷阵雨"
    assert describe_code(1234) == "天气未知"
    assert describe_code(None) == "天气未知"


def test_place_round_trips_through_json_dict() -> None:
    place = Place("朝阳区", 39.92, 116.44, "中国", "北京市", population=3)
    assert Place.from_dict(place.to_dict()) == place
    assert Place.from_dict({**place.to_dict(), "extra": 1}) == place


# --- music -----------------------------------------------------------------------------------


def test_music_search(fake_apis: FakeApis) -> None:
    songs = MusicClient(fake_apis.url, http_timeout=5).search("晴天")
    assert songs[0].title == "晴天" and songs[0].artist == "周杰伦"
    assert songs[0].url == "https://audio.example/qingtian.m4a"
    _, query, _ = fake_apis.requests[-1]
    assert query["media"] == "music" and query["entity"] == "song" and query["limit"] == "5"


def test_music_search_skips_results_without_a_playable_url(fake_apis: FakeApis) -> None:
    fake_apis.songs["稻香"] = [
        {"trackName": "稻香", "artistName": "周杰伦"},
        {"trackName": "稻香 (Live)", "artistName": "周杰伦", "previewUrl": "https://a/b.m4a"},
    ]
    songs = MusicClient(fake_apis.url, http_timeout=5).search("稻香")
    assert [s.title for s in songs] == ["稻香 (Live)"]


def test_music_empty_search(fake_apis: FakeApis) -> None:
    assert MusicClient(fake_apis.url, http_timeout=5).search("没有这首歌") == []
    assert MusicClient(fake_apis.url, http_timeout=5).search("   ") == []


def test_music_down(fake_apis: FakeApis) -> None:
    fake_apis.down.add("music")
    with pytest.raises(ServiceError):
        MusicClient(fake_apis.url, http_timeout=5).search("晴天")


# --- sms -------------------------------------------------------------------------------------


def test_webhook_sender_posts_json(fake_apis: FakeApis) -> None:
    WebhookSender(f"{fake_apis.url}/sms", http_timeout=5).send("13800138000", "123456")
    assert fake_apis.sms[0]["phone"] == "13800138000"
    assert fake_apis.sms[0]["code"] == "123456"
    assert "123456" in fake_apis.sms[0]["text"]


def test_webhook_sender_reports_failure(fake_apis: FakeApis) -> None:
    fake_apis.down.add("sms")
    with pytest.raises(ServiceError):
        WebhookSender(f"{fake_apis.url}/sms", http_timeout=5).send("13800138000", "1")


def test_webhook_sender_does_not_resend_after_a_dropped_connection(fake_apis: FakeApis) -> None:
    fake_apis.drop_next["sms"] = 1  # the request may have arrived: a second SMS would annoy
    with pytest.raises(ServiceError):
        WebhookSender(f"{fake_apis.url}/sms", http_timeout=5).send("13800138000", "1")
    assert fake_apis.hits["sms"] == 1


def test_console_sender_keeps_the_code_out_of_the_log(caplog: pytest.LogCaptureFixture) -> None:
    sender = make_sender("console", None, 3.0)
    assert isinstance(sender, ConsoleSender)
    with caplog.at_level(logging.WARNING):
        sender.send("13800138000", "654321")
    # was: the number and the code at WARNING (logs are shipped and shared)
    assert "138****8000" in caplog.text and "654321" not in caplog.text
    assert "13800138000" not in caplog.text and sender.sent["13800138000"] == "654321"
    for i in range(ConsoleSender.KEEP + 5):
        sender.send(f"139{i:08d}", "1")
    assert len(sender.sent) == ConsoleSender.KEEP and "13800138000" not in sender.sent


# --- cache -----------------------------------------------------------------------------------


def test_ttl_cache_expires_and_evicts() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(10, maxsize=2, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1
    clock.now += 10
    assert cache.get("a") is None


def test_ttl_cache_does_not_keep_errors() -> None:
    cache: TTLCache[int] = TTLCache(10)

    def fail() -> int:
        raise ServiceError("x", "down")

    with pytest.raises(ServiceError):
        cache.get_or_fetch("k", fail)
    assert cache.get_or_fetch("k", lambda: 5) == 5
