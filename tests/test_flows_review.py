"""Review of the business flows: SMS throttling across 取消, codes and numbers written the
way people write them, and the flow's round limit (SQLite and MySQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from tests.phone_texts import phone
from wxbot.flows.phone import bound_phone, find_phone
from wxbot.flows.slots import SmsCodeSlot
from wxbot.messages.replies import TransferToHuman

PHONE = "13800138000"
MASKED = "138****8000"


@pytest.fixture
def pbot(make_app, fake_apis: FakeApis):  # type: ignore[no-untyped-def]
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


def binding(bot: Any, openid: str) -> str | None:
    with bot.engine.connect() as conn:
        return bound_phone(conn, openid)


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# --- the SMS code: at most one a minute, 取消 or not -----------------------------------------


def test_cancel_and_start_again_does_not_text_again_within_a_minute(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    """「绑定手机 138…」 + 「取消」 in a loop texted the number every two messages: 「取消」
    dropped the pending code and with it the once-a-minute throttle of 「重发」."""
    assert content(say(pbot, "u1", f"绑定手机 {PHONE}")) == phone.SENT.format(phone=MASKED)
    code = fake_apis.sms[-1]["code"]
    for _ in range(3):
        say(pbot, "u1", "取消")
        reply = content(say(pbot, "u1", f"绑定手机 {PHONE}"))
        assert reply == phone.WAIT_RESEND.format(seconds=60)
    assert len(fake_apis.sms) == 1
    # the code already sent still verifies the number
    assert content(say(pbot, "u1", code)) == phone.BOUND.format(phone=MASKED)


def test_cancel_does_not_buy_more_guesses(pbot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", f"绑定手机 {PHONE}")
    wrong = _wrong(fake_apis.sms[-1]["code"])
    say(pbot, "u1", wrong)
    say(pbot, "u1", wrong)
    say(pbot, "u1", "取消")
    say(pbot, "u1", f"绑定手机 {PHONE}")
    assert content(say(pbot, "u1", wrong)) == phone.TOO_MANY


def test_another_number_within_the_minute_waits_for_resend(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", f"绑定手机 {PHONE}")
    old = fake_apis.sms[-1]["code"]
    say(pbot, "u1", "取消")
    clock.advance(20)
    assert content(say(pbot, "u1", "绑定手机 13900139000")) == phone.WAIT_RESEND.format(seconds=40)
    assert len(fake_apis.sms) == 1
    # the first number's code does not verify the second number
    assert content(say(pbot, "u1", old)) == phone.WRONG.format(left=2)
    clock.advance(40)
    assert content(say(pbot, "u1", "重发")) == phone.SENT.format(phone="139****9000")
    assert fake_apis.sms[-1]["phone"] == "13900139000"
    assert content(say(pbot, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(
        phone="139****9000"
    )


def test_a_minute_later_starting_again_sends_a_new_code(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", f"绑定手机 {PHONE}")
    say(pbot, "u1", "取消")
    clock.advance(60)
    assert content(say(pbot, "u1", f"绑定手机 {PHONE}")) == phone.SENT.format(phone=MASKED)
    assert len(fake_apis.sms) == 2
    assert content(say(pbot, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(phone=MASKED)


# --- the code as people send it ------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "{a} {b}",  # read out in two halves
        "{a}-{b}",
        "验证码{a}{b}",
        "验证码是 {a}{b}",
        "【wxbot】您的验证码是 {a}{b}，5 分钟内有效。如非本人操作请忽略。",  # the SMS pasted
        "my code is {a}{b}.",
    ],
)
def test_the_code_with_spaces_or_inside_a_sentence_verifies(pbot, fake_apis, written) -> None:  # type: ignore[no-untyped-def]
    """Only a bare 6-digit message was taken as a code: 「验证码是 123456」 or the pasted SMS
    was a failed attempt, and with the shipped flow's limit of 3 the user who sent the right
    code three times was handed to a human."""
    say(pbot, "u1", f"绑定手机 {PHONE}")
    code = fake_apis.sms[-1]["code"]
    say(pbot, "u1", written.format(a=code[:3], b=code[3:]))
    assert binding(pbot, "u1") == PHONE


def test_code_parsing() -> None:
    slot = SmsCodeSlot("sms_code", "phone")
    assert slot.parse("１２３４５６") == "123456"  # full-width digits
    assert slot.parse(" 123 456。") == "123456"
    assert slot.parse("验证码：123456") == "123456"
    assert slot.parse("12345") is None
    assert slot.parse("1234567") is None
    assert slot.parse("123456 或 654321") is None  # which one?
    assert slot.parse("我的手机号是13800138000") is None
    assert slot.parse("๑๒๓๔๕๖") is None  # other scripts' digits are not a code


# --- the number inside a sentence, written with spaces or dashes -----------------------------


@pytest.mark.parametrize(
    "written",
    ["绑定手机 138 0013 8000", "绑定手机 +86 138-0013-8000", "bind phone 138-0013-8000"],
)
def test_a_spaced_number_in_the_request_is_taken(pbot, written) -> None:  # type: ignore[no-untyped-def]
    """「+86 138-0013-8000」 was a number only as a whole message; inside a sentence (the
    request itself, or 「我的手机号是 138 0013 8000」 at the number step) it was not seen, and at
    the number step that was a failed attempt."""
    assert MASKED in content(say(pbot, "u1", written))
    assert state_of(pbot, "u1")[0] == "WAIT_PHONE_CODE"


def test_a_spaced_number_at_the_number_step_is_taken(pbot) -> None:  # type: ignore[no-untyped-def]
    say(pbot, "u1", "绑定手机")
    assert content(say(pbot, "u1", "我的手机号是 138 0013 8000")) == phone.SENT.format(phone=MASKED)


def test_find_phone() -> None:
    assert find_phone("改成 +86 138 0013 8000 吧") == PHONE
    assert find_phone("138-0013-8000") == PHONE
    assert find_phone("13800138000 或 13900139000") is None  # which one?
    assert find_phone("订单 202501150830123456") is None
    assert find_phone("1380 0138 0001") is None  # not how a mobile number is grouped
    assert find_phone("卡号 6213800138000") is None


# --- the round limit ---------------------------------------------------------------------------

ORDER_FLOW = """
name: order
triggers: [查订单]
rounds: 3
steps:
  - slot: order_no
    type: digits
    length: 6
    ask: 请发 6 位订单号。
