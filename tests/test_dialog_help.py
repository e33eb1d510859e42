"""「帮助」 / help: in WAIT_QUERY the knowledge base's own answer or the welcome text, never
"I can't answer that" nor an unanswered question logged; mid-step the step's question asked
again, never a wrong answer counting towards the hand-off (SQLite and MySQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say, state_of
from tests.phone_texts import phone
from wxbot.config import DEFAULT_WELCOME
from wxbot.dialog.handlers import music, weather
from wxbot.i18n import translate
from wxbot.qa import writer
from wxbot.qa.models import KbUnanswered

PHONE = "13800138000"


@pytest.fixture
def hbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def _unanswered(bot) -> int:  # type: ignore[no-untyped-def]
    with bot.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(KbUnanswered)).scalar_one()


@pytest.mark.parametrize(
    ("word", "language"),
    [("帮助", "zh"), ("菜单", "zh"), ("帮助？", "zh"), ("help", "en"), ("Help!", "en")]
    + [("menu", "en"), ("ヘルプ", "ja"), ("เมนู", "th")],
)
def test_help_says_what_the_account_offers(hbot, word: str, language: str) -> None:  # type: ignore[no-untyped-def]
    """A new user's first message: the welcome in the language it is written in."""
    reply = content(say(hbot, "u1", word))
    assert reply == translate(DEFAULT_WELCOME, language)
    assert _unanswered(hbot) == 0  # not a question the knowledge base failed
    assert state_of(hbot, "u1") == ("WAIT_QUERY", 0)


def test_help_in_the_language_the_user_chose(hbot) -> None:  # type: ignore[no-untyped-def]
    say(hbot, "u1", "语言 ja")
    reply = content(say(hbot, "u1", "帮助"))
    assert reply == translate(DEFAULT_WELCOME, "ja")
    assert reply != translate(DEFAULT_WELCOME, "zh")


def test_help_is_the_operators_welcome(make_app) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(welcome="我们是社区图书馆：发书名查馆藏。").extensions["wxbot.bot"]
    assert content(say(bot, "u1", "帮助")) == "我们是社区图书馆：发书名查馆藏。"


def test_a_knowledge_entry_for_the_word_wins(hbot, clock) -> None:  # type: ignore[no-untyped-def]
    """A restaurant's 菜单 is its menu, not the bot's: the operator's entry answers."""
    with hbot.engine.begin() as conn:
        writer.teach(conn, "菜单", "今日菜单：牛肉面、炒饭。", now=clock(), taught_by=None)
    assert content(say(hbot, "u1", "菜单")) == "今日菜单：牛肉面、炒饭。"
    assert content(say(hbot, "u1", "帮助")) == translate(DEFAULT_WELCOME, "zh")


def test_help_while_a_step_waits_asks_again(hbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(hbot, "u1", "天气")) == weather.ASK_CITY
    assert content(say(hbot, "u1", "帮助")) == weather.ASK_CITY
    assert fake_apis.hits["geocoding"] == 0  # not looked up as a city
    assert state_of(hbot, "u1") == (weather.WAIT_WEATHER_CITY, 0)
    assert content(say(hbot, "u1", "北京")).startswith("北京市天气")


def test_help_never_counts_towards_the_hand_off(hbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    """The phone flow hands off after 3 wrong answers: asking for help 5 times is none."""
    asked = content(say(hbot, "u1", "绑定手机"))
    for word in ("帮助", "help", "菜单", "帮助", "help"):
        assert content(say(hbot, "u1", word)) == asked
    assert state_of(hbot, "u1")[1] == 0
    assert content(say(hbot, "u1", PHONE)) == phone.SENT.format(phone="138****8000")
    assert len(fake_apis.sms) == 1


def test_a_sentence_with_the_word_is_a_question(hbot) -> None:  # type: ignore[no-untyped-def]
    """Only the whole message is the command: 「帮助中心在哪」 is asked as a question."""
    reply = content(say(hbot, "u1", "帮助中心在哪"))
    assert reply != translate(DEFAULT_WELCOME, "zh")


MENU_FLOW = """
name: order_food
triggers: [菜单]
steps:
  - slot: table_no
    type: digits
    length: 2
    state: WAIT_TABLE
    ask: {zh: 请发两位桌号（桌角贴纸上）。}
    invalid: {zh: 桌号是两位数字，请再发一次。}
action:
  reply: {zh: "好的，{table_no} 号桌的菜单马上送到。"}
"""


def test_a_flow_that_claims_the_word_starts(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A restaurant's flow triggered by 菜单 comes first; 「帮助」 at its step asks again."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "food.yaml").write_text(MENU_FLOW, encoding="utf-8")
    bot = make_app(flows_dir=str(flows)).extensions["wxbot.bot"]
    assert content(say(bot, "u1", "菜单")) == "请发两位桌号（桌角贴纸上）。"
    assert content(say(bot, "u1", "帮助")) == "请发两位桌号（桌角贴纸上）。"
    assert state_of(bot, "u1") == ("WAIT_TABLE", 0)
    assert content(say(bot, "u1", "12")) == "好的，12 号桌的菜单马上送到。"


def test_where_any_text_is_the_answer_the_word_is_the_answer(hbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    """A song may be called "Help!": as with command words, a step whose answer may be any
    text takes it as the answer (README "Changing your mind mid-task")."""
    assert content(say(hbot, "u1", "点歌")) == music.ASK_SONG
    say(hbot, "u1", "Help!")
    assert fake_apis.hits["music"] == 1  # looked up as the song


def test_an_admin_may_teach_the_word_itself(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(admin_openids=frozenset({"o_admin"})).extensions["wxbot.bot"]
    say(bot, "o_admin", "学习")
    say(bot, "o_admin", "帮助")  # the question being taught
    say(bot, "o_admin", "发「天气 城市」查天气，发「人工」找客服。")  # its answer
    say(bot, "o_admin", "是")
    assert content(say(bot, "u2", "帮助")) == "发「天气 城市」查天气，发「人工」找客服。"


def test_a_menu_button_called_help(hbot) -> None:  # type: ignore[no-untyped-def]
    """The most common menu button: its key 「帮助」 clicked is the word typed."""
    reply = content(hbot.handle(event("u1", "click", "帮助")))
    assert reply == translate(DEFAULT_WELCOME, "zh")
    assert _unanswered(hbot) == 0
