"""Whole journeys in each reply language, through the engine on SQLite against the fake
outside services: every reply the bot writes itself is in the user's language, and the
language the bot detected stays put through names, numbers and codes typed mid-journey.

Found by driving these journeys (2026-12): a city typed in Chinese characters
(「北京市朝阳区」), a song title (「周杰伦 晴天」), 「天気 朝阳」 from a Japanese user or
「New York City」 from a Chinese one counted as a firm message in another language and
switched every later reply; 「kumusta」 was taken for English; the music prompt and the
welcome showed a Chinese song to English, Thai, Tagalog and Japanese users; a shared location
without a name read "Weather in Your location"; an English admin's 「learn」 was a question.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import RECHARGE_REPLIES, FakeApis, fake_apis_fixture  # noqa: F401
from tests.fakellm import FakeLlm, fake_llm_fixture  # noqa: F401
from tests.helpers import content, event, location, say, text
from wxbot.config import DEFAULT_WELCOME
from wxbot.dialog import forgetting, words
from wxbot.dialog.handlers import learn, music, query, weather
from wxbot.dialog.language import switches
from wxbot.flows import load_flows
from wxbot.flows import messages as flow_says
from wxbot.flows.template import render
from wxbot.i18n import LANGUAGES, detect, translate
from wxbot.llm.fallback import RATE_LIMITED
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Music, Reply, TransferToHuman
from wxbot.models import UserLanguage
from wxbot.qa import writer
from wxbot.services.weather import DAYS, HEADER

# A first message detection takes firmly for each language (it sets the user's language).
OPENING = {
    "zh": "我想问一下我的订单",
    "en": "I would like to ask about my order please",
    "th": "สวัสดีครับ ต้องการสอบถามหน่อย",
    "tl": "Gusto kong malaman kung nasaan na ang order ko",
    "ja": "注文について質問があります",
}
# What a user of each language types (the command words the README lists for them).
WEATHER = {"zh": "天气", "en": "weather", "th": "สภาพอากาศ", "tl": "weather", "ja": "天気"}
NOWHERE = {
    "zh": "火星城",
    "en": "Atlantis",
    "th": "แอตแลนติส",
    "tl": "Atlantis",
    "ja": "アトランティス",
}
CANCEL = {"zh": "取消", "en": "cancel", "th": "ยกเลิก", "tl": "kanselahin", "ja": "キャンセル"}
MUSIC = {"zh": "点歌", "en": "music", "th": "music", "tl": "music", "ja": "music"}
BIND = {"zh": "绑定手机", "en": "bind phone", "th": "ผูกเบอร์โทร", "tl": "i-link ang numero"}
BIND["ja"] = "携帯番号登録"
RESEND = {"zh": "重发", "en": "resend", "th": "ส่งใหม่", "tl": "ipadala muli", "ja": "再送"}
RECHARGE = {"zh": "查充值", "en": "check my recharge", "th": "ตรวจสอบการเติมเงิน"}
RECHARGE |= {"tl": "i-check ang recharge", "ja": "チャージ確認"}
MEMORY = {"zh": "我的记忆", "en": "my memory", "th": "ความจำของฉัน", "tl": "alaala ko"}
MEMORY["ja"] = "記憶を確認"
FORGET = {"zh": "清除记忆", "en": "clear memory", "th": "ล้างความจำ", "tl": "burahin ang alaala"}
FORGET["ja"] = "記憶を消去"
YES = {"zh": "是", "en": "yes", "th": "ใช่", "tl": "oo", "ja": "はい"}
HUMAN = {"zh": "人工", "en": "human", "th": "เจ้าหน้าที่", "tl": "ahente", "ja": "オペレーター"}
# Two entries and a question that matches both halfway: a did-you-mean list.
SIMILAR = {
    "zh": (("怎么修改登录密码", "怎么修改绑定手机号"), "修改"),
    "en": (("how do I change my password", "how do I change my phone number"), "change"),
    "th": (("เปลี่ยนรหัสผ่านอย่างไร", "เปลี่ยนเบอร์โทรอย่างไร"), "เปลี่ยน"),
    "tl": (("paano palitan ang password ko", "paano palitan ang numero ko"), "palitan"),
    "ja": (("パスワードを変更する方法", "電話番号を変更する方法"), "変更"),
}
ORDER = "202501150830123456"
# 北京 as the fake geocoding names it in each language (Tagalog users are given English names)
BEIJING = {"zh": "北京市", "en": "Beijing", "th": "ปักกิ่ง", "tl": "Beijing", "ja": "北京市"}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3041-\u30ff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")
_FULL_WIDTH = re.compile(r"[\u3000-\u303f\uff01-\uff60]")  # 「」（）：，。 …


def written_in(reply: str, language: str) -> bool:
    """Whether a reply reads as ``language``: no other script, no full-width punctuation in
    a Latin or Thai text."""
    if language in ("en", "tl"):
        foreign = _HAN.search(reply) or _KANA.search(reply) or _THAI.search(reply)
        return not foreign and not _FULL_WIDTH.search(reply) and re.search("[a-z]", reply)
    if language == "th":
        foreign = _HAN.search(reply) or _KANA.search(reply) or _FULL_WIDTH.search(reply)
        return bool(_THAI.search(reply)) and not foreign
    if language == "ja":
        return bool(_KANA.search(reply)) and not _THAI.search(reply)
    return bool(_HAN.search(reply)) and not _KANA.search(reply) and not _THAI.search(reply)


@pytest.fixture
def db_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"  # these journeys run on SQLite


@pytest.fixture
def jbot(make_app, fake_apis: FakeApis, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{fake_apis.url}/recharge")
    settings = fake_apis.settings(sms_backend="webhook", admin_openids=frozenset({"admin"}))
    return make_app(**settings).extensions["wxbot.bot"]


def stored_language(bot: Any, openid: str) -> tuple[str, bool] | None:
    with bot.engine.connect() as conn:
        row = conn.execute(
            select(UserLanguage.language, UserLanguage.explicit).where(
                UserLanguage.openid == openid
            )
        ).first()
    return (row.language, bool(row.explicit)) if row else None


def _kind(openid: str, kind: str, n: int, **fields: Any) -> Inbound:
    msg_id = f"{kind}-{n}"
    return Inbound(
        openid=openid, kind=kind, msg_id=msg_id, dedup_key=f"{openid}:{msg_id}", **fields
    )


def _flow_texts(language: str) -> dict[str, str]:
    flows = {f.name: f for f in load_flows().flows}
    number, code = flows["bind_phone"].steps
    order = flows["recharge_query"].steps[0]
    return {
        "ask_number": number.ask.pick(language),
        "bad_number": number.invalid.pick(language),  # type: ignore[union-attr]
        "bound": flows["bind_phone"].action.reply.pick(language),  # type: ignore[union-attr]
        "ask_order": order.ask.pick(language),
        "bad_order": order.invalid.pick(language),  # type: ignore[union-attr]
        "order_reply": flows["recharge_query"].action.reply.pick(language),  # type: ignore[union-attr]
    }


# --- one complete journey per language ------------------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_whole_journey_is_answered_in_the_users_language(
    jbot, fake_apis: FakeApis, clock, lang: str
) -> None:  # type: ignore[no-untyped-def]
    u = f"user-{lang}"

    def t(message: Any, **params: Any) -> str:
        return translate(message, lang, **params)

    def says(message: str) -> str:
        return content(say(jbot, u, message))

    assert says(OPENING[lang]) == t(query.DONT_KNOW)
    assert stored_language(jbot, u) == (lang, False)

    welcome = content(jbot.handle(event(u, "subscribe")))
    assert welcome == t(DEFAULT_WELCOME)
    if lang != "zh":
        assert "晴天" not in welcome  # a Chinese song was the music example
    assert says("1") == t(query.NO_LIST)

    # weather: the city asked for, typed in Chinese characters, an unknown one, a hand-off
    assert says(WEATHER[lang]) == t(weather.ASK_CITY)
    assert says("北京市朝阳区") == t(weather.UNKNOWN_CITY, city="北京市朝阳区")
    report = says("北京")
    assert report.startswith(t(HEADER, place=BEIJING[lang])) and t(DAYS[0]) in report
    assert written_in(report, lang), report  # no 「北京市」, no 「-6～5°C」 for en/th/tl
    fake_apis.down.add("geocoding")
    assert says(f"{WEATHER[lang]} 上海") == t(weather.UNAVAILABLE)
    fake_apis.down.discard("geocoding")
    assert says(CANCEL[lang]) == t(words.NOTHING_TO_CANCEL)
    says(WEATHER[lang])
    assert says(NOWHERE[lang]) == t(weather.UNKNOWN_CITY, city=NOWHERE[lang])
    assert says(NOWHERE[lang] + "2") == t(weather.UNKNOWN_CITY, city=NOWHERE[lang] + "2")
    assert say(jbot, u, NOWHERE[lang] + "3") == TransferToHuman()

    # music: the prompt, a title in Chinese characters, cancel
    asked = says(MUSIC[lang])
    assert asked == t(music.ASK_SONG)
    if lang != "zh":
        assert "周杰伦" not in asked
    assert says("周杰伦 晴天 现场版") == t(music.NOT_FOUND, term="周杰伦 晴天 现场版")
    assert says(CANCEL[lang]) == t(words.CANCELLED)
    song = say(jbot, u, f"{MUSIC[lang]} 晴天")
    assert isinstance(song, Music) and song.title == "晴天"

    # phone binding with an SMS code: a wrong number, a wrong code, resend too soon, expiry
    flow = _flow_texts(lang)
    number = f"1390013000{LANGUAGES.index(lang)}"
    masked = f"139****000{LANGUAGES.index(lang)}"
    assert says(BIND[lang]) == flow["ask_number"]
    assert says("12345") == flow["bad_number"]
    assert says(number) == t(flow_says.SENT, phone=masked)
    code = fake_apis.sms[-1]["code"]
    wrong = "000000" if code != "000000" else "111111"
    assert says(wrong) == t(flow_says.WRONG, left=2)
    assert says(RESEND[lang]) == t(flow_says.WAIT_RESEND, seconds=60)
    clock.advance(301)
    assert says(code) == t(flow_says.EXPIRED)
    assert says(RESEND[lang]) == t(flow_says.SENT, phone=masked)
    assert says(fake_apis.sms[-1]["code"]) == render(flow["bound"], {"phone": number})

    # the recharge flow and its webhook, answered in the user's language
    assert says(RECHARGE[lang]) == flow["ask_order"]
    assert says("12345") == flow["bad_order"]
    answer = says(ORDER)
    assert answer.startswith(render(flow["order_reply"], {"order_no": ORDER}))
    assert RECHARGE_REPLIES[lang] in answer

    # the memory, by chat
    assert written_in(says(MEMORY[lang]), lang)
    assert says(FORGET[lang]) == t(forgetting.ASK)
    assert says(YES[lang]) == t(forgetting.FORGOTTEN)

    # what the bot cannot read
    for n, kind in enumerate(("image", "video", "shortvideo", "link", "file")):
        assert content(jbot.handle(_kind(u, kind, n, text="Title" if kind == "link" else ""))) == t(
            words.NON_TEXT
        )
    assert content(jbot.handle(_kind(u, "voice", 9))) == t(words.VOICE_UNHEARD)
    assert says("[Smile]") == t(words.STICKER)
    here = content(jbot.handle(location(u, 39.9, 116.4)))
    assert here.startswith(t(HEADER, place=t(weather.HERE))) and written_in(here, lang), here

    assert say(jbot, u, HUMAN[lang]) == TransferToHuman()
    assert stored_language(jbot, u) == (lang, False)  # never switched on the way


@pytest.mark.parametrize("lang", LANGUAGES)
def test_did_you_mean_and_picking_a_number(jbot, clock, lang: str) -> None:  # type: ignore[no-untyped-def]
    questions, ask = SIMILAR[lang]
    with jbot.engine.begin() as conn:
        for i, question in enumerate(questions):
            writer.teach(conn, question, f"answer {i}", now=clock(), taught_by=None)
    u = f"dym-{lang}"
    say(jbot, u, OPENING[lang])
    listed = content(say(jbot, u, ask))
    shown = [line.split(". ", 1)[1] for line in listed.splitlines() if line[:2] in ("1.", "2.")]
    assert sorted(shown) == sorted(questions)
    choices = "\n".join(f"{i}. {q}" for i, q in enumerate(shown, 1))
    assert listed == translate(query.DID_YOU_MEAN, lang, choices=choices)
    assert content(say(jbot, u, "3")) == translate(query.BAD_PICK, lang, n=2)
    assert content(say(jbot, u, "2")) == f"answer {questions.index(shown[1])}"
    assert stored_language(jbot, u) == (lang, False)


@pytest.mark.parametrize(
    ("lang", "word"),
    [("zh", "学习"), ("en", "teach"), ("en", "learn"), ("th", "teach"), ("tl", "teach")]
    + [("ja", "teach")],
)
def test_an_admin_teaches_in_their_language(jbot, lang: str, word: str) -> None:  # type: ignore[no-untyped-def]
    assert content(say(jbot, "admin", f"language {lang}")) == translate(
        "好的，以后我用中文回复你。", lang
    )
    assert content(say(jbot, "admin", word)) == translate(learn.ASK_QUESTION, lang)
    assert content(say(jbot, "admin", "q1")) == translate(learn.ASK_ANSWER, lang, question="q1")
    assert content(say(jbot, "admin", "a1")) == translate(
        learn.LEARNT, lang, question="q1", answer="a1"
    )
    assert content(say(jbot, "someone", "language " + lang))
    assert content(say(jbot, "someone", word)) == translate(learn.REFUSED, lang)


@pytest.mark.parametrize("lang", ["en", "tl"])
def test_a_shared_location_without_a_name_reads_naturally(jbot, lang: str) -> None:  # type: ignore[no-untyped-def]
    say(jbot, "u1", f"language {lang}")
    report = content(jbot.handle(location("u1", 39.9, 116.4)))
    first_line = report.splitlines()[0]
    assert (
        first_line
        == {"en": "Weather in your location", "tl": "Panahon sa kasalukuyang lokasyon"}[lang]
    )


# --- the LLM fallback, its limit, and slow work -------------------------------------------


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_llm_failing_succeeding_and_rate_limited(
    make_app, fake_llm: FakeLlm, clock, lang: str
) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(**fake_llm.settings(llm_rate=1)).extensions["wxbot.bot"]
    u = f"llm-{lang}"
    fake_llm.script = [("status", 500)]
    assert content(say(bot, u, OPENING[lang])) == translate(query.DONT_KNOW, lang)
    clock.advance(61)
    fake_llm.answer = lambda messages: "LLM OK"
    assert content(say(bot, u, OPENING[lang] + "?")) == "LLM OK"
    assert content(say(bot, u, OPENING[lang] + "!")) == translate(RATE_LIMITED, lang)
    assert stored_language(bot, u) == (lang, False)


class _Delivery(threading.Thread):
    """One of WeChat's deliveries of a message, handled in a thread."""

    def __init__(self, bot: Any, msg: Inbound) -> None:
        super().__init__(daemon=True)
        self.bot, self.msg = bot, msg
        self.reply: Reply | None = None
        self.start()

    def run(self) -> None:
        self.reply = self.bot.handle(self.msg)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_still_working_then_the_late_result(make_app, fake_apis: FakeApis, lang: str) -> None:  # type: ignore[no-untyped-def]
    from wxbot.models import SeenMessage

    bot = make_app(**fake_apis.settings(reply_deadline=0.3, http_timeout=20)).extensions[
        "wxbot.bot"
    ]
    u = f"slow-{lang}"
    say(bot, u, f"language {lang}")
    msg = text(u, f"{WEATHER[lang]} 北京")
    fake_apis.hold("forecast")
    first = _Delivery(bot, msg)
    fake_apis.wait_entered("forecast")
    second = _Delivery(bot, msg)
    end = time.monotonic() + 10
    while True:  # the second delivery is recorded before the third one comes
        with bot.engine.connect() as conn:
            seen = conn.execute(
                select(SeenMessage.attempts).where(SeenMessage.dedup_key == msg.dedup_key)
            ).scalar_one_or_none()
        if (seen or 0) >= 2:
            break
        assert time.monotonic() < end, "the second delivery never arrived"
        time.sleep(0.02)
    assert content(bot.handle(msg)) == translate(words.STILL_WORKING, lang)
    fake_apis.release("forecast")
    first.join(10)
    second.join(10)
    late = content(say(bot, u, CANCEL[lang]))
    assert late.startswith(translate(words.LATE_RESULT, lang))
    assert written_in(late, lang) and ("——" in late) == (lang == "zh"), late
    assert translate(DAYS[0], lang) in late
    assert late.endswith(translate(words.NOTHING_TO_CANCEL, lang))


