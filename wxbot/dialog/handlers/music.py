"""Music: 「点歌 晴天」 / 「听歌 晴天」 / 「music 晴天」 → a WeChat music reply (title, artist,
playable URL); 「点歌」 alone → WAIT_MUSIC_INFO asks for the song; nothing found → ask again.

The search is a Deferred (outside the user's lock and WeChat's 5 s); the message that starts
it does not count as a round, its resumed outcome does.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from wxbot.dialog.flow import WAIT_QUERY, Deferred, Handler, Outcome, Router, Turn
from wxbot.dialog.kinds import is_emoji, without_leading_emoji, without_stickers
from wxbot.i18n import N_
from wxbot.messages.replies import Music, Silent, Text
from wxbot.services.music import Song

WAIT_MUSIC_INFO = "WAIT_MUSIC_INFO"

ASK_SONG = N_("想听什么歌？请发歌名，也可以加上歌手（如：晴天 周杰伦）。发「取消」退出。")
NOT_FOUND = N_("没有找到「{term}」，换个歌名或加上歌手名再试试？")
UNAVAILABLE = N_("音乐服务暂时不可用，请稍后再试。")
MAX_TERM_CHARS = 50

_REQUEST = re.compile(
    r"^(?:点歌|听歌|点首歌|来一?首歌?|(?:music|song)(?=[\s:：]|$))\s*[:：,，]?\s*(.*)$", re.I
)
_EMPTY = frozenset({"", "歌", "歌曲", "吧", "呗"})
_PUNCT = " \t\r\n。.!！?？,，、~～《》「」“”\"'"


def parse_request(text: str) -> str | None:
    """The song of a music request ("" = none given), or None when it is not one."""
    match = _REQUEST.match(without_leading_emoji(unicodedata.normalize("NFKC", text).strip()))
    if match is None:
        return None
    term = _trimmed(match.group(1))
    return "" if term in _EMPTY else term


def _trimmed(text: str) -> str:
    """A song title without the quotes, punctuation and emoji around it: 「《晴天》🎵」 → 晴天
    (the emoji kept the closing 》 on, and nothing matched 「晴天》🎵」)."""
    text = without_stickers(text)
    start, end = 0, len(text)
    while start < end and _around(text[start]):
        start += 1
    while end > start and _around(text[end - 1]):
        end -= 1
    return text[start:end]


def _around(ch: str) -> bool:
    return ch in _PUNCT or ch.isspace() or is_emoji(ch)


def _song_reply(song: Song) -> Music:
    description = " · ".join(p for p in (song.artist, song.album) if p)
    return Music(
        title=song.title, description=description, music_url=song.url, hq_music_url=song.url
    )


def _make_resume(term: str):  # type: ignore[no-untyped-def]
    def resume(turn: Turn, result: Any) -> Outcome:
        if not isinstance(result, list):  # the work's exception: the service is down or slow
            return Outcome(Text(turn.t(UNAVAILABLE)), WAIT_QUERY)
        if not result:
            reply = Text(turn.t(NOT_FOUND, term=term))
            return Outcome(reply, WAIT_MUSIC_INFO, failed=True)
        return Outcome(_song_reply(result[0]), WAIT_QUERY)

    return resume


def _search(turn: Turn, term: str, state: str) -> Outcome:
    music = getattr(turn.deps.services, "music", None)
    if music is None:
        return Outcome(Text(turn.t(UNAVAILABLE)), WAIT_QUERY)
    return Outcome(
        None,
        state,
        slots=turn.slots if state != WAIT_QUERY else None,
        counts=False,
        deferred=Deferred(work=lambda: music.search(term), resume=_make_resume(term)),
    )


def route(turn: Turn) -> Outcome | None:
    if turn.msg.is_event:
        return None
    term = parse_request(turn.text)
    if term is None:
        return None
    if not term:
        return Outcome(Text(turn.t(ASK_SONG)), WAIT_MUSIC_INFO)
    return _search(turn, term[:MAX_TERM_CHARS], WAIT_QUERY)


def wait_song(turn: Turn) -> Outcome:
    if turn.msg.is_event:  # a LOCATION report is not a song title
        return Outcome(Silent(), WAIT_MUSIC_INFO, slots=turn.slots, counts=False)
    term = parse_request(turn.text)
    if term == "":  # 「点歌」 again, without a song: the question again, not a wrong answer
        return Outcome(Text(turn.t(ASK_SONG)), WAIT_MUSIC_INFO, counts=False)
    if term is None:
        term = _trimmed(unicodedata.normalize("NFKC", turn.text))
    if not term:
        return Outcome(Text(turn.t(ASK_SONG)), WAIT_MUSIC_INFO, failed=True)
    return _search(turn, term[:MAX_TERM_CHARS], WAIT_MUSIC_INFO)


def starts_music(turn: Turn) -> bool:
    """「点歌 晴天」 or 「点歌」 in another task's waiting state."""
    return (
        turn.state not in STATES and not turn.msg.is_event and parse_request(turn.text) is not None
    )


def claims(text: str, _kb: Any = None) -> bool:
    """Whether ``route`` takes ``text`` typed in WAIT_QUERY (see CLAIMS in states.py)."""
    return parse_request(text) is not None


STATES: dict[str, Handler] = {WAIT_MUSIC_INFO: wait_song}
ROUTERS: list[Router] = [route]
COMMANDS = [starts_music]
CLAIMS = [claims]
TAKES_ANY_TEXT = {WAIT_MUSIC_INFO}  # a song may be called anything, 「天气预报」 included
PROMPTS = {WAIT_MUSIC_INFO: lambda turn: turn.t(ASK_SONG)}
