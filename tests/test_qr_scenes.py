"""Parametric QR codes (scene id or string): a SCAN by a follower, or a subscribe through the
code (``qrscene_<scene>``), through the real /wechat callback on SQLite and MariaDB.

A scene the bot understands as typed text (a command word, a flow trigger, a question the
knowledge base answers confidently) is handled like a menu key; a subscribe gets the welcome
and what the scene does in one reply. A scene that is only a tracking code (「123」,
「store_17」) stays silent: no transaction, no context, no unanswered question.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.phone_texts import phone
from tests.wechat_fakes import KEY
from wxbot.dialog.handlers import learn, music, weather
from wxbot.i18n import translate
from wxbot.messages.replies import Music, Reply, Silent, Text, TransferToHuman
from wxbot.models import Context, SeenMessage
from wxbot.qa import writer
from wxbot.qa.importer import import_files
from wxbot.qa.models import KbUnanswered
from wxbot.stats import day_of, read_counts, zone
from wxbot.wechat.chat import message_for
from wxbot.wechat.simulator import WeChatSimulator

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "o_qr_admin"
ADMINS = frozenset({ADMIN, *(f"{ADMIN}_{how}{n}" for how in "sc" for n in range(10))})
ORDER_ASK = "请提供 18 位充值订单号（在「我的 - 订单」里可以找到）。"
HOURS_Q, HOURS_A = "营业时间是几点", "每天 9:00-21:00 营业。"
LONG_Q = "年货节礼盒清单"
LONG_A = "\n".join(f"第{i}款礼盒：坚果、茶叶和点心，{i * 10 + 88} 元。" for i in range(1, 120))
TRACKING = ["123", "42", "0", "store_17", "utm_source=poster&utm_medium=qr", "counter-B3"]
TOKEN, APPID = "qr-token", "wx00qr00000000001"


@pytest.fixture
def app(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    settings = fake_apis.settings(
        sms_backend="webhook",
        admin_openids=ADMINS,
        token=TOKEN,
        appid=APPID,
        encoding_aes_key=KEY,
    )
    app = make_app(**settings)
    engine, now = app.extensions["wxbot.engine"], app.extensions["wxbot.clock"]()
    # a realistic knowledge base: tracking codes must not be taken for its questions
    faq = [str(ROOT / "knowledge" / name) for name in ("faq.txt", "faq-languages.txt")]
    import_files(engine, faq, now=now)
    with engine.begin() as conn:
        writer.teach(conn, HOURS_Q, HOURS_A, now=now, taught_by=None)
        writer.teach(conn, LONG_Q, LONG_A, now=now, taught_by=None)
    return app


class Chat:
    """WeChat's server posting signed XML to /wechat (plain mode; ``safe`` encrypts)."""

    def __init__(self, app: Any, mode: str = "plain") -> None:
        self.app, self.client = app, app.test_client()
        self.bot = app.extensions["wxbot.bot"]
        self.welcome = app.extensions["wxbot.settings"].welcome
        key = KEY if mode != "plain" else None
        clock = app.extensions["wxbot.clock"]
        self.sim = WeChatSimulator(TOKEN, APPID, key, mode, clock=clock)

    def post(self, message: dict[str, Any]) -> Reply:
        return self.sim.post(self.client, message)

    def say(self, openid: str, text: str) -> Reply:
        return self.post(self.sim.text(text, openid))

    def scan(self, openid: str, scene: str) -> Reply:
        return self.post(self.sim.event("SCAN", scene, openid, Ticket="gQH47joAAAAAAAAAASxodHRw"))

    def follow(self, openid: str, scene: str) -> Reply:
        return self.post(self.sim.event("subscribe", f"qrscene_{scene}", openid, Ticket="T"))

    def row(self, openid: str) -> Any:
        table = Context.__table__
        with self.app.extensions["wxbot.engine"].connect() as conn:
            return conn.execute(select(table).where(table.c.openid == openid)).first()

    def state(self, openid: str) -> tuple[str, int]:
        row = self.row(openid)
        return (row.state, row.attempts)

    def count(self, model: Any, **where: Any) -> int:
        table = model.__table__
        stmt = select(func.count()).select_from(table)
        for name, value in where.items():
            stmt = stmt.where(table.c[name] == value)
        with self.app.extensions["wxbot.engine"].connect() as conn:
            return conn.execute(stmt).scalar_one()

    def enter(self, openid: str, *messages: str) -> None:
        for message in messages:
            self.say(openid, message)


@pytest.fixture
def chat(app) -> Chat:  # type: ignore[no-untyped-def]
    return Chat(app)


