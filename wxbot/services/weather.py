"""Weather from Open-Meteo's keyless geocoding and forecast APIs, readable in every reply language."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import requests

from wxbot.i18n import DEFAULT_LANGUAGE, N_, translate
from wxbot.services.budget import Budget
from wxbot.services.http import (
    Deadline,
    ServiceError,
    TTLCache,
    as_budget,
    get_json,
    make_session,
)

SERVICE = "weather"
FORECAST_TTL = 600.0  # the 10 minutes; forecasts change hourly at most
GEOCODE_TTL = 86_400.0  # place names do not move
MAX_CHOICES = 5

# WMO weather interpretation codes (the table in Open-Meteo's docs) in everyday Chinese.
WMO_CODES: dict[int, str] = {
    0: N_("晴"),
    1: N_("晴间多云"),
    2: N_("多云"),
    3: N_("阴"),
    45: N_("雾"),
    48: N_("雾凇"),
    51: N_("小毛毛雨"),
    53: N_("毛毛雨"),
    55: N_("大毛毛雨"),
    56: N_("冻毛毛雨"),
    57: N_("强冻毛毛雨"),
    61: N_("小雨"),
    63: N_("中雨"),
    65: N_("大雨"),
    66: N_("冻雨"),
    67: N_("强冻雨"),
    71: N_("小雪"),
    73: N_("中雪"),
    75: N_("大雪"),
    77: N_("米雪"),
    80: N_("小阵雨"),
    81: N_("阵雨"),
    82: N_("强阵雨"),
    85: N_("小阵雪"),
    86: N_("阵雪"),
    95: N_("雷阵雨"),
    96: N_("雷阵雨伴有冰雹"),
    99: N_("强雷阵雨伴有冰雹"),
}


UNKNOWN_WEATHER = N_("天气未知")
HEADER = N_("{place}天气")
DAYS = (N_("今天"), N_("明天"))
DAY_LINE = N_("{day}（{date}）：{details}")
RAIN = N_("降水概率 {chance}%")
TEMPERATURES = N_("{low}～{high}°C")  # the day's lowest and highest, rounded
# A place in a list of choices, and its regions joined from the largest one down: the order
# (「中国 北京市」, "Beijing, China") and the brackets are the language's.
PLACE_LABEL = N_("{name}（{where}）")
PLACE_REGIONS = N_("{larger} {smaller}")
_SEPARATORS = {"zh": "，", "ja": "、"}

# The reply languages as Open-Meteo's geocoding takes them (GeoNames' language codes): names in
# that language where GeoNames has one, else each place's main name; a code it does not know
# is answered in English. It takes "tl", but GeoNames has Tagalog names for few places (the
# countries, some cities), so a list would mix them with main names: Tagalog users get the
# English names, which Philippine maps and weather reports use.
GEOCODING_LANGUAGES = {"zh": "zh", "en": "en", "ja": "ja", "th": "th", "tl": "en"}


def geocoding_language(language: str | None) -> str:
    """The ``language`` to ask Open-Meteo's geocoding for, for a reply language."""
    return GEOCODING_LANGUAGES.get(language or DEFAULT_LANGUAGE, "en")


def describe_code(code: Any) -> str:
    """The Chinese description (the catalogue's msgid: Forecast.to_text translates it)."""
    try:
        return WMO_CODES.get(int(code), UNKNOWN_WEATHER)
    except (TypeError, ValueError):
        return UNKNOWN_WEATHER


