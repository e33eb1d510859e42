"""Everything that is not a plain text message, in every waiting state, through the real
WSGI callback (the simulator plays WeChat) on SQLite and MariaDB: pictures, stickers, voice
messages with and without recognition, files, links, locations, menu clicks, and the events
the user did not cause (LOCATION reports, template messages delivered...)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.phone_texts import phone
from wxbot.dialog import words
from wxbot.dialog.handlers import learn, music, weather
from wxbot.i18n import translate
from wxbot.messages.replies import Music, Reply, Silent, Text, TransferToHuman
from wxbot.models import Context, SeenMessage
from wxbot.qa import writer
from wxbot.qa.models import KbUnanswered
from wxbot.wechat.simulator import WeChatSimulator

ADMIN, ADMIN2 = "o_kinds_admin", "o_kinds_admin2"  # may teach: every state is reachable
PHONE = "13800138000"
MASKED = "138****8000"
ORDER_ASK = "请提供 18 位充值订单号（在「我的 - 订单」里可以找到）。"
HOURS_Q, HOURS_A = "营业时间是几点", "每天 9:00-21:00 营业。"


@pytest.fixture
def app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    settings = fake_apis.settings(sms_backend="webhook", admin_openids=frozenset({ADMIN, ADMIN2}))
    app = make_app(**settings)
    with app.extensions["wxbot.engine"].begin() as conn:
        writer.teach(conn, HOURS_Q, HOURS_A, now=app.extensions["wxbot.clock"](), taught_by=None)
    return app


class Chat:
    """One WeChat server talking to the app: posts signed XML to /wechat, reads the reply."""

    def __init__(self, app: Any) -> None:
        settings = app.extensions["wxbot.settings"]
        self.app, self.client = app, app.test_client()
        self.clock = app.extensions["wxbot.clock"]
        self.sim = WeChatSimulator(settings.token, settings.appid, None, "plain", clock=self.clock)

    def post(self, message: dict[str, Any]) -> Reply:
        return self.sim.post(self.client, message)

    def say(self, openid: str, text: str) -> Reply:
        return self.post(self.sim.text(text, openid))

    def voice(self, openid: str, recognition: str) -> Reply:
        return self.post(self.sim.voice(recognition, openid))

    def location_report(self, openid: str) -> Reply:
        report = {"Latitude": "31.2", "Longitude": "121.5", "Precision": "30"}
        return self.post(self.sim.event("LOCATION", "", openid, **report))

    def click(self, openid: str, key: str) -> Reply:
        return self.post(self.sim.event("CLICK", key, openid))

    def row(self, openid: str) -> Any:
        table = Context.__table__
        with self.app.extensions["wxbot.engine"].connect() as conn:
            return conn.execute(select(table).where(table.c.openid == openid)).first()

    def state(self, openid: str) -> tuple[str, int]:
        row = self.row(openid)
        return (row.state, row.attempts)

    def count(self, model: Any) -> int:
        with self.app.extensions["wxbot.engine"].connect() as conn:
            return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


@pytest.fixture
def chat(app) -> Chat:  # type: ignore[no-untyped-def]
    return Chat(app)


def text_of(reply: Reply) -> str:
    assert isinstance(reply, Text), reply
    return reply.content


# --- what a step asks, and how to get there ----------------------------------------------

CHOOSE_CHAOYANG = (
    "找到多个叫「朝阳」的地方，请回复序号：\n1. 朝阳区（中国 北京市）\n2. 朝阳市（中国 辽宁省）"
)
STEPS: dict[str, tuple[list[str], str]] = {  # state: (messages that lead there, its prompt)
    "WAIT_WEATHER_CITY": (["天气"], weather.ASK_CITY),
    "WAIT_WEATHER_CHOICE": (["天气 朝阳"], CHOOSE_CHAOYANG),
    "WAIT_MUSIC_INFO": (["点歌"], music.ASK_SONG),
    "WAIT_PHONE_NUMBER": (["绑定手机"], phone.ASK_NUMBER),
    "WAIT_PHONE_CODE": (["绑定手机", PHONE], phone.ENTER_CODE),
    "WAIT_RECHARGE_ORDER": (["查充值"], ORDER_ASK),
    "WAIT_LEARN": (["学习"], learn.ASK_QUESTION_AGAIN),
    "WAIT_CONFIRM": (["学习", HOURS_Q, "不营业"], learn.ASK_YES_NO),
}


def enter(chat: Chat, openid: str, state: str) -> None:
    for message in STEPS[state][0]:
        chat.say(openid, message)
    assert chat.state(openid) == (state, 0)


def no_words(chat: Chat, openid: str) -> dict[str, dict[str, Any]]:
    """Messages without words a user may send while a step waits for some."""
    sim = chat.sim
    return {
        "image": sim.image(openid),
        "voice without recognition": sim.voice("", openid),
        "video": sim.video(openid),
        "short video": sim.video(openid, short=True),
        "file": sim.message("file", openid, Title="合同.pdf", FileKey="k", FileMd5="m"),
        "link": sim.link("13800138000", "https://example.com/a", openid),
        "sticker code": sim.text("/::)", openid),
        "sticker name": sim.text("[Smile][旺柴]", openid),
        "emoji": sim.text("👍🏻❤️", openid),
        "empty text": sim.text("  ", openid),
        "mini program": sim.message("miniprogrampage", openid, Title="x"),
    }


@pytest.mark.parametrize("state", list(STEPS))
def test_no_words_mid_step_are_asked_again_never_counted(chat: Chat, state: str) -> None:
    """A picture, a sticker, a voice WeChat could not hear...: the step is asked again, and
    however many arrive, nothing counts as a wrong answer or hands the user to a human."""
    openid = ADMIN
    enter(chat, openid, state)
    prompt = STEPS[state][1]
    rounds = chat.row(openid).rounds
    for _ in range(chat.app.extensions["wxbot.settings"].max_attempts + 1):
        for name, message in no_words(chat, openid).items():
            reply = text_of(chat.post(message))
            first = words.VOICE_STEP if name.startswith("voice") else words.NEEDS_TEXT
            assert reply == f"{first}\n\n{prompt}", (name, reply)
            assert chat.state(openid) == (state, 0), name
    assert chat.row(openid).rounds == rounds  # nor rounds towards the flow's limit


def test_a_location_shared_where_no_place_is_asked_is_no_answer(chat: Chat) -> None:
    enter(chat, "u1", "WAIT_PHONE_NUMBER")
    reply = text_of(chat.post(chat.sim.location(31.2, 121.5, "上海", "u1")))
    assert reply == f"{words.NEEDS_TEXT}\n\n{phone.ASK_NUMBER}"
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)


def test_a_location_shared_answers_the_city_question(chat: Chat, fake_apis: FakeApis) -> None:
    enter(chat, "u1", "WAIT_WEATHER_CITY")
    reply = text_of(chat.post(chat.sim.location(23.1291, 113.2644, "广州市海珠区", "u1")))
    assert reply.startswith("广州市海珠区天气")
    assert chat.state("u1") == ("WAIT_QUERY", 0)


# --- no words in WAIT_QUERY ----------------------------------------------------------------


def test_no_words_in_wait_query_get_a_helpful_reply_and_are_not_logged(chat: Chat) -> None:
    for name, message in no_words(chat, "u1").items():
        expected = words.NON_TEXT
        if name == "empty text":  # typed, but nothing written yet: not "text only" (a text)
            expected = words.BLANK
        elif name.startswith("voice"):
            expected = words.VOICE_UNHEARD
        elif name.startswith(("sticker", "emoji")):
            expected = words.STICKER
        assert text_of(chat.post(message)) == expected, name
    assert chat.count(KbUnanswered) == 0  # neither sticker codes nor link titles are questions


def test_a_sticker_first_does_not_make_the_user_english(chat: Chat) -> None:
    """「/:rose」 and 「[Smile]」 are Latin letters, not the user's English."""
    assert text_of(chat.say("u1", "/:rose")) == words.STICKER
    assert text_of(chat.say("u1", "[Smile]")) == words.STICKER
    assert text_of(chat.say("u1", HOURS_Q)) == HOURS_A
    assert text_of(chat.say("u1", "/::)")) == words.STICKER


