"""Users' personal data at rest (China's PIPL: kept only as long as needed), SQLite and MySQL:

- an unanswered question admins read for WXBOT_UNANSWERED_DAYS keeps no phone, ID-card,
  bank-card or order number, and a bare number (an SMS code typed after its step) is none;
- a did-you-mean vote keeps the user's OpenID with their wording: none for a wording with such
  a number, and none past WXBOT_MEMORY_DAYS;
- a pending SMS verification that ended without the right code (「取消」, a timeout) kept the
  typed number for ever, and the texting limits (sms_quotas, keyed by the number and the
  OpenID) outlived their day whenever no later send pruned them.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say
from tests.phone_texts import phone as phone_texts
from wxbot.cli import cli
from wxbot.qa import unanswered, writer
from wxbot.qa.models import KbAliasVote
from wxbot.redaction import mask_identifiers
from wxbot.services.models import SmsCode, SmsQuota

DAY = 86_400.0
PHONE, MASKED = "13800138000", "138****8000"


def _unanswered(bot: Any) -> dict[str, int]:
    with bot.engine.connect() as conn:
        return {str(q["question"]): int(q["count"]) for q in unanswered.list_unanswered(conn)[1]}


def _rows(bot: Any, table: Any) -> list[Any]:
    with bot.engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def _votes(bot: Any) -> list[tuple[str, str]]:
    with bot.engine.connect() as conn:
        rows = conn.execute(select(KbAliasVote.openid, KbAliasVote.question))
        return sorted((r.openid, r.question) for r in rows)


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("我的手机号13800138000换号了怎么办", "我的手机号***换号了怎么办"),
        ("手机 +86 138-0013-8000 收不到短信", "手机 *** 收不到短信"),
        ("身份证11010119900307123X丢了怎么补", "身份证***丢了怎么补"),
        ("卡号6222 0212 3456 7890 123被冻结了", "卡号***被冻结了"),
        ("订单202501150830123456还没发货", "订单***还没发货"),
        ("发到 zhang.san@example.com 可以吗", "发到 *** 可以吗"),
        ("我的号码是幺三八零零幺三八零零零", "我的号码是***"),  # a voice message's recognition
        ("客服电话400-810-8888打不通", None),  # a hotline, an amount, a year: kept as typed
        ("2024年12月交的10000元", None),
    ],
)
def test_identifiers_are_masked(typed: str, kept: str | None) -> None:
    assert mask_identifiers(typed) == (typed if kept is None else kept)


def test_unanswered_questions_keep_no_phone_id_or_order_number(make_app) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]
    reply = content(say(bot, "o_a", "我的手机号13800138000换号了怎么办"))
    assert reply.startswith("这个问题我还不会回答")  # answered as before
    say(bot, "o_b", "我的手机号13912345678换号了怎么办")  # another user, another number
    say(bot, "o_a", "身份证110101199003071234丢了怎么补")
    say(bot, "o_a", "13800138000")  # a number alone, typed outside the phone step
    say(bot, "o_a", "482913")  # an SMS code typed after its step ended
    say(bot, "o_c", "周末营业吗")
    long = "请问" * 247 + "我的手机号13800138000"  # a number across the 500 characters kept
    say(bot, "o_c", long)
    # one question however many numbers: the admins still see what users ask, and how often
    assert _unanswered(bot) == {
        "我的手机号***换号了怎么办": 2,
        "身份证***丢了怎么补": 1,
        "周末营业吗": 1,
        ("请问" * 247 + "我的手机号***")[:500]: 1,
    }


def test_an_admin_answers_a_masked_question(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(admin_token="t0ken")
    bot, client = app.extensions["wxbot.bot"], app.test_client()
    say(bot, "o_a", "我的手机号13800138000换号了怎么办")
    items = client.get("/admin/api/unanswered", headers={"Authorization": "Bearer t0ken"})
    [item] = items.get_json()["items"]
    assert item["question"] == "我的手机号***换号了怎么办"
    with bot.engine.begin() as conn:
        writer.teach(conn, item["question"], "发「绑定手机」换绑。", now=0.0, taught_by=None)
    assert _unanswered(bot) == {}  # answered: listed no more


@pytest.fixture
def picking(make_app):  # type: ignore[no-untyped-def]
    """A bot whose every match is offered as did-you-mean, with two entries."""

    def build(**settings: Any) -> Any:
        app = make_app(**settings)
        bot = app.extensions["wxbot.bot"]
        with bot.engine.begin() as conn:
            writer.teach(conn, "怎么申请退款", "退款。", now=0.0, taught_by=None)
            writer.teach(conn, "怎么申请发票", "发票。", now=0.0, taught_by=None)
        return app, bot

    return build


def _pick(bot: Any, openid: str, asked: str) -> None:
    bot.deps.kb.confident, bot.deps.kb.sure, bot.deps.kb.suggest = 99.0, 99.0, 0.0
    assert content(say(bot, openid, asked)).startswith("我不太确定")
    assert content(say(bot, openid, "1")) in ("退款。", "发票。")


def test_a_wording_with_a_phone_number_is_no_vote(picking) -> None:  # type: ignore[no-untyped-def]
    _, bot = picking()
    _pick(bot, "o_a", "13800138000申请")
    _pick(bot, "o_a", "我要申请")
    assert _votes(bot) == [("o_a", "我要申请")]


def test_votes_older_than_the_memory_retention_go(picking, clock) -> None:  # type: ignore[no-untyped-def]
    app, bot = picking(memory_days=30)
    _pick(bot, "o_a", "我要申请")
    clock.advance(20 * DAY)
    _pick(bot, "o_b", "申请一下")
    clock.advance(11 * DAY)
    result = app.test_cli_runner().invoke(cli, ["sessions", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "1 did-you-mean votes" in result.output
    assert _votes(bot) == [("o_b", "申请一下")]
    clock.advance(20 * DAY)
    bot.housekeeping.clean_up_a_batch()  # the clean-up one message in 500 runs
    assert _votes(bot) == []


def test_clearing_the_memory_takes_the_users_votes(picking) -> None:  # type: ignore[no-untyped-def]
    """「清除记忆」: a vote keeps the user's wording with their OpenID, part of what they said."""
    _, bot = picking()
    _pick(bot, "o_a", "我要申请")
    _pick(bot, "o_b", "申请一下")
    say(bot, "o_a", "清除记忆")
    say(bot, "o_a", "是")
    assert _votes(bot) == [("o_b", "申请一下")]