@dataclass(frozen=True)
class Place:
    """One geocoding match; plain data so it can wait in the user's slots as JSON."""

    name: str
    latitude: float
    longitude: float
    country: str = ""
    admin1: str = ""
    admin2: str = ""
    population: int = 0

    @property
    def regions(self) -> tuple[str, ...]:
        """The country and regions it lies in, largest first (none repeating its name)."""
        return tuple(p for p in (self.country, self.admin1, self.admin2) if p and p != self.name)

    def label_in(self, language: str) -> str:
        """What the user reads in a list of choices: 朝阳区（中国 北京市）, Chaoyang (Beijing, China)."""
        regions = self.regions
        if not regions:
            return self.name
        where = regions[0]
        for smaller in regions[1:]:
            where = translate(PLACE_REGIONS, language, larger=where, smaller=smaller)
        return translate(PLACE_LABEL, language, name=self.name, where=where)

    @property
    def label(self) -> str:
        """The Chinese label (``label_in`` for another language)."""
        return self.label_in(DEFAULT_LANGUAGE)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Place:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Day:
    date: str
    weather: str
    t_min: float | None
    t_max: float | None
    rain_chance: int | None


@dataclass(frozen=True)
class Forecast:
    place_name: str
    days: tuple[Day, ...]

    def to_text(self, language: str = DEFAULT_LANGUAGE) -> str:
        place = translate(self.place_name, language)  # 「当前位置」 is a catalogue text
        lines = [translate(HEADER, language, place=place)]
        separator = _SEPARATORS.get(language, ", ")
        for title, day in zip(DAYS, self.days, strict=False):
            parts = [translate(day.weather, language)]
            if day.t_min is not None and day.t_max is not None:
                low, high = round(day.t_min), round(day.t_max)
                parts.append(translate(TEMPERATURES, language, low=low, high=high))
            if day.rain_chance is not None:
                parts.append(translate(RAIN, language, chance=day.rain_chance))
            details = separator.join(parts)
            day_name = translate(title, language)
            lines.append(
                translate(DAY_LINE, language, day=day_name, date=day.date[5:], details=details)
            )
        return "\n".join(lines)


def pick_place(places: list[Place]) -> Place | None:
    """The place the user surely meant, or None when they should choose.

    Geocoding a Chinese city name usually returns the city plus villages of the same name.
    A match at least ten times as populous as the runner-up is taken without asking; equally
    plausible matches (两个同名的区) are offered as a numbered list.
    """
    if len(places) == 1:
        return places[0]
    if len(places) > 1 and places[0].population >= 10 * max(places[1].population, 1):
        return places[0]
    return None


