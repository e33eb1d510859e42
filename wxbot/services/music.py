"""Song search through the keyless iTunes Search API; ``previewUrl`` is a playable clip."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import requests

from wxbot.services.budget import Budget
from wxbot.services.http import ServiceError, TTLCache, get_json, make_session, timeouts

SERVICE = "music"
SEARCH_TTL = 3600.0  # search results for a title hardly change within an hour


@dataclass(frozen=True)
class Song:
    title: str
    artist: str
    url: str  # playable (a 30 s preview for iTunes)
    album: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MusicClient:
    def __init__(
        self,
        music_url: str,
        http_timeout: Budget | float = 12.0,
        country: str = "CN",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.music_url = music_url.rstrip("/")
        self.country = country  # the Chinese store knows 晴天 by its Chinese title
        self.timeout = timeouts(http_timeout)
        self.session: requests.Session = make_session()
        self.cache: TTLCache[list[Song]] = TTLCache(
            SEARCH_TTL, **({"clock": clock} if clock else {})
        )

    def search(self, term: str, limit: int = 5) -> list[Song]:
        """Playable songs matching ``term``, best first (empty when nothing matched)."""
        term = " ".join(term.split())
        if not term:
            return []
        return self.cache.get_or_fetch((term.lower(), limit), lambda: self._search(term, limit))

    def _search(self, term: str, limit: int) -> list[Song]:
        data = get_json(
            self.session,
            SERVICE,
            f"{self.music_url}/search",
            {
                "term": term,
                "media": "music",
                "entity": "song",
                "limit": limit,
                "country": self.country,
            },
            self.timeout,
        )
        if not isinstance(data, dict):
            raise ServiceError(SERVICE, "search answer is not an object")
        results = data.get("results") or []
        if not isinstance(results, list):
            raise ServiceError(SERVICE, "search results are not a list")
        songs: list[Song] = []
        for item in results:
            if not isinstance(item, dict):
                continue
            url = item.get("previewUrl")
            title = item.get("trackName")
            if not url or not title:  # nothing to play: useless as a music reply
                continue
            songs.append(
                Song(
                    title=str(title),
                    artist=str(item.get("artistName") or ""),
                    url=str(url),
                    album=str(item.get("collectionName") or ""),
                )
            )
        return songs