def text_of(reply: Reply) -> str:
    assert isinstance(reply, Text), reply
    return reply.content


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- what the bot understands --------------------------------------------------------------


def test_understood_scenes_are_commands_triggers_and_known_questions(chat: Chat) -> None:
    dialogue = chat.bot.dialogue
    with chat.app.extensions["wxbot.engine"].connect() as conn:
        dialogue.deps.kb.refresh_if_stale(conn)  # (the engine catches up before a scan)
    for scene in ("查充值", "绑定手机", "天气", "天气 北京", "点歌", "点歌 晴天", "人工", "取消"):
        assert dialogue.understands(scene), scene
    for scene in ("学习", "语言 en", "language auto", HOURS_Q, "你能做什么", "check my recharge"):
        assert dialogue.understands(scene), scene
    for scene in [*TRACKING, "", "  ", "继续", "qrscene_7", "V1001_TODAY_MUSIC"]:
        assert not dialogue.understands(scene), scene


# --- SCAN by a follower in WAIT_QUERY ------------------------------------------------------


def test_scan_recharge_scene_starts_the_recharge_flow(chat: Chat) -> None:
    assert text_of(chat.scan("u1", "查充值")) == ORDER_ASK
    assert chat.state("u1") == ("WAIT_RECHARGE_ORDER", 0)
    recharge = chat.say("u1", "202501150830123456")
    assert "202501150830123456" in text_of(recharge)  # the flow goes on as typed


def test_scan_weather_scene_asks_for_the_city(chat: Chat, fake_apis: FakeApis) -> None:
    assert text_of(chat.scan("u1", "天气")) == weather.ASK_CITY
    assert chat.state("u1") == ("WAIT_WEATHER_CITY", 0)
    assert "北京" in text_of(chat.say("u1", "北京"))
    assert fake_apis.hits["forecast"] == 1


def test_scan_bind_phone_scene_starts_the_binding(chat: Chat) -> None:
    assert text_of(chat.scan("u1", "绑定手机")) == phone.ASK_NUMBER
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)


def test_scan_knowledge_question_is_answered(chat: Chat) -> None:
    assert text_of(chat.scan("u1", HOURS_Q)) == HOURS_A
    assert chat.state("u1") == ("WAIT_QUERY", 0)
    assert chat.count(KbUnanswered) == 0
    assert chat.scan("u2", "人工") == TransferToHuman()


@pytest.mark.parametrize("scene", TRACKING)
def test_tracking_scene_stays_silent_and_creates_nothing(chat: Chat, scene: str) -> None:
    """Today's behaviour for a code that is only for statistics: success, no transaction (no
    context, no dedup record, no unanswered question, no knowledge lookup counted); the
    same user's next scan of a code that means something is answered."""
    lookups = {r: sample("wxbot_kb_lookups_total", result=r) for r in ("unknown", "suggested")}
    scans = sample("wxbot_messages_total", type="event:scan", outcome="replied")
    assert chat.scan("u1", scene) == Silent()
    assert chat.scan("u1", scene) == Silent()  # its retry too
    assert chat.count(Context, openid="u1") == 0
    assert chat.count(SeenMessage) == 0
    assert chat.count(KbUnanswered) == 0
    assert {r: sample("wxbot_kb_lookups_total", result=r) for r in lookups} == lookups
    assert sample("wxbot_messages_total", type="event:scan", outcome="replied") == scans + 2
    assert text_of(chat.scan("u1", HOURS_Q)) == HOURS_A
    assert chat.count(Context, openid="u1") == 1


def test_tracking_scene_mid_step_leaves_the_step_untouched(chat: Chat) -> None:
    chat.enter("u1", "绑定手机")
    before = chat.row("u1")
    for scene in TRACKING:
        assert chat.scan("u1", scene) == Silent()
    after = chat.row("u1")
    assert (after.state, after.attempts, after.rounds) == ("WAIT_PHONE_NUMBER", 0, before.rounds)
    assert (after.version, after.expires_at) == (before.version, before.expires_at)
    assert chat.count(KbUnanswered) == 0
    # while a scene that means something follows the menu-key rules (the step asked again)
    assert text_of(chat.scan("u1", HOURS_Q)) == f"{HOURS_A}\n\n{phone.ASK_NUMBER}"


# --- SCAN mid-step: the rules of a menu key ------------------------------------------------