# --- the language stays put through names typed mid-journey --------------------------------


@pytest.mark.parametrize("lang", ["en", "th", "tl", "ja"])
@pytest.mark.parametrize("city", ["北京市朝阳区", "上海浦东新区", "东京都新宿区"])
def test_a_city_in_chinese_characters_keeps_the_language(jbot, lang: str, city: str) -> None:  # type: ignore[no-untyped-def]
    u = f"city-{lang}"
    say(jbot, u, OPENING[lang])
    say(jbot, u, WEATHER[lang])
    assert content(say(jbot, u, city)) == translate(weather.UNKNOWN_CITY, lang, city=city)
    assert stored_language(jbot, u) == (lang, False)


@pytest.mark.parametrize("lang", ["zh", "th", "ja"])
@pytest.mark.parametrize("city", ["New York City", "Hong Kong Disneyland", "Ho Chi Minh City"])
def test_a_city_in_latin_letters_keeps_the_language(jbot, lang: str, city: str) -> None:  # type: ignore[no-untyped-def]
    u = f"latin-{lang}"
    say(jbot, u, OPENING[lang])
    say(jbot, u, WEATHER[lang])
    assert content(say(jbot, u, city)) == translate(weather.UNKNOWN_CITY, lang, city=city)
    assert stored_language(jbot, u) == (lang, False)


