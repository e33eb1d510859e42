"""Second review of the dialogue: did-you-mean picks that were questions (「3点」), 「继续」 in a
waiting state taken for a city or a song, 「语言 xx」 dropping the unread pages, and the
timed-out notice lost to a silent event. SQLite and MySQL where stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say, state_of
from wxbot.dialog import words
from wxbot.dialog.engine import Bot
from wxbot.dialog.flow import Outcome, Turn
from wxbot.dialog.handlers import learn, music, query, weather
from wxbot.dialog.states import build_table
from wxbot.messages.replies import Silent, Text
from wxbot.qa.importer import import_files

FAQ = Path(__file__).resolve().parent.parent / "knowledge" / "faq.txt"
ADMIN = "o_review2_admin"
LONG = "长" * 1000 + "\n" + "文" * 1000  # four pages
NO_MORE_EN = "There's nothing more."


def _long_answer(turn: Turn) -> Outcome | None:
    if turn.text == "长文":
        return Outcome(Text(LONG))
    if turn.text == "长文等城市":  # a long reply that leaves the user in a waiting state
        return Outcome(Text(LONG), weather.WAIT_WEATHER_CITY)
    return None


@pytest.fixture
def rbot(make_app, clock, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    app = make_app(admin_openids=frozenset({ADMIN}), **fake_apis.settings())
    table = build_table()
    table.routers.insert(0, _long_answer)
    base = app.extensions["wxbot.bot"]
    bot = Bot(base.engine, base.settings, base.deps, table=table, clock=clock)
    yield bot
    bot.close()  # (its counts are written while its database is still there)


@pytest.fixture
def faq_bot(make_app, clock):  # type: ignore[no-untyped-def]
    app = make_app()
    report = import_files(app.extensions["wxbot.engine"], [str(FAQ)], now=clock())
    assert report.written and not report.errors
    bot = app.extensions["wxbot.bot"]
    bot.deps.kb.confident = bot.deps.kb.sure = 99.0  # every match is a did-you-mean choice
    return bot


# --- 1. after a did-you-mean list, only a bare number picks --------------------------------

OFFER = "营业时间"  # 1. 门店营业时间是几点 2. 人工客服几点上班 3. 可以指定送货时间吗


def _answers(bot) -> dict[int, str]:  # type: ignore[no-untyped-def]
    shown = {}
    for n in (1, 2, 3):
        say(bot, f"probe{n}", OFFER)
        shown[n] = content(say(bot, f"probe{n}", str(n)))
    assert len(set(shown.values())) == 3
    return shown


@pytest.mark.parametrize("reply", ["3点", "2楼", "1个", "3点开门吗", "2 点", "1次"])
def test_a_short_question_with_a_number_is_not_a_pick(faq_bot, reply: str) -> None:  # type: ignore[no-untyped-def]
    answers = _answers(faq_bot)
    say(faq_bot, "u1", OFFER)
    got = content(say(faq_bot, "u1", reply))
    assert got not in answers.values()
    assert got == content(say(faq_bot, "fresh", reply))  # the same as a question out of the blue


@pytest.mark.parametrize(
    ("reply", "n"),
    [("3", 3), ("３", 3), (" 2 ", 2), ("2。", 2), ("(1)", 1), ("第3个", 3), ("第 2 条", 2)]
    + [("选2", 2), ("选第1个", 1), ("3号", 3), ("#2", 2)],
)
def test_a_bare_number_still_picks(faq_bot, reply: str, n: int) -> None:  # type: ignore[no-untyped-def]
    answers = _answers(faq_bot)
    say(faq_bot, "u1", OFFER)
    assert content(say(faq_bot, "u1", reply)) == answers[n]


def test_choice_parsing() -> None:
    assert query._choice("3", 3) == 3
    assert query._choice("4", 3) is None
    assert query._choice("3点", 3) is None
    assert query._choice("1" * 5000, 3) is None  # no ValueError past int()'s digit limit


# --- 2. 「继续」 in a waiting state with nothing left to page -------------------------------


def _more_is_not_an_answer(
    rbot, fake_apis: FakeApis, command: str, asked: str, more: str, api: str, state: str
) -> None:  # type: ignore[no-untyped-def]
    """「继续」 while ``command``'s step waits (it asked ``asked``) says there is nothing more
    and asks again: the outside ``api`` is not called with it, the step still waits."""
    assert content(say(rbot, "u1", command)) == asked
    reply = content(say(rbot, "u1", more))
    assert reply.startswith(words.NO_MORE_PAGES), reply
    assert fake_apis.hits[api] == 0
    assert state_of(rbot, "u1") == (state, 0)


@pytest.mark.parametrize("more", ["继续", "more", "下一页"])
def test_more_while_waiting_for_a_city_is_not_a_city(rbot, fake_apis: FakeApis, more: str) -> None:  # type: ignore[no-untyped-def]
    _more_is_not_an_answer(
        rbot, fake_apis, "天气", weather.ASK_CITY, more, "geocoding", weather.WAIT_WEATHER_CITY
    )
    assert content(say(rbot, "u1", "北京")).startswith("北京市天气")


@pytest.mark.parametrize("more", ["继续", "more"])
def test_more_while_waiting_for_a_song_is_not_a_song(rbot, fake_apis: FakeApis, more: str) -> None:  # type: ignore[no-untyped-def]
    _more_is_not_an_answer(
        rbot, fake_apis, "点歌", music.ASK_SONG, more, "music", music.WAIT_MUSIC_INFO
    )


def test_more_still_pages_in_a_waiting_state(rbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert "第1/4页" in content(say(rbot, "u1", "长文等城市"))
    for n in (2, 3, 4):
        assert f"第{n}/4页" in content(say(rbot, "u1", "继续"))
    assert content(say(rbot, "u1", "继续")).startswith(words.NO_MORE_PAGES)
    assert fake_apis.hits["geocoding"] == 0
    assert state_of(rbot, "u1") == (weather.WAIT_WEATHER_CITY, 0)


# --- 3. 「语言 xx」 keeps the unread pages ---------------------------------------------------


def test_language_switch_keeps_the_unread_pages(rbot) -> None:  # type: ignore[no-untyped-def]
    assert "第1/4页" in content(say(rbot, "u1", "长文"))
    assert content(say(rbot, "u1", "语言 en")).startswith("OK, I'll reply in English")
    second = content(say(rbot, "u1", "more"))
    assert second != NO_MORE_EN and "2/4" in second
    for n in (3, 4):
        assert f"{n}/4" in content(say(rbot, "u1", "more"))
    assert content(say(rbot, "u1", "more")) == NO_MORE_EN


def test_unread_pages_are_footed_in_the_language_chosen_meanwhile(rbot) -> None:  # type: ignore[no-untyped-def]
    """The footers of the pages read after 「语言 xx」 are in the new language (they were
    written into the pages in the old one when the answer was paged)."""
    assert "第1/4页" in content(say(rbot, "u1", "长文"))
    say(rbot, "u1", "语言 en")
    assert content(say(rbot, "u1", "more")).endswith('(page 2/4; reply "more" for the next page)')
    say(rbot, "u1", "language ja")
    assert content(say(rbot, "u1", "次へ")).endswith(
        "（3/4 ページ。続きは「次へ」と返信してください）"
    )


def test_language_switch_mid_flow_keeps_the_unread_pages(rbot) -> None:  # type: ignore[no-untyped-def]
    assert "第1/4页" in content(say(rbot, "u1", "长文等城市"))
    assert content(say(rbot, "u1", "language ja")).startswith("承知しました")
    assert "2/4" in content(say(rbot, "u1", "次へ"))
    assert state_of(rbot, "u1") == (weather.WAIT_WEATHER_CITY, 0)


# --- 4. the timed-out notice survives a silent event --------------------------------------


def _location_report(openid: str):  # type: ignore[no-untyped-def]
    return event(openid, "location", latitude=39.9, longitude=116.4)


@pytest.mark.parametrize(
    "silent",
    [_location_report, lambda openid: event(openid, "view", "https://example.com/menu")],
    ids=["location", "view"],
)
def test_timed_out_notice_comes_with_the_next_visible_reply(rbot, clock, silent) -> None:  # type: ignore[no-untyped-def]
    assert content(say(rbot, ADMIN, "学习")) == learn.ASK_QUESTION
    clock.advance(rbot.settings.session_ttl + 1)
    assert rbot.handle(silent(ADMIN)) == Silent()
    assert rbot.handle(silent(ADMIN)) == Silent()
    reply = content(say(rbot, ADMIN, "你好"))
    assert reply.startswith(words.TIMED_OUT), reply
    assert words.TIMED_OUT not in content(say(rbot, ADMIN, "你好"))  # once
    assert state_of(rbot, ADMIN)[0] == "WAIT_QUERY"


def test_timed_out_notice_in_the_language_of_the_reply(rbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "天气")
    clock.advance(rbot.settings.session_ttl + 1)
    assert rbot.handle(_location_report("u1")) == Silent()
    reply = content(say(rbot, "u1", "language en"))
    assert reply.startswith("The previous step waited too long"), reply


def test_timed_out_notice_comes_with_a_slow_answer(rbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "天气")
    clock.advance(rbot.settings.session_ttl + 1)
    reply = content(say(rbot, "u1", "天气 北京"))  # answered by a Deferred lookup
    assert reply.startswith(words.TIMED_OUT + "\n北京市天气"), reply
    assert words.TIMED_OUT not in content(say(rbot, "u1", "你好"))


def test_no_notice_without_a_timed_out_step(rbot, clock) -> None:  # type: ignore[no-untyped-def]
    say(rbot, "u1", "你好")
    clock.advance(rbot.settings.session_ttl + 1)
    assert rbot.handle(_location_report("u1")) == Silent()
    assert words.TIMED_OUT not in content(say(rbot, "u1", "你好"))
