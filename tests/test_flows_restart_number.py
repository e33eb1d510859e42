"""A new mobile number typed where the SMS code is asked for changes the number (SQLite and
MySQL): a code goes to the new one within the same limits, the user is told, and it is never
counted as a wrong code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from tests.phone_texts import phone
from wxbot.flows import messages as flow_says
from wxbot.i18n import translate
from wxbot.messages.replies import TransferToHuman

PHONE, MASKED = "13800138000", "138****8000"
OTHER, OTHER_MASKED = "13900139000", "139****9000"
CHANGED = translate(flow_says.NUMBER_CHANGED, "zh", phone=OTHER_MASKED)


@pytest.fixture
def bot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def start(bot, fake_apis) -> str:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    assert content(say(bot, "u1", PHONE)) == phone.SENT.format(phone=MASKED)
    return fake_apis.sms[-1]["code"]


def test_a_new_number_a_minute_later_gets_a_code(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    old = start(bot, fake_apis)
    clock.advance(61)
    reply = content(say(bot, "u1", f"+86 {OTHER[:3]}-{OTHER[3:7]}-{OTHER[7:]}"))
    assert reply == f"{CHANGED}\n{phone.SENT.format(phone=OTHER_MASKED)}"
    assert state_of(bot, "u1") == ("WAIT_PHONE_CODE", 0)
    assert [s["phone"] for s in fake_apis.sms] == [PHONE, OTHER]
    new = fake_apis.sms[-1]["code"]
    if old != new:  # one in a million they are equal
        assert content(say(bot, "u1", old)) == phone.WRONG.format(left=2)
    assert content(say(bot, "u1", new)) == phone.BOUND.format(phone=OTHER_MASKED)


def test_a_new_number_within_the_minute_waits_for_resend(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    old = start(bot, fake_apis)
    clock.advance(15)
    reply = content(say(bot, "u1", f"换成 {OTHER}"))  # in a sentence, too
    assert reply == f"{CHANGED}\n{phone.WAIT_RESEND.format(seconds=45)}"
    assert len(fake_apis.sms) == 1  # one code a minute, whatever the number
    assert content(say(bot, "u1", old)) == phone.WRONG.format(left=2)  # not for this number
    clock.advance(45)
    assert content(say(bot, "u1", "重发")) == phone.SENT.format(phone=OTHER_MASKED)
    assert fake_apis.sms[-1]["phone"] == OTHER
    assert content(say(bot, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(
        phone=OTHER_MASKED
    )


def test_numbers_typed_at_the_code_step_are_never_wrong_codes(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    start(bot, fake_apis)
    for number in (OTHER, PHONE, OTHER, "13700137000"):  # the flow's limit is 3 attempts
        reply = say(bot, "u1", number)
        assert not isinstance(reply, TransferToHuman)
        assert state_of(bot, "u1") == ("WAIT_PHONE_CODE", 0)
        clock.advance(1)
    assert len(fake_apis.sms) == 1


def test_the_same_number_again_repeats_the_question(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    code = start(bot, fake_apis)
    assert content(say(bot, "u1", PHONE)) == phone.ENTER_CODE
    assert state_of(bot, "u1") == ("WAIT_PHONE_CODE", 0)
    assert len(fake_apis.sms) == 1
    assert content(say(bot, "u1", code)) == phone.BOUND.format(phone=MASKED)


def test_the_change_is_said_in_the_users_language(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", f"bind phone {PHONE}")
    clock.advance(61)
    reply = content(say(bot, "u1", OTHER))
    assert reply.startswith(translate(flow_says.NUMBER_CHANGED, "en", phone=OTHER_MASKED))
    assert "Your number is now 139****9000" in reply


CONFIRMED = """
name: link_phone
triggers: [登记手机]
attempts: {limit: 3}
steps:
  - slot: phone
    type: phone
    confirm: true
    ask: 请输入手机号。
  - slot: code
    type: sms_code
    phone_slot: phone
    ask: 请回复验证码。
action:
  reply: "已登记 {phone|mask}。"
"""


def test_a_phone_step_with_confirm_confirms_the_new_number(
    make_app, fake_apis, tmp_path: Path, clock
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "link.yaml").write_text(CONFIRMED, encoding="utf-8")
    settings = fake_apis.settings(sms_backend="webhook", flows_dir=str(tmp_path / "flows"))
    bot = make_app(**settings).extensions["wxbot.bot"]
    say(bot, "u1", f"登记手机 {PHONE}")
    say(bot, "u1", "是")
    assert len(fake_apis.sms) == 1
    clock.advance(61)
    assert content(say(bot, "u1", OTHER)) == f"你填写的是「{OTHER}」，对吗？请回复「是」或「否」。"
    assert content(say(bot, "u1", "是")) == phone.SENT.format(phone=OTHER_MASKED)
    assert content(say(bot, "u1", fake_apis.sms[-1]["code"])) == f"已登记 {OTHER_MASKED}。"