action:
  reply: "订单 {order_no} 已记录。"
"""


@pytest.fixture
def obot(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "order.yaml").write_text(ORDER_FLOW, encoding="utf-8")
    return make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]


def test_the_last_allowed_message_may_still_finish_the_flow(obot) -> None:  # type: ignore[no-untyped-def]
    """With `rounds: 3` the third message was handed to a human before it was read, so the
    right answer sent last was thrown away."""
    assert content(say(obot, "u1", "查订单")) == "请发 6 位订单号。"
    assert content(say(obot, "u1", "不知道")) == "请发 6 位订单号。"
    assert content(say(obot, "u1", "123456")) == "订单 123456 已记录。"
    assert state_of(obot, "u1")[0] == "WAIT_QUERY"


def test_the_last_allowed_message_hands_off_when_the_flow_is_unfinished(obot) -> None:  # type: ignore[no-untyped-def]
    say(obot, "u1", "查订单")
    say(obot, "u1", "不知道")
    reply = say(obot, "u1", "还是不知道")
    assert isinstance(reply, TransferToHuman)
    assert "3 messages" in (reply.note or "")
    assert state_of(obot, "u1")[0] == "WAIT_QUERY"


def test_resend_presses_do_not_cost_the_code(pbot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    """The shipped phone flow allows 10 messages: a user whose SMS is slow to arrive and who
    sends 「重发」 eight times was handed off when the code finally came, instead of bound."""
    say(pbot, "u1", f"绑定手机 {PHONE}")
    for _ in range(8):
        clock.advance(5)
        say(pbot, "u1", "重发")
    assert content(say(pbot, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(phone=MASKED)


def test_rounds_hand_off_after_the_number_sends_no_code(make_app, fake_apis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The number given with the last allowed message: handed off, and no code row is left
    behind that would claim a code was sent."""
    flows = Path(__file__).resolve().parent.parent / "knowledge" / "flows" / "bind_phone.yaml"
    (tmp_path / "flows").mkdir()
    text = flows.read_text(encoding="utf-8").replace("attempts: {limit: 3}", "rounds: 2")
    (tmp_path / "flows" / "bind_phone.yaml").write_text(text, encoding="utf-8")
    settings = fake_apis.settings(sms_backend="webhook", flows_dir=str(tmp_path / "flows"))
    bot = make_app(**settings).extensions["wxbot.bot"]
    say(bot, "u1", "绑定手机")
    assert isinstance(say(bot, "u1", PHONE), TransferToHuman)
    assert fake_apis.sms == []
    again = content(say(bot, "u1", f"绑定手机 {PHONE}"))
    assert again == phone.SENT.format(phone=MASKED)  # not throttled by a code never sent