def test_an_english_link_title_does_not_switch_the_language(chat: Chat) -> None:
    chat.say("u1", HOURS_Q)
    chat.post(chat.sim.link("How to get a refund for your order", "https://e.com/r", "u1"))
    assert text_of(chat.voice("u1", "")) == words.VOICE_UNHEARD  # still Chinese


def test_an_unheard_voice_is_answered_in_the_users_language(chat: Chat) -> None:
    chat.say("u1", "language en")
    assert text_of(chat.voice("u1", "")) == translate(words.VOICE_UNHEARD, "en")
    chat.say("u1", "bind phone")
    reply = text_of(chat.voice("u1", ""))
    assert reply.startswith(translate(words.VOICE_STEP, "en") + "\n\n")
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)


def test_a_sticker_keeps_the_did_you_mean_list_and_the_pages(chat: Chat) -> None:
    bot = chat.app.extensions["wxbot.bot"]
    bot.deps.kb.confident = bot.deps.kb.sure = 99.0  # every match is a did-you-mean choice
    assert "1. " in text_of(chat.say("u1", "营业时间"))
    assert text_of(chat.say("u1", "/::)")) == words.STICKER
    assert text_of(chat.say("u1", "1")) == HOURS_A


# --- voice with recognition: exactly the typed text --------------------------------------