@pytest.mark.parametrize("lang", ["en", "th", "tl", "ja"])
def test_a_song_title_in_chinese_characters_keeps_the_language(jbot, lang: str) -> None:  # type: ignore[no-untyped-def]
    u = f"song-{lang}"
    say(jbot, u, OPENING[lang])
    say(jbot, u, MUSIC[lang])
    term = "七里香 周杰伦"
    assert content(say(jbot, u, term)) == translate(music.NOT_FOUND, lang, term=term)
    assert stored_language(jbot, u) == (lang, False)


def test_a_japanese_user_asking_for_a_chinese_city_stays_japanese(jbot) -> None:  # type: ignore[no-untyped-def]
    say(jbot, "u1", OPENING["ja"])
    reply = content(say(jbot, "u1", "天気 朝阳"))
    assert reply.startswith(translate(weather.CHOOSE, "ja", city="朝阳", choices=""))
    assert content(say(jbot, "u1", "3")) == translate(weather.BAD_CHOICE, "ja", n=2)
    assert stored_language(jbot, "u1") == ("ja", False)


def test_a_tagalog_greeting_sets_tagalog(jbot) -> None:  # type: ignore[no-untyped-def]
    say(jbot, "u1", "kumusta")
    assert stored_language(jbot, "u1") == ("tl", False)