def test_scan_mid_step_follows_the_menu_key_rules(chat: Chat, fake_apis: FakeApis) -> None:
    chat.enter("u1", "绑定手机")
    # a knowledge question: answered, the step asked again, never a wrong answer
    for _ in range(chat.app.extensions["wxbot.settings"].max_attempts + 1):
        assert text_of(chat.scan("u1", HOURS_Q)) == f"{HOURS_A}\n\n{phone.ASK_NUMBER}"
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)
    # a flow's trigger that is no command here (its phrase is not first): the step asked again
    assert chat.bot.dialogue.understands("我的充值没到账")
    assert text_of(chat.scan("u1", "我的充值没到账")) == phone.ASK_NUMBER
    assert chat.state("u1") == ("WAIT_PHONE_NUMBER", 0)
    # another task's command: the step is left for it
    assert text_of(chat.scan("u1", "查充值")) == ORDER_ASK
    assert chat.state("u1") == ("WAIT_RECHARGE_ORDER", 0)
    # where any text is an answer (a song title), a scene is never taken for it
    chat.enter("u2", "点歌")
    assert text_of(chat.scan("u2", "天气")) == weather.ASK_CITY
    assert fake_apis.hits["music"] == 0
    chat.enter(ADMIN, "学习")
    assert text_of(chat.scan(ADMIN, HOURS_Q)) == f"{HOURS_A}\n\n{learn.ASK_QUESTION_AGAIN}"
    assert chat.state(ADMIN) == ("WAIT_LEARN", 0)
    assert chat.scan(ADMIN, "人工") == TransferToHuman()


STEPS = {  # a waiting state: the messages that lead there
    "WAIT_WEATHER_CITY": ["天气"],
    "WAIT_MUSIC_INFO": ["点歌"],
    "WAIT_PHONE_NUMBER": ["绑定手机"],
    "WAIT_RECHARGE_ORDER": ["查充值"],
    "WAIT_LEARN": ["学习"],
}
SCENES = [HOURS_Q, "我的充值没到账", "北京天气怎么样", "查充值", "天气", "绑定手机", "取消"]


@pytest.mark.parametrize("state", list(STEPS))
def test_a_scan_mid_step_is_answered_as_the_same_menu_key(
    chat: Chat, state: str, fake_apis: FakeApis
) -> None:
    """In every waiting state, each scene gets what a CLICK with that key gets, and leaves the
    dialogue where the click leaves it."""
    for n, scene in enumerate(SCENES):
        scanned, clicked = f"{ADMIN}_s{n}", f"{ADMIN}_c{n}"
        chat.enter(scanned, *STEPS[state])
        chat.enter(clicked, *STEPS[state])
        assert chat.state(scanned) == chat.state(clicked) == (state, 0)
        by_scan = chat.scan(scanned, scene)
        assert isinstance(by_scan, (Text, TransferToHuman)), (scene, by_scan)
        assert by_scan == chat.post(chat.sim.event("CLICK", scene, clicked)), scene
        assert chat.state(scanned) == chat.state(clicked), scene
    assert chat.count(KbUnanswered) == 0


# --- subscribe through a QR code -----------------------------------------------------------


def test_subscribe_with_a_flow_scene_welcomes_then_asks(chat: Chat) -> None:
    assert text_of(chat.follow("u1", "查充值")) == f"{chat.welcome}\n\n{ORDER_ASK}"
    assert chat.state("u1") == ("WAIT_RECHARGE_ORDER", 0)
    assert text_of(chat.follow("u2", "天气")) == f"{chat.welcome}\n\n{weather.ASK_CITY}"
    assert chat.state("u2") == ("WAIT_WEATHER_CITY", 0)


def test_subscribe_with_a_knowledge_scene_welcomes_then_answers(chat: Chat) -> None:
    assert text_of(chat.follow("u1", HOURS_Q)) == f"{chat.welcome}\n\n{HOURS_A}"
    assert chat.state("u1") == ("WAIT_QUERY", 0)
    assert chat.count(KbUnanswered) == 0


def test_subscribe_with_a_tracking_scene_is_only_welcomed(chat: Chat) -> None:
    for n, scene in enumerate(TRACKING):
        assert text_of(chat.follow(f"t{n}", scene)) == chat.welcome
        assert chat.state(f"t{n}") == ("WAIT_QUERY", 0)
    assert chat.count(KbUnanswered) == 0
    assert text_of(chat.follow("u1", "绑定手机")) == f"{chat.welcome}\n\n{phone.ASK_NUMBER}"


def test_subscribe_with_a_long_answer_is_paged(chat: Chat) -> None:
    limit = chat.app.extensions["wxbot.settings"].reply_max_bytes
    first = text_of(chat.follow("u1", LONG_Q))
    assert first.startswith(f"{chat.welcome}\n\n第1款礼盒")
    assert len(first.encode()) <= limit
    pages = [first]
    while "继续" in pages[-1]:
        pages.append(text_of(chat.say("u1", "继续")))
        assert len(pages[-1].encode()) <= limit
    assert len(pages) > 2
    assert "第119款礼盒" in pages[-1]