def test_phone_binding_by_voice(chat: Chat, fake_apis: FakeApis) -> None:
    """Recognition writes digits in Chinese, in groups, with a full stop."""
    assert text_of(chat.voice("u1", "绑定手机。")) == phone.ASK_NUMBER
    reply = text_of(chat.voice("u1", "幺三八，零零幺三，八零零零。"))
    assert reply == phone.SENT.format(phone=MASKED)
    spoken = "".join("零一二三四五六七八九"[int(d)] for d in fake_apis.sms[-1]["code"])
    assert text_of(chat.voice("u1", f"{spoken[:3]}，{spoken[3:]}。")) == phone.BOUND.format(
        phone=MASKED
    )
    assert chat.state("u1") == ("WAIT_QUERY", 0)


def test_a_number_by_voice_inside_a_sentence(chat: Chat, fake_apis: FakeApis) -> None:
    assert text_of(chat.voice("u1", "绑定手机，我的手机号是一三八零零一三八零零零。")) == (
        phone.SENT.format(phone=MASKED)
    )


@pytest.mark.parametrize("said", ["第二个。", "二。", "2。"])
def test_picking_a_place_by_voice(chat: Chat, fake_apis: FakeApis, said: str) -> None:
    enter(chat, "u1", "WAIT_WEATHER_CHOICE")
    assert text_of(chat.voice("u1", said)).startswith("朝阳市天气")


def test_picking_a_did_you_mean_choice_by_voice(chat: Chat) -> None:
    bot = chat.app.extensions["wxbot.bot"]
    bot.deps.kb.confident = bot.deps.kb.sure = 99.0
    chat.say("u1", "营业时间")
    assert text_of(chat.voice("u1", "一。")) == HOURS_A


@pytest.mark.parametrize("state", list(STEPS))
def test_voice_is_read_as_the_same_typed_text_in_every_state(chat: Chat, state: str) -> None:
    """Two users in the same step: one types, one speaks; the same replies and states."""
    said = {
        "WAIT_CONFIRM": ["好吗", "否。"],  # (nothing the other user would then find taught)
        "WAIT_LEARN": ["周末有人值班吗。", "取消。"],
        "WAIT_PHONE_CODE": ["重发。", "取消。"],
    }.get(state, ["不知道。", "取消。"])
    typed_user, voice_user = ADMIN2, ADMIN
    enter(chat, typed_user, state)
    typed = [chat.say(typed_user, text) for text in said]
    typed_state = chat.state(typed_user)
    enter(chat, voice_user, state)
    spoken = [chat.voice(voice_user, text) for text in said]
    assert spoken == typed
    assert chat.state(voice_user) == typed_state


# --- events the user did not cause ---------------------------------------------------------


@pytest.mark.parametrize("state", ["WAIT_WEATHER_CITY", "WAIT_WEATHER_CHOICE"])
def test_a_location_report_does_not_answer_the_city_question(
    chat: Chat, fake_apis: FakeApis, state: str
) -> None:
    """WeChat reports the location every 5 s while the user is in the chat: one arriving
    right after 「想查哪个城市？」 answered it, and the city then typed went to the knowledge
    base as a question."""
    enter(chat, "u1", state)
    calls = sum(fake_apis.hits.values())
    for _ in range(3):
        assert chat.location_report("u1") == Silent()
    assert chat.state("u1") == (state, 0)
    assert sum(fake_apis.hits.values()) == calls  # no forecast looked up
    assert text_of(chat.say("u1", "上海")).startswith("上海市天气")


UNCAUSED = {
    "LOCATION": ("LOCATION", "", {"Latitude": "31.2", "Longitude": "121.5", "Precision": "3"}),
    "TEMPLATESENDJOBFINISH": ("TEMPLATESENDJOBFINISH", "", {"Status": "success", "MsgID": "9"}),
    "MASSSENDJOBFINISH": ("MASSSENDJOBFINISH", "", {"Status": "send success", "MsgID": "7"}),
    "VIEW": ("VIEW", "https://example.com/menu", {}),
    "kf_close_session": ("kf_close_session", "", {"KfAccount": "test1@test"}),
    "future": ("some_future_event", "x", {}),
}


@pytest.mark.parametrize("name", list(UNCAUSED))
def test_events_the_user_did_not_cause_create_no_context(chat: Chat, name: str) -> None:
    """Someone who never wrote gets no context (nor counts as a new user)."""
    event, key, extra = UNCAUSED[name]
    assert chat.post(chat.sim.event(event, key, "o_never_wrote", **extra)) == Silent()
    assert chat.row("o_never_wrote") is None


