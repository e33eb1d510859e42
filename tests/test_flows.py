"""Business flows through the engine (SQLite and MySQL): the shipped recharge-query flow
against a local fake webhook, slots from free text, guidance bands, interruptions, funnel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakeapis import RECHARGE_REPLIES, FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say, state_of
from wxbot.dialog import words
from wxbot.flows import messages as flow_says
from wxbot.i18n import translate
from wxbot.messages.replies import TransferToHuman
from wxbot.qa import writer

ORDER = "202501150830123456"
ASK_ZH = "请提供 18 位充值订单号（在「我的 - 订单」里可以找到）。"
INVALID_ZH = "订单号是 18 位数字，可在「我的 - 订单」里找到，请再发一次。"
STATE = "WAIT_RECHARGE_ORDER"


@pytest.fixture
def fbot(make_app, fake_apis: FakeApis, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_RECHARGE_WEBHOOK", f"{fake_apis.url}/recharge")
    app = make_app(**fake_apis.settings(sms_backend="webhook"))
    return app.extensions["wxbot.bot"]


def test_trigger_asks_then_the_webhook_answers(fbot, fake_apis: FakeApis) -> None:  # type: ignore[no-untyped-def]
    assert content(say(fbot, "u1", "充值没到账")) == ASK_ZH
    assert state_of(fbot, "u1") == (STATE, 0)
    assert content(say(fbot, "u1", "12345")) == INVALID_ZH
    assert state_of(fbot, "u1") == (STATE, 1)
    reply = content(say(fbot, "u1", ORDER))
    assert reply == f"订单 {ORDER} 的查询结果：\n{RECHARGE_REPLIES['zh']}"
    assert fake_apis.webhooks == [
        {"openid": "u1", "flow": "recharge_query", "slots": {"order_no": ORDER}, "language": "zh"}
    ]
    assert state_of(fbot, "u1") == ("WAIT_QUERY", 0)


def test_the_slot_in_the_trigger_message_skips_the_question(fbot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    reply = content(say(fbot, "u1", f"我要查充值，订单号 {ORDER}"))
    assert reply.endswith(RECHARGE_REPLIES["zh"])
    assert len(fake_apis.webhooks) == 1


def test_english_user_gets_english_prompts_and_webhook_language(fbot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    reply = content(say(fbot, "u1", "My recharge was not received, can you check my recharge?"))
    assert (
        reply
        == 'Please send your 18-digit recharge order number (you can find it under "Me > Orders").'
    )
    reply = content(say(fbot, "u1", f"it is {ORDER}"))
    assert reply == f"Order {ORDER}:\n{RECHARGE_REPLIES['en']}"
    assert fake_apis.webhooks[-1]["language"] == "en"


def test_guidance_escalates_then_hands_off_with_a_note(fbot) -> None:  # type: ignore[no-untyped-def]
    say(fbot, "u1", "查充值")
    replies = [content(say(fbot, "u1", "不知道")) for _ in range(9)]
    assert replies[:4] == [INVALID_ZH] * 4  # patient
    example = translate(flow_says.EXAMPLE, "zh", example=ORDER)
    assert replies[4] == replies[5] == f"{INVALID_ZH}\n{example}"  # explicit
    for attempt, reply in zip((7, 8, 9), replies[6:], strict=True):  # urgent
        left = translate(flow_says.TRIES_LEFT, "zh", left=10 - attempt)
        assert reply == f"{INVALID_ZH}\n{example}\n{left}"
    assert state_of(fbot, "u1") == (STATE, 9)
    handoff = say(fbot, "u1", "还是不知道")
    assert isinstance(handoff, TransferToHuman)
    assert "recharge_query" in handoff.note and "order_no" in handoff.note
    assert state_of(fbot, "u1") == ("WAIT_QUERY", 0)


def test_a_knowledge_question_mid_flow_is_answered_then_the_prompt_repeated(fbot, clock) -> None:  # type: ignore[no-untyped-def]
    with fbot.engine.begin() as conn:
        writer.teach(conn, "客服电话是多少", "客服电话 400-000-0000。", now=clock(), taught_by=None)
    say(fbot, "u1", "查充值")
    say(fbot, "u1", "12")  # one failed attempt
    reply = content(say(fbot, "u1", "客服电话是多少"))
    assert reply == f"客服电话 400-000-0000。\n\n{ASK_ZH}"
    assert state_of(fbot, "u1") == (STATE, 1)  # not a failed attempt


def test_cancel_and_human_leave_the_flow(fbot) -> None:  # type: ignore[no-untyped-def]
    say(fbot, "u1", "查充值")
    assert content(say(fbot, "u1", "取消")) == words.CANCELLED
    say(fbot, "u2", "查充值")
    assert isinstance(say(fbot, "u2", "人工"), TransferToHuman)
    assert state_of(fbot, "u2") == ("WAIT_QUERY", 0)


def test_webhook_down_says_so_and_leaves_the_flow(fbot, fake_apis) -> None:  # type: ignore[no-untyped-def]
    fake_apis.down.add("recharge")
    reply = content(say(fbot, "u1", f"查充值 {ORDER}"))
    assert reply == f"订单 {ORDER} 的查询结果：\n{translate(flow_says.WEBHOOK_FAILED, 'zh')}"
    assert state_of(fbot, "u1") == ("WAIT_QUERY", 0)


def test_funnel_statistics_per_flow_and_step(fbot, make_app, fake_apis, clock) -> None:  # type: ignore[no-untyped-def]
    say(fbot, "a", f"查充值 {ORDER}")  # entered + completed, the step filled at 0 attempts
    say(fbot, "b", "查充值")
    say(fbot, "b", "1")
    say(fbot, "b", ORDER)  # completed after 1 failed attempt
    say(fbot, "c", "查充值")
    say(fbot, "c", "取消")  # cancelled
    say(fbot, "d", "查充值")  # still in progress
    say(fbot, "e", "查充值")
    clock.advance(601)  # e walked away: timed out
    fbot.clean_up()
    client = make_app(admin_token="t").test_client()
    stats = client.get("/admin/api/stats", headers={"Authorization": "Bearer t"}).get_json()
    funnel = stats["flows"]["recharge_query"]
    assert {k: funnel[k] for k in ("entered", "completed", "cancelled", "handed_off")} == {
        "entered": 5,
        "completed": 2,
        "cancelled": 1,
        "handed_off": 0,
    }
    assert funnel["in_progress"] == 0 and funnel["timed_out"] == 2  # d and e, both expired now
    (step,) = funnel["steps"]
    assert step["step"] == "order_no" and step["entered"] == 5 and step["filled"] == 2
    assert step["median_attempts"] == 0.0  # a: 0, b: 1, c: 0 -> median 0
    assert stats["flows"]["bind_phone"]["entered"] == 0


# --- a flow written for these tests: choice, confirmation, pattern, phone, text ------------

FLOW = """
name: address_change
triggers: [改地址, change address]
attempts: {patient: 1, explicit: 2, urgent: 3, limit: 4}
steps:
  - slot: kind
    type: choice
    options:
      - {value: home, label: {zh: 家庭, en: home}}
      - {value: office, label: {zh: 公司, en: office}}
    ask: {zh: 改哪个地址？, en: "Which address?"}
  - slot: code
    type: pattern
    pattern: '^[A-Z]{2}\\d{4}$'
    example: AB1234
    ask: {zh: 请发会员号（两个大写字母加四位数字）。, en: "Your member code?"}
    confirm: true
  - slot: phone
    type: phone
    ask: {zh: 联系电话？, en: "Your phone?"}
  - slot: address
    type: text
    ask: {zh: 新地址是？, en: "The new address?"}
