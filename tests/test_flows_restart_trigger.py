"""A flow's own keyword or trigger typed again mid-flow starts the flow again from its first
step (SQLite and MySQL): never a failed attempt, only the values the message itself carries,
and never a way around the limits on texting SMS codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from tests.phone_texts import phone
from tests.test_flows import FLOW as ADDRESS_FLOW
from wxbot.flows import phone as numbers
from wxbot.flows.models import FlowStat
from wxbot.messages.replies import TransferToHuman

PHONE, MASKED = "13800138000", "138****8000"
OTHER, OTHER_MASKED = "13900139000", "139****9000"
ORDER = "202501150830123456"
ASK_ORDER = "请提供 18 位充值订单号（在「我的 - 订单」里可以找到）。"
INVALID_ORDER = "订单号是 18 位数字，可在「我的 - 订单」里找到，请再发一次。"


@pytest.fixture
def bot(make_app, fake_apis: FakeApis, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{fake_apis.url}/recharge")
    return make_app(**fake_apis.settings(sms_backend="webhook")).extensions["wxbot.bot"]


@pytest.fixture
def address_bot(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "address.yaml").write_text(ADDRESS_FLOW, encoding="utf-8")
    return make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]


def flow_events(bot: Any, flow: str) -> dict[str, int]:
    table = FlowStat.__table__
    with bot.engine.connect() as conn:
        rows = conn.execute(
            select(table.c.event, table.c.count).where(table.c.flow == flow, table.c.step == "")
        )
        return {event: int(count) for event, count in rows}


def wrong_code(fake: FakeApis) -> str:
    return "000000" if fake.sms[-1]["code"] != "000000" else "111111"


# --- the phone-binding flow ------------------------------------------------------------------


def test_the_keyword_at_the_code_step_asks_for_the_number_again(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    say(bot, "u1", PHONE)
    for _ in range(4):  # the flow's limit is 3 failed attempts: none of these is one
        reply = say(bot, "u1", "绑定手机")
        assert not isinstance(reply, TransferToHuman)
        assert content(reply) == phone.ASK_NUMBER
        assert state_of(bot, "u1") == ("WAIT_PHONE_NUMBER", 0)
    assert len(fake_apis.sms) == 1


def test_a_restart_within_the_minute_texts_nothing_and_the_code_sent_still_works(
    bot, fake_apis, clock
) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", f"绑定手机 {PHONE}")
    code = fake_apis.sms[-1]["code"]
    clock.advance(20)
    assert content(say(bot, "u1", "绑定手机")) == phone.ASK_NUMBER
    assert content(say(bot, "u1", PHONE)) == phone.WAIT_RESEND.format(seconds=40)
    assert content(say(bot, "u1", f"绑定手机 {PHONE}")) == phone.WAIT_RESEND.format(seconds=40)
    assert len(fake_apis.sms) == 1
    assert content(say(bot, "u1", code)) == phone.BOUND.format(phone=MASKED)


def test_a_restart_with_another_number_keeps_to_the_limits(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    say(bot, "u1", PHONE)
    old = fake_apis.sms[-1]["code"]
    reply = content(say(bot, "u1", f"绑定手机 {OTHER}"))  # the number changes, no new code yet
    assert reply.endswith(phone.WAIT_RESEND.format(seconds=60))
    assert state_of(bot, "u1") == ("WAIT_PHONE_CODE", 0)
    assert len(fake_apis.sms) == 1
    assert content(say(bot, "u1", old)) == phone.WRONG.format(left=2)  # not for this number
    clock.advance(60)
    assert content(say(bot, "u1", "重发")) == phone.SENT.format(phone=OTHER_MASKED)
    assert fake_apis.sms[-1]["phone"] == OTHER
    assert content(say(bot, "u1", fake_apis.sms[-1]["code"])) == phone.BOUND.format(
        phone=OTHER_MASKED
    )


def test_a_restart_does_not_buy_more_guesses(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", f"绑定手机 {PHONE}")
    wrong = wrong_code(fake_apis)
    say(bot, "u1", wrong)
    say(bot, "u1", wrong)
    say(bot, "u1", f"绑定手机 {PHONE}")  # within the minute: the same pending code
    assert content(say(bot, "u1", wrong)) == phone.TOO_MANY


def test_restarts_do_not_get_round_the_daily_cap(bot, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(numbers.USER_DAILY):
        assert content(say(bot, "u1", f"绑定手机 1380013{len(fake_apis.sms):04d}")).startswith(
            "验证码已发送到"
        )
        clock.advance(61)
    before = len(fake_apis.sms)
    reply = content(say(bot, "u1", "绑定手机 13700137000"))
    assert "上限" in reply and len(fake_apis.sms) == before == numbers.USER_DAILY


def test_a_restart_counts_as_a_cancelled_run_and_a_new_one(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "绑定手机")
    say(bot, "u1", PHONE)
    say(bot, "u1", "绑定手机")
    assert flow_events(bot, "bind_phone") == {"entered": 2, "cancelled": 1}


# --- a flow of one step, and a flow with a choice, a confirmation and a text step -------------


def test_the_trigger_again_restarts_a_one_step_flow_and_its_attempts(bot) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "查充值")
    say(bot, "u1", "12345")
    say(bot, "u1", "12345")
    assert state_of(bot, "u1") == ("WAIT_RECHARGE_ORDER", 2)
    assert content(say(bot, "u1", "查充值")) == ASK_ORDER
    assert state_of(bot, "u1") == ("WAIT_RECHARGE_ORDER", 0)
    assert content(say(bot, "u1", "12345")) == INVALID_ORDER
    assert state_of(bot, "u1") == ("WAIT_RECHARGE_ORDER", 1)


def test_a_trigger_that_also_answers_the_step_is_its_answer(bot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    say(bot, "u1", "查充值")
    reply = content(say(bot, "u1", f"查充值 {ORDER}"))
    assert reply.startswith(f"订单 {ORDER} 的查询结果：")
    assert len(fake_apis.webhooks) == 1


def test_a_restart_keeps_only_the_values_of_the_trigger_message(address_bot) -> None:  # type: ignore[no-untyped-def]
    say(address_bot, "u1", "改地址，公司的")
    say(address_bot, "u1", "XY2024")
    assert state_of(address_bot, "u1") == ("WAIT_address_change.code", 0)  # confirming XY2024
    reply = content(say(address_bot, "u1", "改地址"))  # the company choice is gone too
    assert reply == "改哪个地址？\n请回复序号或选项名称：\n1. 家庭\n2. 公司"
    assert state_of(address_bot, "u1") == ("WAIT_address_change.kind", 0)
    say(address_bot, "u1", "公司")
    assert content(say(address_bot, "u1", "改地址 家庭 会员号 AB1234")) == (
        "你填写的是「AB1234」，对吗？请回复「是」或「否」。"
    )
    assert content(say(address_bot, "u1", "是")) == "联系电话？"
    say(address_bot, "u1", PHONE)
    reply = content(say(address_bot, "u1", "北京市朝阳区某路 1 号"))
    assert reply.startswith("已把家庭地址改为")


def test_the_bare_trigger_restarts_at_a_text_step_a_longer_text_is_the_answer(address_bot) -> None:  # type: ignore[no-untyped-def]
    for line in ("改地址", "公司", "XY2024", "是", PHONE):
        say(address_bot, "u1", line)
    assert state_of(address_bot, "u1")[0] == "WAIT_address_change.address"
    assert content(say(address_bot, "u1", "改地址！")).startswith("改哪个地址？")
    for line in ("公司", "XY2024", "是", PHONE):
        say(address_bot, "u1", line)
    reply = content(say(address_bot, "u1", "改地址到朝阳区某路 1 号"))
    assert reply == ("已把公司地址改为 改地址到朝阳区某路 1 号（会员 XY2024，电话 138****8000）。")
