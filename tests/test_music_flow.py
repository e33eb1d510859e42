"""Music through the engine, against the fake iTunes Search server (SQLite and MySQL)."""

from __future__ import annotations

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say, state_of, text
from wxbot.dialog.handlers import music
from wxbot.messages.replies import Music, Silent

QINGTIAN = Music(
    title="晴天",
    description="周杰伦 · 叶惠美",
    music_url="https://audio.example/qingtian.m4a",
    hq_music_url="https://audio.example/qingtian.m4a",
)


@pytest.fixture
def mbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings()).extensions["wxbot.bot"]


@pytest.mark.parametrize("ask", ["点歌 晴天", "听歌晴天", "music 晴天", "点歌：《晴天》"])
def test_song_in_the_request(mbot, fake_apis: FakeApis, ask: str) -> None:  # type: ignore[no-untyped-def]
    assert say(mbot, "u1", ask) == QINGTIAN
    assert state_of(mbot, "u1") == ("WAIT_QUERY", 0)
    _, query, _ = fake_apis.requests[-1]
    assert query["term"] == "晴天" and query["entity"] == "song"


def test_missing_song_waits_for_it(mbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(mbot, "u1", "点歌")) == music.ASK_SONG
    assert state_of(mbot, "u1") == ("WAIT_MUSIC_INFO", 0)
    assert fake_apis.hits["music"] == 0
    assert say(mbot, "u1", "晴天") == QINGTIAN
    assert state_of(mbot, "u1") == ("WAIT_QUERY", 0)


def test_nothing_found_asks_again(mbot) -> None:  # type: ignore[no-untyped-def]
    assert content(say(mbot, "u1", "点歌 没有这首歌")) == music.NOT_FOUND.format(term="没有这首歌")
    assert state_of(mbot, "u1") == ("WAIT_MUSIC_INFO", 1)
    assert say(mbot, "u1", "晴天") == QINGTIAN
    assert state_of(mbot, "u1") == ("WAIT_QUERY", 0)


def test_empty_input_while_waiting_asks_again(mbot) -> None:  # type: ignore[no-untyped-def]
    say(mbot, "u1", "点歌")
    assert content(say(mbot, "u1", "。")) == music.ASK_SONG
    assert state_of(mbot, "u1") == ("WAIT_MUSIC_INFO", 1)


def test_location_reports_do_not_interrupt_the_question(mbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    say(mbot, "u1", "点歌")
    assert mbot.handle(event("u1", "location", latitude=1.0, longitude=2.0)) == Silent()
    assert state_of(mbot, "u1") == ("WAIT_MUSIC_INFO", 0)
    assert fake_apis.hits["music"] == 0


def test_service_down_says_so_and_ends_the_flow(mbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    fake_apis.down.add("music")
    assert content(say(mbot, "u1", "点歌 晴天")) == music.UNAVAILABLE
    assert state_of(mbot, "u1") == ("WAIT_QUERY", 0)


def test_music_reply_survives_a_retry(mbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    msg = text("u1", "点歌 晴天")
    assert mbot.handle(msg) == QINGTIAN
    assert mbot.handle(msg) == QINGTIAN  # from the dedup record
    assert fake_apis.hits["music"] == 1


def test_parse_request() -> None:
    assert music.parse_request("点歌") == ""
    assert music.parse_request("来首歌") == ""
    assert music.parse_request("来一首晴天") == "晴天"
    assert music.parse_request("MUSIC Yesterday") == "Yesterday"
    assert music.parse_request("musical") is None
    assert music.parse_request("歌曲推荐") is None
