"""Weather: 「天气 北京」, 「北京天气」, or 「天气」 alone (→ WAIT_WEATHER_CITY), also 「weather 北京」,
「東京の天気」 and 「สภาพอากาศ กรุงเทพ」; a location message (shared by the user) also works,
in WAIT_QUERY and while we wait for the city. WeChat's periodic LOCATION reports never do:
the user did not send them (one arriving seconds after 「想查哪个城市？」 would answer for
them, and the city they then type would land in the knowledge base). Several places of that
name → WAIT_WEATHER_CHOICE, where the user answers with a number (「2」, 「第二个」).

Every lookup is a Deferred: the HTTP calls run outside the user's lock and WeChat's 5 s.
The message that starts a lookup does not count as a round; its resumed outcome does, so an
unknown city counts as exactly one failed attempt.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from wxbot.dialog import kinds
from wxbot.dialog.flow import WAIT_QUERY, Deferred, Handler, Outcome, Router, Turn
from wxbot.dialog.handlers import query
from wxbot.i18n import DEFAULT_LANGUAGE, N_, numerals
from wxbot.messages.replies import Silent, Text
from wxbot.services.weather import Forecast, Place, pick_place

WAIT_WEATHER_CITY = "WAIT_WEATHER_CITY"
WAIT_WEATHER_CHOICE = "WAIT_WEATHER_CHOICE"

ASK_CITY = N_("想查哪个城市的天气？请发城市名（如：北京），也可以直接发送位置。发「取消」退出。")
UNKNOWN_CITY = N_("没有找到「{city}」，请换个写法再发一次城市名（如：上海、杭州）。")
CHOOSE = N_("找到多个叫「{city}」的地方，请回复序号：\n{choices}")
BAD_CHOICE = N_("请回复 1 到 {n} 之间的序号，或发送其他城市名。")
UNAVAILABLE = N_("天气服务暂时不可用，请稍后再试。")
HERE = N_("当前位置")
MAX_CITY_CHARS = 20

# The command word in Chinese, English, Japanese (天気) and Thai (สภาพอากาศ, พยากรณ์อากาศ):
# weather reports are written in every reply language, so they can be asked for in them too.
_PREFIX = re.compile(
    r"^(?:查询?|看看)?(?P<word>天气预报|天气|天気予報|天気|weather|พยากรณ์อากาศ|สภาพอากาศ)"
    r"\s*(?:[:：,，]|ที่|ใน)?\s*(?P<rest>.*)$",
    re.I,
)
_SUFFIX = re.compile(r"^(?P<rest>.*?)(?:的|の)?(?:天气预报|天气|天気予報|天気)$")
_TRAILING = re.compile(
    r"(?:怎么样|咋样|如何|情况|预报|は(?:どう(?:ですか)?)?|เป็น(?:อย่างไร|ยังไง|ไง))+$"
)
# Talk about the weather, not a request: a particle or a predicate right after the word
# (「天气真好」, 「天气不错」, 「天気がいいね」, 「สภาพอากาศดีมาก」). Chinese needs whole words:
# 「天气太原」 asks for 太原.
_CHATTING = re.compile(
    r"^(?:真好|真不错|不错|很好|很热|很冷|好热|好冷|太热|太冷|挺好|挺热|挺冷|越来越|变了|变冷|变热"
    r"|晴朗|热死|冷死|[がもをにでと]|って|[はの]\S|ดี|ไม่|ร้อน|หนาว|เย็น|แย่)"
)
_TIME_WORDS = re.compile(r"今天|明天|今日|明日|现在|目前|这两天|最近|วันนี้|พรุ่งนี้")
_FILLER = re.compile(r"^(?:请问|我想知道|想知道|帮我查一?下|查一?下|查查|告诉我)")
# 「天气冷了怎么办」 is a question for the knowledge base, not a city called 冷了怎么办.
_QUESTION = re.compile(r"怎么|什么|为什么|吗|呢|会不会|能不能|适合|穿")
_PUNCT = " \t\r\n。.!！?？,，、~～"


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip(_PUNCT)


def clean_city(text: str) -> str:
    """「北京今天」 → 「北京」: drop time words and filler around a city name."""
    text = _FILLER.sub("", _TRAILING.sub("", _normal(text)))
    return _TIME_WORDS.sub("", text).strip(_PUNCT)


def parse_request(text: str) -> str | None:
    """The city of a weather request ("" = none given), or None when it is not one."""
    text = _TRAILING.sub("", _normal(kinds.without_leading_emoji(text)))
    prefixed = _PREFIX.match(text)
    if prefixed is not None and _CHATTING.match(text[prefixed.end("word") :]):
        return None
    match = prefixed or _SUFFIX.match(text)
    if match is None:
        return None
    rest = match.group("rest")
    if _QUESTION.search(rest):
        return None
    city = clean_city(rest)
    return city if len(city) <= MAX_CITY_CHARS else None


# --- the slow part (runs in the engine's thread pool: HTTP only, no database) -----------------


@dataclass(frozen=True)
class Lookup:
    city: str
    forecast: Forecast | None = None
    choices: list[dict[str, Any]] = field(default_factory=list)


def find_weather(services: Any, city: str, language: str = DEFAULT_LANGUAGE) -> Lookup:
    """The forecast for ``city``, or the places to choose from, named in ``language``."""
    # one deadline for the whole chain (geocode, maybe again, forecast): slow answers must
    # not add up past WeChat's window; a stand-in client without lookup() is used as it is
    start = getattr(services.weather, "lookup", None)
    weather = start() if start is not None else services.weather
    places = weather.geocode(city, language=language)
    if not places and len(city) > 2 and city[-1] in "市县区省":
        places = weather.geocode(city[:-1], language=language)  # 「杭州市」 is indexed as 杭州
    place = pick_place(places)
    if place is not None:
        return Lookup(city, forecast=weather.forecast(place.latitude, place.longitude, place.name))
    return Lookup(city, choices=[p.to_dict() for p in places])


def _resume_lookup(turn: Turn, result: Any) -> Outcome:
    if not isinstance(result, Lookup):  # the exception from the work: down, slow, nonsense
        return Outcome(Text(turn.t(UNAVAILABLE)), WAIT_QUERY)
    if result.forecast is not None:
        return Outcome(Text(result.forecast.to_text(turn.language)), WAIT_QUERY)
    if not result.choices:
        # No such place, but asked where a city was waited for: perhaps a question for the
        # knowledge base (「营业时间」), answered as a business flow's step answers one: the
        # answer and the city question again, not a failed attempt towards a human.
        answer = query.knowledge_answer(turn) if turn.state == WAIT_WEATHER_CITY else None
        if answer is not None:
            reply = Text(f"{answer}\n\n{turn.t(ASK_CITY)}")
            return Outcome(reply, WAIT_WEATHER_CITY, counts=False)
        reply = Text(turn.t(UNKNOWN_CITY, city=result.city))
        return Outcome(reply, WAIT_WEATHER_CITY, failed=True)
    labels = [Place.from_dict(d).label_in(turn.language) for d in result.choices]
    choices = "\n".join(f"{i}. {label}" for i, label in enumerate(labels, 1))
    return Outcome(
        Text(turn.t(CHOOSE, city=result.city, choices=choices)),
        WAIT_WEATHER_CHOICE,
        slots={"places": result.choices, "city": result.city},
    )


def _resume_forecast(turn: Turn, result: Any) -> Outcome:
    if not isinstance(result, Forecast):
        return Outcome(Text(turn.t(UNAVAILABLE)), WAIT_QUERY)
    return Outcome(Text(result.to_text(turn.language)), WAIT_QUERY)


# --- handlers --------------------------------------------------------------------------------


def _unavailable(turn: Turn) -> Outcome | None:
    if getattr(turn.deps.services, "weather", None) is None:
        return Outcome(Text(turn.t(UNAVAILABLE)), WAIT_QUERY)
    return None


def _lookup(turn: Turn, city: str, state: str) -> Outcome:
    services, language = turn.deps.services, turn.language
    return _unavailable(turn) or Outcome(
        None,
        state,
        slots=turn.slots if state != WAIT_QUERY else None,
        counts=False,
        deferred=Deferred(
            work=lambda: find_weather(services, city, language), resume=_resume_lookup
        ),
    )


def _forecast_at(turn: Turn, lat: float, lon: float, name: str, state: str) -> Outcome:
    weather = getattr(turn.deps.services, "weather", None)
    return _unavailable(turn) or Outcome(
        None,
        state,
        slots=turn.slots if state != WAIT_QUERY else None,
        counts=False,
        deferred=Deferred(work=lambda: weather.forecast(lat, lon, name), resume=_resume_forecast),
    )


def _location(turn: Turn) -> tuple[float, float, str] | None:
    """The place of a location message the user shared (not of a LOCATION event)."""
    msg = turn.msg
    if msg.kind != "location" or msg.latitude is None or msg.longitude is None:
        return None
    return msg.latitude, msg.longitude, _normal(msg.label)[:MAX_CITY_CHARS] or turn.t(HERE)


def route(turn: Turn) -> Outcome | None:
    where = _location(turn)
    if where is not None:
        return _forecast_at(turn, *where, WAIT_QUERY)
    if turn.msg.is_event:
        return None
    city = parse_request(turn.text)
    if city is None:
        return None
    if not city:
        return Outcome(Text(turn.t(ASK_CITY)), WAIT_WEATHER_CITY)
    return _lookup(turn, city, WAIT_QUERY)


def wait_city(turn: Turn) -> Outcome:
    where = _location(turn)
    if where is not None:
        return _forecast_at(turn, *where, WAIT_WEATHER_CITY)
    if turn.msg.is_event:
        return Outcome(Silent(), WAIT_WEATHER_CITY, slots=turn.slots, counts=False)
    city = parse_request(turn.text)
    if city == "":  # 「天气」 again, without a city: the question again, not a city called 天气
        return Outcome(Text(turn.t(ASK_CITY)), WAIT_WEATHER_CITY, counts=False)
    city = city or clean_city(turn.text)
    if not city or len(city) > MAX_CITY_CHARS:
        return Outcome(Text(turn.t(ASK_CITY)), WAIT_WEATHER_CITY, failed=True)
    return _lookup(turn, city, WAIT_WEATHER_CITY)


def wait_choice(turn: Turn) -> Outcome:
    places = [Place.from_dict(d) for d in turn.slots.get("places", [])]
    if not places:  # slots lost (should not happen): start the question over
        return Outcome(Text(turn.t(ASK_CITY)), WAIT_WEATHER_CITY)
    where = _location(turn)
    if where is not None:
        return _forecast_at(turn, *where, WAIT_WEATHER_CHOICE)
    if turn.msg.is_event:
        return Outcome(Silent(), WAIT_WEATHER_CHOICE, slots=turn.slots, counts=False)
    if parse_request(turn.text) == "":  # 「天气」 again: the choices again, not a wrong answer
        return Outcome(
            Text(_choices_prompt(turn)), WAIT_WEATHER_CHOICE, slots=turn.slots, counts=False
        )
    text = _normal(turn.text)
    number = numerals.spoken_pick(text).strip("第个号项 ")  # 「2」, 「第2个」, 「第二个」 (voice)
    if number.isdigit() and number.isascii():
        n = int(number)
        if 1 <= n <= len(places):
            place = places[n - 1]
            return _forecast_at(
                turn, place.latitude, place.longitude, place.name, WAIT_WEATHER_CHOICE
            )
        return Outcome(
            Text(turn.t(BAD_CHOICE, n=len(places))),
            WAIT_WEATHER_CHOICE,
            slots=turn.slots,
            failed=True,
        )
    for place in places:  # the user typed the name of one of the choices (or its label)
        if text in (place.name, _normal(place.label_in(turn.language))):
            return _forecast_at(
                turn, place.latitude, place.longitude, place.name, WAIT_WEATHER_CHOICE
            )
    return wait_city(turn)  # another city altogether


def starts_weather(turn: Turn) -> bool:
    """「天气」, 「天气 北京」, 「查天气」 in another task's waiting state: the command word comes
    first (「北京天气」 could be what that state asked for)."""
    if turn.state in STATES or turn.msg.is_event:
        return False
    text = _TRAILING.sub("", _normal(kinds.without_leading_emoji(turn.text)))
    return _PREFIX.match(text) is not None and parse_request(turn.text) is not None


def claims(text: str, _kb: Any = None) -> bool:
    """Whether ``route`` takes ``text`` typed in WAIT_QUERY (see CLAIMS in states.py)."""
    return parse_request(text) is not None


def _choices_prompt(turn: Turn) -> str:
    places = [Place.from_dict(d) for d in turn.slots.get("places", [])]
    if not places:
        return turn.t(ASK_CITY)
    choices = "\n".join(f"{i}. {p.label_in(turn.language)}" for i, p in enumerate(places, 1))
    return turn.t(CHOOSE, city=str(turn.slots.get("city", "")), choices=choices)


STATES: dict[str, Handler] = {WAIT_WEATHER_CITY: wait_city, WAIT_WEATHER_CHOICE: wait_choice}
ROUTERS: list[Router] = [route]
COMMANDS = [starts_weather]
CLAIMS = [claims]
PROMPTS = {WAIT_WEATHER_CITY: lambda turn: turn.t(ASK_CITY), WAIT_WEATHER_CHOICE: _choices_prompt}
TAKES_LOCATION = {WAIT_WEATHER_CITY, WAIT_WEATHER_CHOICE}  # 「也可以直接发送位置」
