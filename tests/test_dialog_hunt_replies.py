"""The built-in dialogues as a WeChat user lives them: inputs that used to get a wrong or
confusing reply, or cost a failed attempt towards a human (SQLite and MySQL)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from wxbot.dialog import words
from wxbot.dialog.handlers import learn, music, query, weather
from wxbot.messages.replies import Music, TransferToHuman
from wxbot.qa import unanswered, writer

HOURS = "每天 9:00-21:00。"


@pytest.fixture
def hbot(make_app, fake_apis: FakeApis, clock):  # type: ignore[no-untyped-def]
    bot = make_app(**fake_apis.settings(), teach_policy="everyone").extensions["wxbot.bot"]
    with bot.engine.begin() as conn:
        writer.teach(conn, "怎么退款", "在订单页申请退款。", now=clock(), taught_by=None)
        writer.teach(conn, "营业时间", HOURS, now=clock(), taught_by=None)
    return bot


def logged(bot: Any) -> list[str]:
    with bot.engine.connect() as conn:
        return [str(q["question"]) for q in unanswered.list_unanswered(conn, limit=100)[1]]


# --- a text of blanks ------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["\t", " ", "\u3000", " \n "])
def test_a_blank_text_is_asked_for_the_question_not_told_to_type(hbot, blank: str) -> None:  # type: ignore[no-untyped-def]
    # before: 「我目前只能看懂文字消息…」, as if a picture had been sent
    assert content(say(hbot, "u1", blank)) == words.BLANK
    assert state_of(hbot, "u1") == ("WAIT_QUERY", 0)
    assert logged(hbot) == []


def test_a_blank_text_mid_step_asks_the_step_again(hbot) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "天气")
    assert content(say(hbot, "u1", "\t")) == f"{words.NEEDS_TEXT}\n\n{weather.ASK_CITY}"
    assert state_of(hbot, "u1") == ("WAIT_WEATHER_CITY", 0)
    assert content(say(hbot, "u1", "取消")) == words.CANCELLED
    assert content(say(hbot, "u1", " ")) == words.BLANK  # no step any more: the question


# --- command words typed with a Chinese IME, or decorated ----------------------------------


def _teach_over(bot: Any) -> None:
    say(bot, "u1", "学习")
    say(bot, "u1", "怎么退款")
    assert content(say(bot, "u1", "新的退款说明")).startswith("「怎么退款」已经有答案")
    assert state_of(bot, "u1") == ("WAIT_CONFIRM", 0)


@pytest.mark.parametrize("yes", ["ＹＥＳ", "Ｏｋ", "好的👍", "对[OK]", "是的～", "「确认」"])
def test_confirming_with_full_width_or_decorated_yes_overwrites(hbot, yes: str) -> None:  # type: ignore[no-untyped-def]
    _teach_over(hbot)
    # before: 「请回复「是」覆盖原答案…」 and a failed attempt
    assert content(say(hbot, "u1", yes)).startswith("已更新！")
    assert state_of(hbot, "u1") == ("WAIT_QUERY", 0)


def test_full_width_no_keeps_the_answer(hbot) -> None:  # type: ignore[no-untyped-def]
    _teach_over(hbot)
    assert content(say(hbot, "u1", "ＮＯ")) == learn.KEPT


@pytest.mark.parametrize("cancel", ["ＣＡＮＣＥＬ", "取消～", "取消🙏"])
def test_full_width_or_decorated_cancel_leaves_the_step(hbot, cancel: str) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "天气")
    assert content(say(hbot, "u1", cancel)) == words.CANCELLED
    assert state_of(hbot, "u1") == ("WAIT_QUERY", 0)


# --- the task's own command word typed again ------------------------------------------------


def test_weather_again_while_asked_for_the_city_is_no_wrong_city(hbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "天气")
    assert content(say(hbot, "u1", "火星城")).startswith("没有找到「火星城」")
    assert state_of(hbot, "u1") == ("WAIT_WEATHER_CITY", 1)
    for _ in range(3):  # before: 「没有找到「天气」」 twice, then a human
        assert content(say(hbot, "u1", "天气")) == weather.ASK_CITY
        assert state_of(hbot, "u1") == ("WAIT_WEATHER_CITY", 1)
    assert content(say(hbot, "u1", "上海")).startswith("上海市天气")
    assert "天气" not in [q["name"] for r, q, _ in fake_apis.requests if r == "geocoding"]


def test_weather_again_while_choosing_shows_the_choices(hbot) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "天气")
    choices = content(say(hbot, "u1", "朝阳"))
    assert choices.startswith("找到多个叫「朝阳」的地方")
    assert content(say(hbot, "u1", "查天气")) == choices  # before: 「没有找到「查天气」」
    assert state_of(hbot, "u1") == ("WAIT_WEATHER_CHOICE", 0)
    assert content(say(hbot, "u1", "2")).startswith("朝阳市天气")


def test_music_again_while_asked_for_the_song_is_no_wrong_song(hbot) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "点歌")
    for _ in range(4):  # before: a failed attempt each, and a human at the fourth
        reply = say(hbot, "u1", "点歌")
        assert not isinstance(reply, TransferToHuman)
        assert content(reply) == music.ASK_SONG
        assert state_of(hbot, "u1") == ("WAIT_MUSIC_INFO", 0)


@pytest.mark.parametrize("song", ["《晴天》🎵", "“晴天”❤️", "晴天[Smile]", "🎶 晴天 🎶"])
def test_a_song_in_quotes_with_emoji_is_found(hbot, song: str) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "点歌")
    reply = say(hbot, "u1", song)  # before: 没有找到「晴天》🎵」
    assert isinstance(reply, Music) and reply.title == "晴天"
    assert isinstance(say(hbot, "u2", f"点歌 {song}"), Music)


def test_a_knowledge_question_while_asked_for_the_city(hbot) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "天气")
    # before: 「没有找到「营业时间」」 and a failed attempt (a business flow's step answers it)
    assert content(say(hbot, "u1", "营业时间")) == f"{HOURS}\n\n{weather.ASK_CITY}"
    assert state_of(hbot, "u1") == ("WAIT_WEATHER_CITY", 0)
    assert content(say(hbot, "u1", "上海")).startswith("上海市天气")


# --- numbers that are no pick from the list shown -------------------------------------------


def _offered(bot: Any) -> None:
    reply = content(say(bot, "u1", "营业"))
    assert reply.startswith("我不太确定你想问的是哪一个：\n1. 营业时间\n"), reply


def test_a_number_outside_the_list_keeps_the_list(hbot) -> None:  # type: ignore[no-untyped-def]
    _offered(hbot)
    # before: 「这个问题我还不会回答…」, the list gone and 「2」 logged as a question
    assert content(say(hbot, "u1", "2")) == query.ONLY_PICK
    assert content(say(hbot, "u1", "1")) == HOURS
    assert logged(hbot) == ["营业"]


def test_a_number_after_the_list_expired_is_not_a_question(hbot, clock) -> None:  # type: ignore[no-untyped-def]
    _offered(hbot)
    clock.advance(601)
    assert content(say(hbot, "u1", "1")) == query.NO_LIST
    assert content(say(hbot, "u1", "第二个")) == query.NO_LIST
    assert logged(hbot) == ["营业"]


def test_a_number_the_knowledge_base_answers_is_answered(hbot, clock) -> None:  # type: ignore[no-untyped-def]
    with hbot.engine.begin() as conn:  # a menu of numbers: 「回复 1 查看营业时间」
        writer.teach(conn, "1", HOURS, now=clock(), taught_by=None)
    assert content(say(hbot, "u1", "1")) == HOURS
    assert content(say(hbot, "u1", "2024")).startswith("这个问题我还不会回答")


def test_teach_again_while_confirming_is_no_wrong_answer(hbot) -> None:  # type: ignore[no-untyped-def]
    _teach_over(hbot)
    for _ in range(3):  # before: a failed attempt each, and a human at the third
        reply = say(hbot, "u1", "学习")
        assert not isinstance(reply, TransferToHuman)
        assert content(reply) == learn.ASK_YES_NO
        assert state_of(hbot, "u1") == ("WAIT_CONFIRM", 0)
    assert content(say(hbot, "u1", "是")).startswith("已更新！")


def test_every_command_word_survives_normalising() -> None:
    """Full-width letters are folded, but not by NFKC, which splits Thai 「ำ」 (ล้างความจำ)."""
    from wxbot.dialog.handlers.learn import TEACH_WORDS
    from wxbot.dialog.paging import MORE_WORDS

    lists = (words.CANCEL_WORDS, words.HUMAN_WORDS, words.HELP_WORDS, words.FORGET_WORDS)
    lists += (words.MEMORY_WORDS, words.YES_WORDS, words.NO_WORDS, MORE_WORDS, TEACH_WORDS)
    for group in lists:
        for word in group:
            assert words.normalise_command(f" {word}！") == word.lower(), word
