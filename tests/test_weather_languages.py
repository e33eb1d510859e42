"""Weather replies in every reply language, place names included (SQLite and MySQL).

Found by the i18n review (2027-01): geocoding was always asked for Chinese names, so an
English user read "Weather in 北京市" and choices like 「朝阳区（中国 北京市）」, with a cached
Chinese name served to everyone; the temperature range was written 「-6～5°C」 (a full-width
tilde) and the late-result separator 「——」 in every language.
"""

from __future__ import annotations

import pytest

from tests.fakeapis import DAILY, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, location, say
from tests.test_i18n_journeys import written_in
from wxbot.dialog import delivery, words
from wxbot.dialog.context import ContextRow
from wxbot.dialog.handlers import weather
from wxbot.i18n import LANGUAGES, translate
from wxbot.messages.replies import Text
from wxbot.services.weather import HEADER, Day, Forecast, WeatherClient

# What the fake geocoding answers for 北京 and 朝阳 in each reply language (Tagalog users are
# given the English names: see wxbot.services.weather.GEOCODING_LANGUAGES).
BEIJING = {"zh": "北京市", "en": "Beijing", "tl": "Beijing", "ja": "北京市", "th": "ปักกิ่ง"}
CHAOYANG = {
    "zh": ["朝阳区（中国 北京市）", "朝阳市（中国 辽宁省）"],
    "en": ["Chaoyang (Beijing, China)", "Chaoyang (Liaoning, China)"],
    "tl": ["Chaoyang (Beijing, China)", "Chaoyang (Liaoning, China)"],
    "ja": ["朝陽区（中国・北京市）", "朝陽市（中国・遼寧省）"],
    "th": ["เขตเฉาหยาง (ปักกิ่ง, จีน)", "เฉาหยาง (มณฑลเหลียวหนิง, จีน)"],
}
TODAY_RANGE = {
    "zh": "-6～5°C",
    "en": "-6 to 5°C",
    "tl": "-6 hanggang 5°C",
    "ja": "-6〜5°C",
    "th": "-6 ถึง 5°C",
}


def client(fake: FakeApis) -> WeatherClient:
    return WeatherClient(fake.url, fake.url, http_timeout=5)


def asked_languages(fake: FakeApis) -> list[str]:
    return [q.get("language", "") for r, q, _ in fake.requests if r == "geocoding"]


@pytest.fixture
def wbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings()).extensions["wxbot.bot"]


# --- the client: names asked for in the user's language, cached per language --------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_geocoding_asks_for_names_in_the_users_language(fake_apis: FakeApis, lang: str) -> None:
    places = client(fake_apis).geocode("北京", language=lang)
    assert places[0].name == BEIJING[lang]
    assert asked_languages(fake_apis) == [{"tl": "en"}.get(lang, lang)]


def test_places_are_cached_per_language(fake_apis: FakeApis) -> None:
    weather_client = client(fake_apis)
    assert weather_client.geocode("北京")[0].name == "北京市"  # Chinese, as before
    assert weather_client.geocode("北京", language="en")[0].name == "Beijing"
    assert weather_client.geocode("北京", language="tl")[0].name == "Beijing"  # en's answer
    assert weather_client.geocode("北京", language="zh")[0].name == "北京市"
    assert asked_languages(fake_apis) == ["zh", "en"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_place_labels_read_in_each_language(fake_apis: FakeApis, lang: str) -> None:
    places = client(fake_apis).geocode("朝阳", language=lang)
    assert [p.label_in(lang) for p in places] == CHAOYANG[lang]
    if lang in ("en", "tl", "th"):  # no Chinese name, no full-width bracket
        assert all(written_in(label, lang) for label in CHAOYANG[lang])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_temperature_range_is_written_for_each_language(lang: str) -> None:
    days = tuple(
        Day(date, "晴", t_min, t_max, 0)
        for date, t_min, t_max in zip(
            DAILY["time"], DAILY["temperature_2m_min"], DAILY["temperature_2m_max"], strict=True
        )
    )
    text = Forecast(BEIJING[lang], days).to_text(lang)
    assert TODAY_RANGE[lang] in text.splitlines()[1]
    assert written_in(text, lang)
    if lang == "zh":
        assert text.splitlines()[1] == "今天（01-15）：晴，-6～5°C，降水概率 0%"


# --- through the bot ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_weather_journey_reads_in_the_users_language(wbot, lang: str) -> None:  # type: ignore[no-untyped-def]
    say(wbot, "u1", f"language {lang}")
    report = content(say(wbot, "u1", "weather 北京"))
    assert report.startswith(translate(HEADER, lang, place=BEIJING[lang]) + "\n")
    assert TODAY_RANGE[lang] in report and written_in(report, lang), report

    listed = content(say(wbot, "u1", "weather 朝阳"))
    choices = "\n".join(f"{i}. {label}" for i, label in enumerate(CHAOYANG[lang], 1))
    assert listed == translate(weather.CHOOSE, lang, city="朝阳", choices=choices)
    picked = content(say(wbot, "u1", "2"))
    chaoyang = CHAOYANG[lang][1].split("（")[0].split(" (")[0]
    assert picked.startswith(translate(HEADER, lang, place=chaoyang) + "\n")
    assert written_in(picked, lang), picked

    here = content(wbot.handle(location("u1", 39.9, 116.4)))
    assert TODAY_RANGE[lang] in here and written_in(here, lang), here


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_choice_typed_as_its_label_is_taken(wbot, fake_apis: FakeApis, lang: str) -> None:  # type: ignore[no-untyped-def]
    """The label as listed (full-width brackets and all, which the handler's NFKC turns into
    ASCII ones) picks that place, not a lookup of a city called 「朝阳市（中国 辽宁省）」."""
    say(wbot, "u1", f"language {lang}")
    say(wbot, "u1", "weather 朝阳")
    picked = content(say(wbot, "u1", CHAOYANG[lang][1]))
    chaoyang = CHAOYANG[lang][1].split("（")[0].split(" (")[0]
    assert picked.startswith(translate(HEADER, lang, place=chaoyang) + "\n")
    assert [q["latitude"] for r, q, _ in fake_apis.requests if r == "forecast"] == ["41.5700"]


def test_a_chinese_users_cached_place_is_not_served_to_an_english_user(
    wbot, fake_apis: FakeApis
) -> None:  # type: ignore[no-untyped-def]
    assert content(say(wbot, "zh-user", "天气 北京")).startswith("北京市天气\n")
    say(wbot, "en-user", "language en")
    assert content(say(wbot, "en-user", "weather 北京")).startswith("Weather in Beijing\n")
    assert content(say(wbot, "zh-user2", "北京天气")).startswith("北京市天气\n")
    assert asked_languages(fake_apis) == ["zh", "en"]  # one lookup per language, then cached


# --- late results ------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_late_result_separator_is_in_the_users_language(lang: str) -> None:
    ctx = ContextRow("u1", slots={delivery.OUTBOX: [Text("LATE").to_dict()]})
    reply = delivery.compose(ctx, Text("NOW"), {}, 2048, language=lang)
    late, result, separator, now = reply.content.split("\n\n")  # type: ignore[attr-defined]
    assert (late, result, now) == (translate(words.LATE_RESULT, lang), "LATE", "NOW")
    assert separator == translate(delivery.LATE_SEPARATOR, lang)
    assert (separator == "——") == (lang == "zh")
    assert ctx.slots == {}