def test_subscribe_with_slow_work_shows_the_welcome_with_its_result(
    chat: Chat, fake_apis: FakeApis
) -> None:
    reply = text_of(chat.follow("u1", "天气 北京"))
    assert reply.startswith(f"{chat.welcome}\n\n")
    assert "北京" in reply and fake_apis.hits["forecast"] == 1
    # a reply that cannot carry text (a song) goes alone
    assert isinstance(chat.follow("u2", "点歌 晴天"), Music)
    assert chat.follow("u3", "人工") == TransferToHuman()


def test_subscribe_with_a_language_scene_welcomes_in_that_language(chat: Chat) -> None:
    reply = text_of(chat.follow("u1", "language en"))
    assert reply.startswith(f"{translate(chat.welcome, 'en')}\n\n")
    assert reply.endswith("in English from now on."), reply
    assert text_of(chat.say("u1", "点歌")) != music.ASK_SONG  # English from now on


# --- retries, statistics, the encrypted endpoint --------------------------------------------


def test_a_retried_scan_gets_the_identical_reply_and_changes_nothing(chat: Chat) -> None:
    scan = chat.sim.event("SCAN", "查充值", "u1", Ticket="T")
    other = chat.sim.event("SCAN", HOURS_Q, "u1", Ticket="T")  # same second, another scene
    first = chat.post(scan)
    assert text_of(first) == ORDER_ASK
    rounds = chat.row("u1").rounds
    assert chat.post(scan) == first  # WeChat's retry: the stored reply
    assert chat.row("u1").rounds == rounds
    assert text_of(chat.post(other)) == f"{HOURS_A}\n\n{ORDER_ASK}"
    assert chat.post(scan) == first
    assert chat.state("u1") == ("WAIT_RECHARGE_ORDER", 0)
    assert chat.count(SeenMessage, openid="u1") == 2
    follow = chat.sim.event("subscribe", "qrscene_查充值", "u2", Ticket="T")
    welcomed = chat.post(follow)
    assert text_of(welcomed) == f"{chat.welcome}\n\n{ORDER_ASK}"
    assert chat.post(follow) == welcomed
    assert chat.count(SeenMessage, openid="u2") == 1


def test_statistics_count_a_scan_like_a_menu_key(chat: Chat, clock) -> None:  # type: ignore[no-untyped-def]
    settings = chat.app.extensions["wxbot.settings"]
    day = day_of(clock(), zone(settings.timezone))
    answered = sample("wxbot_kb_lookups_total", result="answered")
    for scene in TRACKING:
        chat.scan("u1", scene)
    chat.scan("u1", HOURS_Q)
    chat.follow("u2", HOURS_Q)
    chat.follow("u3", "store_17")
    # one lookup counted per scene answered, none for understanding it or for tracking codes
    assert sample("wxbot_kb_lookups_total", result="answered") == answered + 2
    chat.bot.stats.flush()
    with chat.app.extensions["wxbot.engine"].connect() as conn:
        counts = read_counts(conn, date.fromisoformat(day), date.fromisoformat(day))
    assert counts.get(day, Counter()) == Counter(answered=2, new_users=3)


def test_the_chat_command_scans_a_scene(chat: Chat, fake_apis: FakeApis) -> None:
    scan = message_for(chat.sim, "/scan 查充值", "u1")
    assert (scan["Event"], scan["EventKey"]) == ("SCAN", "查充值")
    assert text_of(chat.post(scan)) == ORDER_ASK
    assert "北京" in text_of(chat.post(message_for(chat.sim, '/scan "天气 北京"', "u2")))
    assert chat.post(message_for(chat.sim, "/scan store_17", "u3")) == Silent()


@pytest.mark.parametrize("mode", ["safe", "compat"])
def test_signed_and_encrypted_through_the_real_endpoint(app, mode: str) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(app, mode)
    assert text_of(chat.follow("o_e2e", "查充值")) == f"{chat.welcome}\n\n{ORDER_ASK}"
    assert chat.scan("o_e2e", "store_17") == Silent()
    assert text_of(chat.scan("o_e2e", HOURS_Q)) == f"{HOURS_A}\n\n{ORDER_ASK}"
    assert chat.scan("o_e2e", "取消") == Text("已取消，有什么问题可以直接问我。")
    assert text_of(chat.scan("o_e2e", "天气")) == weather.ASK_CITY
    assert chat.state("o_e2e") == ("WAIT_WEATHER_CITY", 0)
