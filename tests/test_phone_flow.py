"""Phone binding with an SMS code through the engine (SQLite and MySQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, event, say
from tests.phone_texts import phone
from wxbot.models import Context
from wxbot.qa import writer
from wxbot.services.models import PhoneBinding, SmsCode

PHONE = "13800138000"
MASKED = "138****8000"


@pytest.fixture
def pbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    settings = fake_apis.settings(sms_backend="webhook")
    return make_app(**settings).extensions["wxbot.bot"]


def state_of(bot: Any, openid: str) -> str:
    with bot.engine.connect() as conn:
        return conn.execute(select(Context.state).where(Context.openid == openid)).scalar_one()


def code_row(bot: Any, openid: str) -> Any:
    with bot.engine.connect() as conn:
        return conn.execute(select(SmsCode.__table__).where(SmsCode.openid == openid)).first()


def binding(bot: Any, openid: str) -> str | None:
    with bot.engine.connect() as conn:
        return conn.execute(
            select(PhoneBinding.phone).where(PhoneBinding.openid == openid)
        ).scalar_one_or_none()


def last_code(fake: FakeApis) -> str:
    return fake.sms[-1]["code"]


def start(bot: Any, openid: str = "u1") -> None:
    assert content(say(bot, openid, "绑定手机")) == phone.ASK_NUMBER
    assert content(say(bot, openid, PHONE)) == phone.SENT.format(phone=MASKED)


def test_happy_path_stores_the_verified_number(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(pbot, "u1", "绑定手机")) == phone.ASK_NUMBER
    assert state_of(pbot, "u1") == "WAIT_PHONE_NUMBER"
    assert content(say(pbot, "u1", "12345")) == phone.BAD_NUMBER
    assert content(say(pbot, "u1", "+86 138-0013-8000")) == phone.SENT.format(phone=MASKED)
    assert state_of(pbot, "u1") == "WAIT_PHONE_CODE"
    assert fake_apis.sms[-1]["phone"] == PHONE
    code = last_code(fake_apis)
    assert len(code) == 6 and code.isdigit()
    assert content(say(pbot, "u1", code)) == phone.BOUND.format(phone=MASKED)
    assert binding(pbot, "u1") == PHONE
    assert code_row(pbot, "u1") is None
    assert state_of(pbot, "u1") == "WAIT_QUERY"


def test_only_a_salted_hash_of_the_code_is_stored(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    code = last_code(fake_apis)
    row = code_row(pbot, "u1")
    assert code not in " ".join(str(v) for v in row)
    assert row.code_hash == phone.code_hash(row.salt, "u1", PHONE, code)
    assert len(row.code_hash) == 64 and len(row.salt) == 32
    start(pbot, "u2")  # the same code for another user would hash differently (own salt)
    assert code_row(pbot, "u2").salt != row.salt


def test_three_wrong_codes_end_the_flow(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    code = last_code(fake_apis)
    wrong = "000000" if code != "000000" else "111111"
    assert content(say(pbot, "u1", wrong)) == phone.WRONG.format(left=2)
    assert content(say(pbot, "u1", wrong)) == phone.WRONG.format(left=1)
    assert state_of(pbot, "u1") == "WAIT_PHONE_CODE"
    assert content(say(pbot, "u1", wrong)) == phone.TOO_MANY
    assert state_of(pbot, "u1") == "WAIT_QUERY"
    assert code_row(pbot, "u1") is None
    say(pbot, "u1", code)  # too late: the flow is over
    assert binding(pbot, "u1") is None


def test_expired_code_is_refused_and_resend_gives_a_new_one(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    old = last_code(fake_apis)
    clock.advance(301)
    assert content(say(pbot, "u1", old)) == phone.EXPIRED
    assert binding(pbot, "u1") is None
    assert content(say(pbot, "u1", "重发")) == phone.SENT.format(phone=MASKED)
    new = last_code(fake_apis)
    if new != old:  # one in a million they are equal
        assert content(say(pbot, "u1", old)) == phone.WRONG.format(left=2)
    assert content(say(pbot, "u1", new)) == phone.BOUND.format(phone=MASKED)


def test_resend_at_most_once_a_minute(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    assert content(say(pbot, "u1", "重发")) == phone.WAIT_RESEND.format(seconds=60)
    clock.advance(30)
    assert content(say(pbot, "u1", "重发")) == phone.WAIT_RESEND.format(seconds=30)
    assert len(fake_apis.sms) == 1
    clock.advance(30)
    assert content(say(pbot, "u1", "重发")) == phone.SENT.format(phone=MASKED)
    assert len(fake_apis.sms) == 2
    assert code_row(pbot, "u1").sends == 2
    assert content(say(pbot, "u1", "重发")) == phone.WAIT_RESEND.format(seconds=60)


def test_resend_does_not_reset_wrong_tries(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    wrong = "000000" if last_code(fake_apis) != "000000" else "111111"
    say(pbot, "u1", wrong)
    say(pbot, "u1", wrong)
    clock.advance(60)
    say(pbot, "u1", "重发")
    wrong = "000000" if last_code(fake_apis) != "000000" else "111111"
    assert content(say(pbot, "u1", wrong)) == phone.TOO_MANY


def test_sms_gateway_down_allows_an_immediate_resend(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    fake_apis.down.add("sms")
    say(pbot, "u1", "绑定手机")
    assert content(say(pbot, "u1", PHONE)) == phone.SEND_FAILED
    assert state_of(pbot, "u1") == "WAIT_PHONE_CODE"
    fake_apis.down.clear()
    assert content(say(pbot, "u1", "重发")) == phone.SENT.format(phone=MASKED)
    assert content(say(pbot, "u1", last_code(fake_apis))) == phone.BOUND.format(phone=MASKED)


def test_number_in_the_request_and_rebinding(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(pbot, "u1", "绑定手机 13800138000")) == phone.SENT.format(phone=MASKED)
    say(pbot, "u1", last_code(fake_apis))
    reply = content(say(pbot, "u1", "绑定手机"))
    assert reply == phone.ALREADY.format(phone=MASKED) + phone.ASK_NUMBER
    say(pbot, "u1", "13900139000")
    say(pbot, "u1", last_code(fake_apis))
    assert binding(pbot, "u1") == "13900139000"


def test_not_a_code_asks_again(pbot) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    assert content(say(pbot, "u1", "我没收到")) == phone.ENTER_CODE
    assert state_of(pbot, "u1") == "WAIT_PHONE_CODE"


def test_cancel_leaves_no_binding(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    say(pbot, "u1", "取消")
    assert state_of(pbot, "u1") == "WAIT_QUERY"
    say(pbot, "u1", last_code(fake_apis))
    assert binding(pbot, "u1") is None


def test_unsubscribe_forgets_the_number_and_code(pbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    start(pbot)
    say(pbot, "u1", last_code(fake_apis))
    say(pbot, "u1", "绑定手机 13900139000")  # a pending code as well
    assert code_row(pbot, "u1") is not None
    pbot.handle(event("u1", "unsubscribe"))
    assert binding(pbot, "u1") is None and code_row(pbot, "u1") is None


def test_console_sender_is_the_default(make_app) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]
    say(bot, "u1", "绑定手机")
    say(bot, "u1", PHONE)
    code = bot.deps.services.sms.sent[PHONE]
    assert content(say(bot, "u1", code)) == phone.BOUND.format(phone=MASKED)


def test_normalise_phone() -> None:
    assert phone.normalise_phone("8613800138000") == PHONE
    assert phone.normalise_phone("１３８００１３８０００") == PHONE
    assert phone.normalise_phone("12800138000") is None  # 12x is not a mobile prefix
    assert phone.normalise_phone("1380013800") is None
    assert phone.mask(PHONE) == MASKED


def test_a_stored_question_holding_the_keyword_is_answered_not_a_flow(pbot, clock) -> None:  # type: ignore[no-untyped-def]
    """「绑定手机有什么用」 starts with the keyword 「绑定手机」 but is word for word a
    knowledge question: the knowledge base answers it, and the bare keyword (or the keyword
    with a number) still starts the flow."""
    with pbot.engine.begin() as conn:
        writer.teach(
            conn, "绑定手机有什么用", "绑定后可以接收订单通知。", now=clock(), taught_by=None
        )
    assert content(say(pbot, "u1", "绑定手机有什么用")) == "绑定后可以接收订单通知。"
    assert state_of(pbot, "u1") == "WAIT_QUERY"
    assert content(say(pbot, "u1", "绑定 手机有什么用？")) == "绑定后可以接收订单通知。"
    assert content(say(pbot, "u1", "绑定手机")) == phone.ASK_NUMBER
    assert state_of(pbot, "u1") == "WAIT_PHONE_NUMBER"
    say(pbot, "u1", "取消")
    reply = content(say(pbot, "u2", f"绑定手机 {PHONE}"))
    assert reply == phone.SENT.format(phone=MASKED)


def test_teaching_the_question_changes_the_remembered_trigger_decision(pbot, clock) -> None:  # type: ignore[no-untyped-def]
    """Trigger decisions are remembered per knowledge version: once the question is taught,
    the same words are answered instead of starting the flow."""
    assert content(say(pbot, "u1", "绑定手机有什么用")) == phone.ASK_NUMBER
    say(pbot, "u1", "取消")
    with pbot.engine.begin() as conn:
        writer.teach(
            conn, "绑定手机有什么用", "绑定后可以接收订单通知。", now=clock(), taught_by=None
        )
    assert content(say(pbot, "u1", "绑定手机有什么用")) == "绑定后可以接收订单通知。"
