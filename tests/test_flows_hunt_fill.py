"""Slots filled in passing take only values that cannot be mistaken (SQLite and MySQL): the
trigger phrase is no name, a district picked from a menu is no name either, and a mistyped
number is not cut down to the length a `pattern` asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import content, say, state_of
from wxbot.flows.slots import build

BOOKING = r"""name: booking
triggers: [预约看房, book a viewing]
steps:
  - slot: area
    type: choice
    options: [朝阳, 海淀, 东城]
    ask: {zh: 请选择区域。, en: Choose an area.}
  - slot: name
    type: pattern
    pattern: '[\u4e00-\u9fa5]{2,4}'
    ask: {zh: 请问您的姓名？, en: "Your name in Chinese?"}
  - slot: member
    type: pattern
    pattern: '\d{6}'
    ask: {zh: 请提供 6 位会员号。, en: Your 6-digit member number.}
  - slot: passport
    type: pattern
    pattern: '[A-Z]{2}\d{8}'
    ask: {zh: 请提供护照号。, en: Your passport number.}
action:
  reply: {zh: "已预约：{area} {name} {member} {passport}", en: "Booked: {area} {name} {member} {passport}"}
"""


@pytest.fixture
def bbot(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "booking.yaml").write_text(BOOKING, encoding="utf-8")
    return make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]


def slots_of(bot, openid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from sqlalchemy import select

    from wxbot.models import Context

    with bot.engine.connect() as conn:
        raw = conn.execute(select(Context.slots).where(Context.openid == openid)).scalar_one()
    import json

    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def test_the_trigger_phrase_does_not_fill_a_wide_pattern(bbot) -> None:  # type: ignore[no-untyped-def]
    """「预约看房」 started the flow and was kept as the user's name: the name was never asked
    and the booking went out as 「预约看房」."""
    assert content(say(bbot, "u1", "预约看房")).startswith("请选择区域。")
    assert "name" not in slots_of(bbot, "u1")


def test_a_menu_answer_does_not_fill_a_wide_pattern_too(bbot) -> None:  # type: ignore[no-untyped-def]
    say(bbot, "u1", "预约看房")
    assert content(say(bbot, "u1", "海淀")) == "请问您的姓名？"
    assert slots_of(bbot, "u1") == {"area": "海淀"}
    assert state_of(bbot, "u1") == ("WAIT_booking.name", 0)


def test_a_mistyped_number_is_not_cut_to_the_pattern(bbot) -> None:  # type: ignore[no-untyped-def]
    """A 7-digit answer to `\\d{6}` was taken as its first six digits, and a passport number
    with a digit too many lost it: both reached the action as if typed right."""
    for text in ("预约看房", "海淀", "张三"):
        say(bbot, "u1", text)
    assert content(say(bbot, "u1", "1234567")) == "请提供 6 位会员号。"
    assert state_of(bbot, "u1") == ("WAIT_booking.member", 1)
    assert content(say(bbot, "u1", "会员号 123456")) == "请提供护照号。"
    assert content(say(bbot, "u1", "AB123456789")) == "请提供护照号。"
    assert content(say(bbot, "u1", "护照 AB12345678")) == "已预约：海淀 张三 123456 AB12345678"


def test_a_distinct_pattern_still_fills_in_passing(bbot) -> None:  # type: ignore[no-untyped-def]
    """Values that cannot be mistaken still come with any message, the trigger's included."""
    assert content(say(bbot, "u1", "预约看房，护照 AB12345678，会员号 654321")).startswith(
        "请选择区域。"
    )
    assert slots_of(bbot, "u1") == {"passport": "AB12345678", "member": "654321"}
    say(bbot, "u1", "东城")
    assert content(say(bbot, "u1", "李四")) == "已预约：东城 李四 654321 AB12345678"


@pytest.mark.parametrize(
    ("pattern", "text", "value"),
    [
        (r"\d{6}", "1234567", None),
        (r"\d{6}", "12345678901", None),  # a phone number is no 6-digit code
        (r"\d{6}", "编号123456号", "123456"),
        (r"\d{6}", "No123456", "123456"),
        (r"\d{6}", "1234567 654321", "654321"),
        (r"\d{3}-\d{4}", "1234-5678", None),
        (r"[A-Z]{2}\d{8}", "XAB12345678", None),
        (r"[A-Z]{2}\d{8}", "护照 AB12345678", "AB12345678"),
        (r"[\w.+-]+@[\w-]+\.[a-z]{2,}", "邮箱 me@x.cn 谢谢", "me@x.cn"),
    ],
)
def test_a_value_is_never_cut_from_a_longer_run(pattern: str, text: str, value: str | None) -> None:
    assert build("pattern", {"pattern": pattern}).find(text) == value


SEATS = r"""name: seats
triggers: [选座位]
steps:
  - slot: hall
    type: choice
    options: [A1, B2]
    ask: 请选择影厅。
  - slot: seat
    type: pattern
    pattern: '[A-Z]\d{1,3}'
    ask: 请发座位号（如 C12）。
action:
  reply: "影厅 {hall}，座位 {seat}"
"""


def test_the_current_answer_is_not_another_steps_answer_too(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A distinct pattern may fill in passing, but not from the message the current step
    just took whole: 「A1」 picked the hall and was also kept as the seat, never asked."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "seats.yaml").write_text(SEATS, encoding="utf-8")
    bot = make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]
    say(bot, "u1", "选座位")
    assert content(say(bot, "u1", "A1")) == "请发座位号（如 C12）。"
    assert content(say(bot, "u1", "C12")) == "影厅 A1，座位 C12"
    # a seat said in another message still comes along
    assert content(say(bot, "u2", "选座位，座位 D7")).startswith("请选择影厅。")
    assert content(say(bot, "u2", "B2")) == "影厅 B2，座位 D7"