@pytest.mark.parametrize("name", list(UNCAUSED))
def test_events_the_user_did_not_cause_keep_no_step_alive(chat: Chat, name: str) -> None:
    """A step still times out as if nothing had come: a LOCATION report on re-entering the
    chat kept the phone step alive, and the question then asked was a wrong phone number."""
    event, key, extra = UNCAUSED[name]
    enter(chat, "u1", "WAIT_PHONE_NUMBER")
    ttl = chat.app.extensions["wxbot.settings"].session_ttl
    chat.clock.advance(ttl - 5)
    assert chat.post(chat.sim.event(event, key, "u1", **extra)) == Silent()
    chat.clock.advance(10)  # idle for longer than the TTL: the step has timed out
    assert text_of(chat.say("u1", HOURS_Q)) == f"{words.TIMED_OUT}\n{HOURS_A}"


def test_a_location_report_from_a_newcomer_is_never_told_to_come_back(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(make_app(max_sessions=1))
    chat.say("o_first", "你好")
    assert text_of(chat.say("o_second", "你好")) == words.BUSY  # a message: told, rightly
    assert chat.location_report("o_third") == Silent()  # nothing was asked: nothing to say


def test_a_late_result_is_not_spent_on_a_template_delivered(chat: Chat) -> None:
    """WeChat shows no reply to TEMPLATESENDJOBFINISH: a result owed to the user must wait
    for a reply they see."""
    bot = chat.app.extensions["wxbot.bot"]
    chat.say("u1", "你好")
    bot.resumer.queue_late("u1", Text("结果：小雨"))
    template = chat.sim.event("TEMPLATESENDJOBFINISH", "", "u1", Status="success")
    assert chat.post(template) == Silent()
    assert "结果：小雨" in text_of(chat.say("u1", HOURS_Q))


# --- menu clicks ---------------------------------------------------------------------------


def test_a_menu_key_is_a_command_or_a_question(chat: Chat, fake_apis: FakeApis) -> None:
    assert text_of(chat.click("u1", HOURS_Q)) == HOURS_A
    assert text_of(chat.click("u1", "天气")) == weather.ASK_CITY
    assert chat.click("u1", "人工") == TransferToHuman()


def test_an_unknown_menu_key_mid_step_asks_again_without_counting(chat: Chat) -> None:
    enter(chat, "u1", "WAIT_PHONE_NUMBER")
    for _ in range(chat.app.extensions["wxbot.settings"].max_attempts + 1):
        assert text_of(chat.click("u1", "V1001_TODAY_MUSIC")) == phone.ASK_NUMBER
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)


def test_a_menu_question_mid_step_is_answered_and_the_step_kept(chat: Chat) -> None:
    enter(chat, "u1", "WAIT_WEATHER_CITY")
    assert text_of(chat.click("u1", HOURS_Q)) == f"{HOURS_A}\n\n{weather.ASK_CITY}"
    assert chat.state("u1") == ("WAIT_WEATHER_CITY", 0)


def test_a_menu_key_is_never_taught_nor_searched_as_a_song(chat: Chat, fake_apis) -> None:  # type: ignore[no-untyped-def]
    enter(chat, ADMIN, "WAIT_LEARN")
    assert text_of(chat.click(ADMIN, "V1001_TODAY_MUSIC")) == learn.ASK_QUESTION_AGAIN
    assert chat.state(ADMIN) == ("WAIT_LEARN", 0)
    assert chat.row(ADMIN).slots == '{"step": "question"}'
    assert isinstance(chat.click(ADMIN, "点歌 晴天"), Music)  # another task's menu button
    enter(chat, "u2", "WAIT_MUSIC_INFO")
    assert text_of(chat.click("u2", "V1001_TODAY_MUSIC")) == music.ASK_SONG
    assert fake_apis.hits["music"] == 1


# --- dedup of events -------------------------------------------------------------------------


def test_two_clicks_in_one_second_are_two_and_a_retry_is_one(chat: Chat, fake_apis) -> None:  # type: ignore[no-untyped-def]
    hours = chat.sim.event("CLICK", HOURS_Q, "u1")
    weather_key = chat.sim.event("CLICK", "天气", "u1")  # same CreateTime, another key
    assert text_of(chat.post(hours)) == HOURS_A
    assert text_of(chat.post(weather_key)) == weather.ASK_CITY
    assert text_of(chat.post(hours)) == HOURS_A  # WeChat's retry: the stored reply
    assert chat.state("u1") == ("WAIT_WEATHER_CITY", 0)  # the retry changed nothing
    with chat.app.extensions["wxbot.engine"].connect() as conn:
        stored = conn.execute(select(func.count()).where(SeenMessage.openid == "u1")).scalar_one()
    assert stored == 2
