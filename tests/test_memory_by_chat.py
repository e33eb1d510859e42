"""A user sees and clears what the bot remembers of them, by chat (SQLite and MySQL):
「我的记忆」 / 「清除记忆」 in every reply language and any state, the confirmation and its
refusal, both stores emptied (the next LLM prompt carries nothing of before), language,
window and usage kept, a retried message clearing nothing twice, other users untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import RECHARGE_REPLIES, FakeApis, fake_apis_fixture  # noqa: F401
from tests.fakellm import FakeLlm, fake_llm_fixture, rounds_in  # noqa: F401
from tests.helpers import content, say, state_of, text
from tests.test_flow_files import assert_reported, written_problems
from tests.test_flows_hunt_checks import edited
from wxbot.config import DEFAULT_WELCOME
from wxbot.dialog import words
from wxbot.dialog.forgetting import (
    ASK,
    FORGOTTEN,
    HOW_TO_FORGET,
    KEPT,
    KEPT_FOR_DAYS,
    KEPT_UNTIL_CLEARED,
    REMEMBERS,
    REMEMBERS_NOTHING,
)
from wxbot.dialog.handlers import weather
from wxbot.i18n import translate
from wxbot.llm.models import Memory
from wxbot.models import Context, UserLanguage

TOKEN = "memory-chat-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# (language, clear, see, yes, no): the words a user of that language would type
CASES = [
    ("zh", "清除记忆", "我的记忆", "是", "否"),
    ("en", "Forget our conversation.", "my memory", "yes", "no"),
    ("ja", "記憶を消去", "記憶を確認", "はい", "いいえ"),
    ("th", "ล้างความจำ", "ความจำของฉัน", "ใช่", "ไม่"),
    ("tl", "burahin ang alaala", "alaala ko", "oo", "hindi"),
]


def history(bot: Any, openid: str) -> list[list[str]]:
    """The live window in the user's context row."""
    with bot.engine.connect() as conn:
        row = conn.execute(select(Context.history).where(Context.openid == openid)).scalar_one()
    return json.loads(row)


def memory_row(bot: Any, openid: str) -> Any:
    with bot.engine.connect() as conn:
        return conn.execute(select(Memory.__table__).where(Memory.openid == openid)).first()


def language_row(bot: Any, openid: str) -> tuple[str, bool]:
    with bot.engine.connect() as conn:
        row = conn.execute(
            select(UserLanguage.language, UserLanguage.explicit).where(
                UserLanguage.openid == openid
            )
        ).one()
    return row.language, bool(row.explicit)


def status(language: str, exchanges: int, window: int = 10, days: int = 90) -> str:
    kept_for = (
        translate(KEPT_FOR_DAYS, language, days=days)
        if days
        else translate(KEPT_UNTIL_CLEARED, language)
    )
    return "\n".join(
        [
            translate(REMEMBERS, language, n=exchanges, window=window),
            kept_for,
            translate(HOW_TO_FORGET, language),
        ]
    )


# --- the commands in every language, without an LLM -------------------------------------------


@pytest.mark.parametrize(("language", "clear", "see", "yes", "no"), CASES)
def test_see_refuse_then_clear_in_every_language(make_app, language, clear, see, yes, no) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]  # no LLM configured
    say(bot, "o_u", f"language {language}")
    say(bot, "o_u", "第一个问题")
    say(bot, "o_u", "第二个问题")
    say(bot, "o_other", "别人的问题")
    before, others = history(bot, "o_u"), history(bot, "o_other")
    assert len(before) == 6  # three exchanges: 「language xx」 and the two questions

    assert content(say(bot, "o_u", see)) == status(language, 3)
    assert content(say(bot, "o_u", clear)) == translate(ASK, language)
    assert content(say(bot, "o_u", no)) == translate(KEPT, language)
    assert history(bot, "o_u") == before  # kept, and none of that was remembered itself

    assert content(say(bot, "o_u", clear)) == translate(ASK, language)
    assert content(say(bot, "o_u", yes)) == translate(FORGOTTEN, language)
    assert history(bot, "o_u") == []
    assert content(say(bot, "o_u", see)) == translate(REMEMBERS_NOTHING, language)
    assert history(bot, "o_u") == []
    assert language_row(bot, "o_u") == (language, True)  # the language stays
    assert state_of(bot, "o_u") == ("WAIT_QUERY", 0)
    assert history(bot, "o_other") == others  # another user's memory is untouched


def test_every_word_in_every_list_is_recognised(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "语言 zh")  # explicit: typing English words does not switch the language
    for word in sorted(words.FORGET_WORDS):
        for typed in (word, f" {word.upper()}。", f"{word}!"):
            assert content(say(bot, "o_u", typed)) == translate(ASK, "zh"), typed
    say(bot, "o_u", "否")
    for word in sorted(words.MEMORY_WORDS):
        assert content(say(bot, "o_u", word)) == status("zh", 1), word  # 「语言 zh」 only