@pytest.mark.parametrize(
    "name",
    ["北京市朝阳区", "周杰伦 晴天", "会員登録", "登録完了", "天気 朝阳", "New York City"]
    + ["iPhone 15 Pro Max", "アトランティス", "第二个"],
)
def test_a_name_alone_is_no_sentence(name: str) -> None:
    found = detect(name)
    assert found is not None and not found.sentence


@pytest.mark.parametrize(
    ("current", "text"),
    [("zh", "New York City"), ("zh", "iPhone 15 Pro Max"), ("zh", "アトランティス")]
    + [("ja", "会員登録"), ("ja", "天気 朝阳"), ("en", "アトランティス")],
)
def test_a_name_does_not_switch_a_language_in_a_free_question(current: str, text: str) -> None:
    found = detect(text)
    assert found is not None and found.strong and not switches(found, current)


def test_a_chinese_users_noun_question_brings_them_back_from_a_first_hi(jbot) -> None:  # type: ignore[no-untyped-def]
    """「hi」 first sets English; a Chinese question without a function character (「营业时间」)
    is still Chinese enough to switch back: a Chinese account's users type such questions."""
    say(jbot, "u1", "hi")
    assert stored_language(jbot, "u1") == ("en", False)
    say(jbot, "u1", "营业时间")
    assert stored_language(jbot, "u1") == ("zh", False)


@pytest.mark.parametrize(
    ("sentence", "language"),
    [("会员卡丢了", "zh"), ("北京今天天气怎么样", "zh"), ("充值没到账", "zh"), ("我要查充值", "zh")]
    + [("check my recharge", "en"), ("i-check ang recharge", "tl"), ("ありがとう", "ja")]
    + [("東京の天気を教えて", "ja"), ("สภาพอากาศกรุงเทพ", "th")],
)
def test_a_sentence_is_still_a_firm_language(sentence: str, language: str) -> None:
    assert detect(sentence) == type(detect(sentence))(language, True, True)