action:
  reply: {zh: "已把{kind}地址改为 {address}（会员 {code}，电话 {phone|mask}）。", en: "Done: {kind} address is now {address}."}
"""


@pytest.fixture
def abot(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "address.yaml").write_text(FLOW, encoding="utf-8")
    return make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]


def _say_all(bot: Any, openid: str, *lines: str) -> list[str]:
    return [content(say(bot, openid, line)) for line in lines]


def test_free_text_fills_several_slots_and_confirmation(abot) -> None:  # type: ignore[no-untyped-def]
    replies = _say_all(abot, "u1", "我要改地址，公司的，会员号 XY2024，把手机号改成13800138000")
    assert replies == ["你填写的是「XY2024」，对吗？请回复「是」或「否」。"]
    assert _say_all(abot, "u1", "否") == ["请发会员号（两个大写字母加四位数字）。"]
    assert _say_all(abot, "u1", "XY2025") == ["你填写的是「XY2025」，对吗？请回复「是」或「否」。"]
    assert _say_all(abot, "u1", "是") == ["新地址是？"]  # the phone came with the first message
    assert _say_all(abot, "u1", "北京市朝阳区某路 1 号") == [
        "已把公司地址改为 北京市朝阳区某路 1 号（会员 XY2025，电话 138****8000）。"
    ]


@pytest.mark.parametrize(
    ("yes", "no"), [("ＹＥＳ", "ＮＯ"), ("好的👍", "否～"), ("「是的」", "no!")]
)
def test_a_confirmation_is_read_as_the_engine_reads_commands(abot, yes: str, no: str) -> None:  # type: ignore[no-untyped-def]
    """Full-width letters (a Chinese IME), emoji and quotes around 是 / 否, as 取消 is read."""
    _say_all(abot, "u1", "我要改地址，公司的，会员号 XY2024，把手机号改成13800138000")
    assert _say_all(abot, "u1", no) == ["请发会员号（两个大写字母加四位数字）。"]
    _say_all(abot, "u1", "XY2025")
    assert _say_all(abot, "u1", yes) == ["新地址是？"]


def test_choice_by_number_menu_and_bands(abot) -> None:  # type: ignore[no-untyped-def]
    first = content(say(abot, "u1", "改地址"))
    assert first == "改哪个地址？\n请回复序号或选项名称：\n1. 家庭\n2. 公司"
    assert content(say(abot, "u1", "3")) == first  # patient: the prompt again
    explicit = content(say(abot, "u1", "都不是"))
    assert explicit.endswith("例如：家庭")
    urgent = content(say(abot, "u1", "嗯"))
    assert urgent.endswith("还可以再试 1 次，之后会为你转接人工客服。")
    assert content(say(abot, "u1", "1")) == "请发会员号（两个大写字母加四位数字）。"


def test_language_switch_mid_flow_repeats_the_prompt(abot) -> None:  # type: ignore[no-untyped-def]
    say(abot, "u1", "改地址")
    reply = content(say(abot, "u1", "language en"))
    assert reply == "OK, I'll reply in English from now on.\n\nWhich address?\n" + (
        "Reply with a number or the option's name:\n1. home\n2. office"
    )
    assert content(say(abot, "u1", "office")) == "Your member code?"