@pytest.mark.parametrize("language", ["zh", "en", "ja", "th", "tl"])
def test_the_welcome_advertises_both_commands_in_each_language(language: str) -> None:
    welcome = translate(DEFAULT_WELCOME, language)
    assert any(word in welcome for word in words.FORGET_WORDS), welcome
    assert any(word in welcome for word in words.MEMORY_WORDS), welcome
    assert any(word in translate(HOW_TO_FORGET, language) for word in words.FORGET_WORDS)


def test_without_a_memory_window_limit_of_days_it_says_so(make_app) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(memory_days=0, history_rounds=4).extensions["wxbot.bot"]
    say(bot, "o_u", "一个问题")
    assert content(say(bot, "o_u", "我的记忆")) == status("zh", 1, window=4, days=0)


# --- the confirmation ---------------------------------------------------------------------------


def test_anything_but_yes_keeps_the_memory(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "第一个问题")
    before = history(bot, "o_u")
    say(bot, "o_u", "清除记忆")
    assert content(say(bot, "o_u", "取消")) == translate(KEPT, "zh")  # 取消 refuses it
    assert history(bot, "o_u") == before

    say(bot, "o_u", "清除记忆")
    reply = content(say(bot, "o_u", "另一个问题"))  # answered as usual, the question lapses
    assert reply not in (translate(KEPT, "zh"), translate(FORGOTTEN, "zh"))
    assert history(bot, "o_u") == [*before, ["user", "另一个问题"], ["bot", reply]]
    assert content(say(bot, "o_u", "是")) != translate(FORGOTTEN, "zh")  # no longer asked
    assert history(bot, "o_u")[: len(before)] == before

    say(bot, "o_u", "清除记忆")
    assert content(say(bot, "o_u", "是")) == translate(FORGOTTEN, "zh")
    assert history(bot, "o_u") == []


def test_yes_without_the_question_is_an_ordinary_message(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "第一个问题")
    assert content(say(bot, "o_u", "是")) != translate(FORGOTTEN, "zh")
    assert len(history(bot, "o_u")) == 4


def test_the_confirmation_lapses_with_the_context(bot, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "第一个问题")
    say(bot, "o_u", "清除记忆")
    clock.advance(601)  # WXBOT_SESSION_TTL: the dialogue starts over, the history stays
    assert content(say(bot, "o_u", "是")) != translate(FORGOTTEN, "zh")
    kept = history(bot, "o_u")
    assert len(kept) == 4 and kept[0] == ["user", "第一个问题"] and kept[2] == ["user", "是"]


def test_a_retry_of_the_same_message_clears_nothing_twice(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "o_u", "第一个问题")
    asked = text("o_u", "清除记忆", msg_id="7001")
    confirmed = text("o_u", "是", msg_id="7002")
    assert content(bot.handle(asked)) == translate(ASK, "zh")
    assert content(bot.handle(confirmed)) == translate(FORGOTTEN, "zh")
    reply = content(say(bot, "o_u", "清除之后的问题"))
    after = [["user", "清除之后的问题"], ["bot", reply]]
    assert history(bot, "o_u") == after
    # WeChat delivers both again (same MsgId): the recorded replies, and nothing happens
    assert content(bot.handle(text("o_u", "清除记忆", msg_id="7001"))) == translate(ASK, "zh")
    assert content(bot.handle(text("o_u", "是", msg_id="7002"))) == translate(FORGOTTEN, "zh")
    assert history(bot, "o_u") == after
    # and the retried question did not arm a new confirmation
    assert content(say(bot, "o_u", "是")) != translate(FORGOTTEN, "zh")


# --- in the middle of a task ---------------------------------------------------------------------


