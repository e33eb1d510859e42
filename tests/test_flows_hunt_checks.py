"""Flow files that `wxbot flows check` accepted although they could not work as written:
a trigger that is a word the bot answers itself in another language, `confirm: yes`."""

from __future__ import annotations

import pytest

from tests.helpers import content, say
from tests.test_flow_files import assert_reported, written_problems

FLOW = """\
name: order
triggers: [查订单]
steps:
  - slot: order_no
    type: digits
    length: 6
    ask: {zh: 请提供订单号。, en: Send the order number.}
action:
  reply: {zh: "订单 {order_no}"}
"""


def edited(old: str, new: str) -> str:
    assert old in FLOW, old
    return FLOW.replace(old, new)


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        # cancel, hand-off, next page and teaching words in every reply language: the bot
        # answers the bare word itself, so the flow never started on it
        ("退出", "a word the bot itself answers"),
        ("quit", "a word the bot itself answers"),
        ("キャンセル", "a word the bot itself answers"),
        ("ikansela", "a word the bot itself answers"),
        ("agent", "a word the bot itself answers"),
        ("转人工", "a word the bot itself answers"),
        ("オペレーター", "a word the bot itself answers"),
        ("下一页", "a word the bot itself answers"),
        ("次へ", "a word the bot itself answers"),
        ("调教", "a word the bot itself answers"),
        ("lang", "a word the bot itself answers"),
        ("language en", "a language command"),
        ("语言 ja", "a language command"),
    ],
)
def test_a_trigger_the_bot_answers_itself_is_refused(tmp_path, trigger, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited("[查订单]", f"[查订单, '{trigger}']"))
    assert_reported(path, found, 2, message)


def test_such_a_trigger_never_started_its_flow(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What the check now refuses: the flow's own trigger cancels, or switches languages."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "order.yaml").write_text(FLOW, encoding="utf-8")
    bot = make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]
    assert content(say(bot, "u1", "退出")) != "请提供订单号。"
    assert content(say(bot, "u1", "查订单")) == "请提供订单号。"


def test_help_words_stay_allowed_as_triggers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The README: a flow whose trigger is 「菜单」 comes before the help."""
    from tests.test_flow_files import write
    from wxbot.flows import load_flows

    write(tmp_path, "order", edited("[查订单]", "[查订单, 菜单, ヘルプ, 是]"))
    assert [f.name for f in load_flows(tmp_path).flows] == ["order"]


@pytest.mark.parametrize("value", ["yes", "Yes", "on", "no", "off", "y"])
def test_confirm_yes_is_refused_not_asked(tmp_path, value: str) -> None:  # type: ignore[no-untyped-def]
    """`confirm: yes` (YAML 1.1's true) was kept as text: the user was asked 「yes」 instead
    of whether the value was right."""
    text = edited("    length: 6\n", f"    length: 6\n    confirm: {value}\n")
    path, found = written_problems(tmp_path, text)
    assert_reported(path, found, 7, "write `confirm: true`")


ASK = "    ask: {zh: 请提供订单号。, en: Send the order number.}"
REPLY = '  reply: {zh: "订单 {order_no}"}'


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # PyYAML said only 「expected <block end>, but found '<scalar>'」
        (edited(REPLY, "  reply: {order_no} 已收到"), 9),
        (edited(REPLY, "  reply: {zh: 订单 {order_no}}"), 9),
        (edited(ASK, "    ask: {zh: 请提供订单号。, en: Note: send it}"), 7),
        (edited(ASK, "    ask: {zh: 请提供订单号。, en: Your order number?}"), 7),
        (edited(ASK, "    ask: {zh: 请提供订单号。, en: Send #order}"), 8),  # a comment cut it
    ],
)
def test_a_text_that_needed_quotes_says_so(tmp_path, text: str, line: int) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, text)
    assert_reported(path, found, line, "not valid YAML")
    assert_reported(path, found, line, 'goes in double quotes: reply: {zh: "订单 {order_no}')


def test_an_indentation_mistake_gets_no_quoting_advice(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited("    type: digits", "  type: digits"))
    assert_reported(path, found, 5, "not valid YAML")
    assert not any("double quotes" in p for p in found), found


@pytest.mark.parametrize("trigger", ["查", "the", "是", "ang", "a"])
def test_a_trigger_in_almost_every_message_is_warned_about(tmp_path, trigger: str) -> None:  # type: ignore[no-untyped-def]
    """「查」 started the flow on 「帮我查一下快递」, 「the」 on any English question, and
    `wxbot flows check` said nothing (nor does start-up refuse it: a warning)."""
    from tests.test_flow_files import write
    from wxbot.flows import load_flows

    path = write(tmp_path, "order", edited("[查订单]", f"[查订单, '{trigger}']"))
    loaded = load_flows(tmp_path)
    assert any(
        w.startswith(f"{path}:2: ") and "in almost every message" in w for w in loaded.warnings
    ), loaded.warnings
    assert not any("in almost every message" in w for w in load_flows().warnings)