def test_zero_keeps_votes(picking, clock) -> None:  # type: ignore[no-untyped-def]
    _, bot = picking(memory_days=0)
    _pick(bot, "o_a", "我要申请")
    clock.advance(3650 * DAY)
    assert bot.forget_old_votes() == 0
    bot.housekeeping.clean_up_a_batch()
    assert _votes(bot) == [("o_a", "我要申请")]


@pytest.fixture
def pbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def _start(bot: Any, openid: str, number: str = PHONE) -> None:
    assert content(say(bot, openid, "绑定手机")) == phone_texts.ASK_NUMBER
    masked = f"{number[:3]}****{number[-4:]}"
    assert content(say(bot, openid, number)) == phone_texts.SENT.format(phone=masked)


def test_a_verification_that_ended_keeps_no_number(pbot, clock) -> None:  # type: ignore[no-untyped-def]
    _start(pbot, "o_cancel")
    say(pbot, "o_cancel", "取消")
    _start(pbot, "o_gone", "13912345678")  # walks away: the step times out
    clock.advance(61)
    pbot.clean_up()
    # 「取消」 and a fresh start within the minute must not text faster than 「重发」: kept
    # while the user's context lives; the one who walked away is still at the step
    assert {r.openid for r in _rows(pbot, SmsCode)} == {"o_cancel", "o_gone"}
    clock.advance(600)  # both contexts expired: no step can ask for those codes any more
    _start(pbot, "o_live", "13712345678")  # someone mid-verification keeps theirs
    pbot.clean_up()
    assert [(r.openid, r.phone) for r in _rows(pbot, SmsCode)] == [("o_live", "13712345678")]


def test_an_expired_code_stays_while_its_user_is_at_the_step(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    _start(pbot, "o_u")
    clock.advance(301)
    assert content(say(pbot, "o_u", fake_apis.sms[-1]["code"])) == phone_texts.EXPIRED
    pbot.clean_up()
    pbot.housekeeping.clean_up_a_batch()
    # the verification goes on: 「重发」 texts a new code, not 「please send the number again」
    assert content(say(pbot, "o_u", "重发")) == phone_texts.SENT.format(phone=MASKED)


def test_texting_limits_go_with_their_day(pbot, fake_apis: FakeApis, clock) -> None:  # type: ignore[no-untyped-def]
    _start(pbot, "o_u")
    assert content(say(pbot, "o_u", fake_apis.sms[-1]["code"])).startswith("绑定成功")
    pbot.clean_up()
    subjects = {(r.scope, r.subject) for r in _rows(pbot, SmsQuota)}
    assert subjects == {("openid", "o_u"), ("phone", PHONE)}  # today's: the limits need them
    clock.advance(2 * DAY)  # no code texted since, to prune them as sends do
    pbot.clean_up()
    assert _rows(pbot, SmsQuota) == []


def test_the_clean_up_messages_run_takes_them_too(pbot, clock) -> None:  # type: ignore[no-untyped-def]
    _start(pbot, "o_u")
    say(pbot, "o_u", "取消")
    clock.advance(2 * DAY)
    pbot.housekeeping.clean_up_a_batch()
    assert _rows(pbot, SmsCode) == []
    with pbot.engine.connect() as conn:  # two rows a run, as two a send
        assert conn.execute(select(func.count()).select_from(SmsQuota)).scalar_one() == 0