class WeatherClient:
    def __init__(
        self,
        geocoding_url: str,
        weather_url: str,
        http_timeout: Budget | float = 12.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.geocoding_url = geocoding_url.rstrip("/")
        self.weather_url = weather_url.rstrip("/")
        self.budget = as_budget(http_timeout)
        self.timeout = self.budget.timeout
        self.session: requests.Session = make_session()
        extra = {"clock": clock} if clock else {}
        self.forecasts: TTLCache[Forecast] = TTLCache(FORECAST_TTL, **extra)
        self.places: TTLCache[list[Place]] = TTLCache(GEOCODE_TTL, **extra)

    def lookup(self) -> WeatherLookup:
        """A handle for one lookup: its calls share one deadline (see WeatherLookup)."""
        return WeatherLookup(self)

    def geocode(
        self, name: str, deadline: Deadline | None = None, language: str = DEFAULT_LANGUAGE
    ) -> list[Place]:
        """Places called ``name``, most relevant first (empty when there is none), named in
        the reply ``language`` (cached per language: a Chinese user's 「北京市」 is no answer
        for an English one). ``deadline``: the lookup's, when this call is one of several
        (else the budget)."""
        name = name.strip()
        if not name:
            return []
        deadline = deadline or Deadline(SERVICE, self.budget)
        asked = geocoding_language(language)
        return self.places.get_or_fetch((asked, name), lambda: self._geocode(name, asked, deadline))

    def _geocode(self, name: str, language: str, deadline: Deadline) -> list[Place]:
        data = get_json(
            self.session,
            SERVICE,
            f"{self.geocoding_url}/v1/search",
            {"name": name, "count": 10, "language": language, "format": "json"},
            deadline.timeout(),
        )
        if not isinstance(data, dict):
            raise ServiceError(SERVICE, "geocoding answer is not an object")
        results = data.get("results") or []
        if not isinstance(results, list):
            raise ServiceError(SERVICE, "geocoding results are not a list")
        places: list[Place] = []
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for item in results:
            try:
                place = Place(
                    name=str(item["name"]),
                    latitude=_coordinate(item["latitude"], 90),
                    longitude=_coordinate(item["longitude"], 180),
                    country=str(item.get("country") or ""),
                    admin1=str(item.get("admin1") or ""),
                    admin2=str(item.get("admin2") or ""),
                    population=int(item.get("population") or 0),
                )
            except (KeyError, TypeError, ValueError, OverflowError):  # population 1e999
                continue  # one malformed entry should not hide the good ones
            key = (place.name, place.regions)
            if key not in seen:  # same name and region twice is no real choice
                seen.add(key)
                places.append(place)
        return places[:MAX_CHOICES]

    def forecast(
        self,
        latitude: float,
        longitude: float,
        place_name: str,
        deadline: Deadline | None = None,
    ) -> Forecast:
        """Today's and tomorrow's weather at a point (cached 10 minutes per ~1 km cell)."""
        key = (round(latitude, 2), round(longitude, 2))
        deadline = deadline or Deadline(SERVICE, self.budget)
        cached = self.forecasts.get_or_fetch(
            key, lambda: self._forecast(latitude, longitude, deadline)
        )
        return Forecast(place_name, cached.days)

    def _forecast(self, latitude: float, longitude: float, deadline: Deadline) -> Forecast:
        data = get_json(
            self.session,
            SERVICE,
            f"{self.weather_url}/v1/forecast",
            {
                "latitude": f"{latitude:.4f}",
                "longitude": f"{longitude:.4f}",
                "daily": "weather_code,temperature_2m_max,temperature_2m_min,"
                "precipitation_probability_max",
                "timezone": "auto",
                "forecast_days": 2,
            },
            deadline.timeout(),
        )
        try:
            daily = data["daily"]
            days = tuple(
                Day(
                    date=str(date),
                    weather=describe_code(_at(daily.get("weather_code"), i)),
                    t_min=_number(_at(daily.get("temperature_2m_min"), i)),
                    t_max=_number(_at(daily.get("temperature_2m_max"), i)),
                    rain_chance=_int(_at(daily.get("precipitation_probability_max"), i)),
                )
                for i, date in enumerate(daily["time"][:2])
            )
        except (KeyError, TypeError, AttributeError):
            raise ServiceError(SERVICE, "forecast answer lacks daily data") from None
        if not days:
            raise ServiceError(SERVICE, "forecast answer has no days")
        return Forecast("", days)


class WeatherLookup:
    """One weather lookup: geocode, maybe geocode again (「杭州市」 → 杭州), forecast. Its calls
    share one deadline, the service's budget from the first call on, each call getting only
    what is left of it (none left: ServiceError at once, the user reads the friendly reply).
    Take one per lookup (``WeatherClient.lookup()``); anything else (caches, session,
    budget) is the client's."""

    def __init__(self, client: WeatherClient) -> None:
        self.client = client
        self.deadline = Deadline(SERVICE, client.budget)

    def geocode(self, name: str, language: str = DEFAULT_LANGUAGE) -> list[Place]:
        return self.client.geocode(name, self.deadline, language)

    def forecast(self, latitude: float, longitude: float, place_name: str) -> Forecast:
        return self.client.forecast(latitude, longitude, place_name, self.deadline)


def _at(values: Any, i: int) -> Any:
    return values[i] if isinstance(values, list) and i < len(values) else None


def _number(value: Any) -> float | None:
    # Python's json reads NaN and Infinity; rounding either for the reply would raise
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else round(number)


def _coordinate(value: Any, limit: float) -> float:
    """A latitude (limit 90) or longitude (180); ValueError for anything else."""
    number = float(value)
    if not -limit <= number <= limit:  # also NaN
        raise ValueError(f"coordinate {value!r} is out of range")
    return number