@pytest.fixture
def tbot(make_app, fake_apis: FakeApis, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{fake_apis.url}/recharge")
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def test_while_the_weather_waits_for_a_city(tbot) -> None:  # type: ignore[no-untyped-def]
    say(tbot, "o_u", "你好")
    assert content(say(tbot, "o_u", "天气")) == weather.ASK_CITY
    assert content(say(tbot, "o_u", "我的记忆")) == f"{status('zh', 2)}\n\n{weather.ASK_CITY}"
    assert content(say(tbot, "o_u", "清除记忆")) == translate(ASK, "zh")  # the question alone
    assert state_of(tbot, "o_u") == ("WAIT_WEATHER_CITY", 0)
    reply = content(say(tbot, "o_u", "是"))
    assert reply == f"{translate(FORGOTTEN, 'zh')}\n\n{weather.ASK_CITY}"
    assert state_of(tbot, "o_u") == ("WAIT_WEATHER_CITY", 0)  # still waiting, no wrong answer
    assert history(tbot, "o_u") == []
    assert content(say(tbot, "o_u", "上海")).startswith("上海市天气")  # the city still answers it
    assert state_of(tbot, "o_u") == ("WAIT_QUERY", 0)


def test_in_the_middle_of_a_business_flow(tbot) -> None:  # type: ignore[no-untyped-def]
    say(tbot, "o_u", "查充值")
    say(tbot, "o_u", "12")  # one wrong answer
    wrong = state_of(tbot, "o_u")
    assert wrong[1] == 1
    assert content(say(tbot, "o_u", "删除记忆")) == translate(ASK, "zh")
    reply = content(say(tbot, "o_u", "否"))
    assert reply.startswith(translate(KEPT, "zh") + "\n\n") and "订单号" in reply  # asked again
    assert state_of(tbot, "o_u") == wrong  # the step and its attempts as they were
    assert len(history(tbot, "o_u")) == 4
    say(tbot, "o_u", "清除记忆")
    reply = content(say(tbot, "o_u", "是"))
    assert reply.startswith(translate(FORGOTTEN, "zh") + "\n\n") and "订单号" in reply
    assert state_of(tbot, "o_u") == wrong
    assert history(tbot, "o_u") == []
    assert content(say(tbot, "o_u", "202501150830123456")).endswith(RECHARGE_REPLIES["zh"])
    assert state_of(tbot, "o_u") == ("WAIT_QUERY", 0)


# --- both stores, with the LLM ---------------------------------------------------------------------


def test_both_stores_are_emptied_and_the_next_prompt_carries_none_of_it(
    make_app, fake_llm: FakeLlm, clock
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(**fake_llm.settings(admin_token=TOKEN, llm_rate=0, llm_daily_tokens=0))
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_u", "语言 zh")
    window = client.put("/admin/api/sessions/o_u", json={"history_rounds": 4}, headers=AUTH)
    assert window.status_code == 200
    for i in range(3):
        say(bot, "o_u", f"秘密问题{i}号是什么")
        say(bot, "o_other", f"别人的问题{i}号是什么")
    assert len(json.loads(memory_row(bot, "o_u").history)) == 8  # the durable copy: 4 rounds
    others = (history(bot, "o_other"), memory_row(bot, "o_other").history)
    calls = len(fake_llm.requests)

    assert content(say(bot, "o_u", "清除记忆")) == translate(ASK, "zh")
    assert content(say(bot, "o_u", "是")) == translate(FORGOTTEN, "zh")
    assert len(fake_llm.requests) == calls  # the commands never reach the LLM
    assert history(bot, "o_u") == []
    row = memory_row(bot, "o_u")
    assert json.loads(row.history) == []
    assert row.history_rounds == 4 and row.calls == 3  # window and usage stay
    assert language_row(bot, "o_u") == ("zh", True)
    user = client.get("/admin/api/sessions/o_u", headers=AUTH).get_json()
    assert user["history"] == [] and user["history_rounds"] == 4
    assert user["usage"]["calls"] == 3

    first = content(say(bot, "o_u", "清除后的第一个问题"))
    assert rounds_in(fake_llm.last) == []
    assert "秘密" not in json.dumps(fake_llm.requests[-1], ensure_ascii=False)
    say(bot, "o_u", "清除后的第二个问题")
    assert rounds_in(fake_llm.last) == [("清除后的第一个问题", first)]
    assert len(others[0]) == 6 and len(json.loads(others[1])) == 6
    assert (history(bot, "o_other"), memory_row(bot, "o_other").history) == others

    # Evicted and back: the new context starts from the durable copy, which has nothing of before
    clock.advance(601)
    bot.clean_up()
    say(bot, "o_u", "回来以后的问题")
    assert [q for q, _ in rounds_in(fake_llm.last)] == ["清除后的第一个问题", "清除后的第二个问题"]
    assert "秘密" not in json.dumps(fake_llm.requests[-1], ensure_ascii=False)


def test_clearing_works_for_a_user_only_the_durable_copy_remembers(
    make_app, fake_llm: FakeLlm, clock
) -> None:  # type: ignore[no-untyped-def]
    """Evicted since their last LLM answer: the new context starts from the memories row,
    and clearing empties that one too."""
    bot = make_app(**fake_llm.settings(llm_rate=0, llm_daily_tokens=0)).extensions["wxbot.bot"]
    say(bot, "o_u", "我叫小明，记住了吗")
    clock.advance(601)
    bot.clean_up()
    say(bot, "o_u", "清除记忆")
    say(bot, "o_u", "是")
    assert json.loads(memory_row(bot, "o_u").history) == []
    clock.advance(601)
    bot.clean_up()
    say(bot, "o_u", "我叫什么名字")
    assert rounds_in(fake_llm.last) == []


# --- flow files may not take these words ------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    ["清除记忆", "clear memory", "記憶を消去", "ล้างความจำ", "burahin ang alaala", "我的记忆"],
)
def test_a_flow_trigger_equal_to_a_memory_word_is_refused(tmp_path, trigger: str) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited("[查订单]", f"[查订单, '{trigger}']"))
    assert_reported(path, found, 2, "a word the bot itself answers")
