"""Flow files from a review: line numbers of empty plain texts, booleans where a whole number
is expected, `attempts.urgent` honoured by the runner and the console alike, and only an
sms_code slot's verified marker becoming ``true`` in the webhook payload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakeapis import FakeApis, fake_apis_fixture  # noqa: F401
from tests.helpers import content, say
from tests.test_flow_files import GOOD, assert_reported, problems, write, written_problems
from wxbot.console.flows import bands_shown
from wxbot.flows import load_flows
from wxbot.flows import messages as flow_says
from wxbot.flows.spec import Bands
from wxbot.i18n import translate
from wxbot.messages.replies import TransferToHuman

ORDER_FLOW = GOOD.format(name="order", trigger="查订单")  # the step's `ask:` is on line 7


def order_flow_problems(tmp_path: Path, old: str, new: str) -> tuple[Path, list[str]]:
    """The problems the loader reports in ORDER_FLOW with ``old`` replaced by ``new``."""
    assert old in ORDER_FLOW
    return written_problems(tmp_path, ORDER_FLOW.replace(old, new))


# --- 1. an empty text given as plain text is reported at its own line ------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            "    ask: {zh: 请提供订单号。, en: Send the order number.}",
            '    ask: ""',
            7,
            "`ask.zh` of step 'order_no' is empty",
        ),
        ("    ask: {zh: 请提供订单号。, en: Send the order number.}", "    ask: ' '", 7, "ask.zh"),
        ("length: 18", 'length: 18\n    invalid: ""', 7, "`invalid.zh` of step 'order_no'"),
        ("length: 18", 'length: 18\n    confirm: ""', 7, "`confirm.zh` of step 'order_no'"),
        (
            "length: 18",
            'length: 18\n    ask_if:\n      bound_phone: ""',
            8,
            "`bound_phone.zh` of `ask_if` of step 'order_no' is empty",
        ),
        ('  reply: {zh: "订单 {order_no}"}', '  reply: ""', 9, "`reply.zh` of the action"),
    ],
)
def test_an_empty_plain_text_names_its_line(tmp_path, old, new, line, message) -> None:  # type: ignore[no-untyped-def]
    path, found = order_flow_problems(tmp_path, old, new)
    assert_reported(path, found, line, message)
    assert not any(p.startswith(f"{path}:0: ") for p in found), found


def test_an_empty_plain_sms_message_names_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = """\
name: bind
triggers: [绑定]
steps:
  - slot: phone
    type: phone
    ask: 手机号？
  - slot: code
    type: sms_code
    phone_slot: phone
    ask: 验证码？
    messages:
      sent: ""
action:
  reply: 好
"""
    path = write(tmp_path, "bind", text)
    found = problems(tmp_path)
    assert found == [f"{path}:12: `sent.zh` of `messages.sent` of step 'code' is empty"]


# --- 2. true / false are not whole numbers -----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("steps:", "rounds: true\nsteps:", 3, "`rounds` must be a positive whole number"),
        ("steps:", "rounds: false\nsteps:", 3, "`rounds` must be a positive whole number"),
        ("type: digits\n    length: 18", "type: text\n    max_length: true", 6, "`max_length`"),
        ("length: 18", "length: true", 6, "`length:`"),
        ("steps:", "attempts: {limit: true}\nsteps:", 3, "`attempts.limit`"),
        ("steps:", "attempts: {urgent: false}\nsteps:", 3, "`attempts.urgent`"),
    ],
)
def test_a_boolean_is_not_a_whole_number(tmp_path, old, new, line, message) -> None:  # type: ignore[no-untyped-def]
    path, found = order_flow_problems(tmp_path, old, new)
    assert_reported(path, found, line, message)


def test_rounds_as_a_number_still_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "order", ORDER_FLOW.replace("steps:", "rounds: 3\nsteps:"))
    assert load_flows(tmp_path).flows[0].max_rounds == 3


# --- 3. attempts.urgent ends the urgent band ------------------------------------------------


def test_urgent_ends_the_urgent_band() -> None:
    bands = Bands(patient=1, explicit=2, urgent=3, limit=9)
    got = [bands.band(n) for n in range(1, 10)]
    assert got == ["patient", "explicit", "urgent", *["explicit"] * 5, "limit"]
    # the defaults: 1-4, 5-6, 7-9, the 10th (the README's transcript)
    got = [Bands().band(n) for n in range(1, 11)]
    assert got == ["patient"] * 4 + ["explicit"] * 2 + ["urgent"] * 3 + ["limit"]


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        ("{limit: 3}", Bands(2, 2, 2, 3)),  # the shipped bind_phone flow
        ("{limit: 20}", Bands(4, 6, 19, 20)),  # urgent not given: up to the hand-off, as before
        ("{explicit: 12, limit: 20}", Bands(4, 12, 19, 20)),
        ("{urgent: 7}", Bands(4, 6, 7, 10)),
    ],
)
def test_urgent_left_out_runs_up_to_the_hand_off(tmp_path, attempts, expected) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "order", ORDER_FLOW.replace("steps:", f"attempts: {attempts}\nsteps:"))
    assert load_flows(tmp_path).flows[0].bands == expected


def test_shipped_flows_keep_their_bands() -> None:
    bands = {f.name: f.bands for f in load_flows().flows}
    assert bands == {"bind_phone": Bands(2, 2, 2, 3), "recharge_query": Bands(4, 6, 9, 10)}


BANDS_FLOW = """\
name: order
triggers: [查订单]
attempts: {patient: 1, explicit: 2, urgent: 3, limit: 6}
steps:
  - slot: order_no
    type: digits
    length: 6
    example: "123456"
    invalid: 订单号是 6 位数字。
    ask: 请提供订单号。
action:
  reply: "订单 {order_no}"
"""


def test_the_runner_honours_urgent(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "flows", "order", BANDS_FLOW)
    bot = make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]
    say(bot, "u1", "查订单")
    replies = [content(say(bot, "u1", "不知道")) for _ in range(5)]
    example = translate(flow_says.EXAMPLE, "zh", example="123456")
    left = translate(flow_says.TRIES_LEFT, "zh", left=3)
    assert replies == [
        "订单号是 6 位数字。",  # 1: patient
        f"订单号是 6 位数字。\n{example}",  # 2: explicit
        f"订单号是 6 位数字。\n{example}\n{left}",  # 3: urgent
        f"订单号是 6 位数字。\n{example}",  # 4-5: past `urgent`, the example only
        f"订单号是 6 位数字。\n{example}",
    ]
    assert isinstance(say(bot, "u1", "还是不知道"), TransferToHuman)  # 6: the limit


@pytest.mark.parametrize(
    "bands",
    [
        Bands(),
        Bands(2, 2, 2, 3),
        Bands(1, 2, 3, 4),
        Bands(1, 2, 3, 9),
        Bands(4, 6, 19, 20),
        Bands(3, 3, 5, 8),
        Bands(1, 1, 1, 5),
    ],
)
def test_the_console_shows_the_bands_the_runner_uses(bands: Bands) -> None:
    flow = load_flows().flows[0]
    flow.bands = bands
    by_text = {"再说一遍": "patient", "再加一个例子": "explicit", "再加剩余次数": "urgent"}
    shown: dict[int, str] = {}
    for when, what in bands_shown(flow, "123"):
        first, _, last = re.fullmatch(r"第 (\d+)(–(\d+))? 次", when).group(1, 2, 3)  # type: ignore[union-attr]
        band = (
            "limit"
            if what == "转人工客服"
            else next(b for prefix, b in by_text.items() if what.startswith(prefix))
        )
        for attempt in range(int(first), int(last or first) + 1):
            assert attempt not in shown, (attempt, bands_shown(flow, "123"))
            shown[attempt] = band
    assert shown == {n: bands.band(n) for n in range(1, bands.limit + 1)}


# --- 4. only an sms_code slot's marker becomes true -----------------------------------------

HOOK_FLOW = """\
name: note
triggers: [留言]
steps:
  - slot: phone
    type: phone
    ask: 手机号？
  - slot: code
    type: sms_code
    phone_slot: phone
    ask: 验证码？
  - slot: note
    type: text
    ask: 请留言。
action:
  webhook: {url}/recharge
"""


def test_only_the_sms_code_slot_is_true_in_the_webhook(  # type: ignore[no-untyped-def]
    make_app, fake_apis: FakeApis, tmp_path: Path
) -> None:
    write(tmp_path / "flows", "note", HOOK_FLOW.format(url=fake_apis.url))
    settings = fake_apis.settings(sms_backend="webhook", flows_dir=str(tmp_path / "flows"))
    bot = make_app(**settings).extensions["wxbot.bot"]
    say(bot, "u1", "留言")
    say(bot, "u1", "13800138000")
    assert content(say(bot, "u1", fake_apis.sms[-1]["code"])) == "请留言。"
    say(bot, "u1", "verified")  # typed by the user into a text slot
    assert fake_apis.webhooks[-1]["slots"] == {
        "phone": "13800138000",
        "code": True,
        "note": "verified",
    }


# --- choice options: their values and labels are checked like other texts -------------------

CHOICE_FLOW = """\
name: pick
triggers: [选套餐]
steps:
  - slot: plan
    type: choice
    ask: 选哪个套餐？
    options:
      - {value: basic, label: {zh: 基础版, en: Basic}}
      - OPTION
action:
  reply: 好
"""


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("{value: true, label: 是}", "an option's `value` must be text or a number, not True"),
        ('{value: "", label: 空}', "an option's `value` must be text or a number"),
        ("{value: pro, label: {zh: false}}", "an option's `label.zh` must be non-empty text"),
        ('{value: pro, label: {zh: ""}}', "an option's `label.zh` must be non-empty text"),
        ("{value: pro, label: {cn: 专业版}}", "unknown language 'cn' in an option's `label`"),
    ],
)
def test_a_choice_option_with_a_bad_value_or_label_is_refused(tmp_path, option, message) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "pick", CHOICE_FLOW.replace("OPTION", option))
    found = problems(tmp_path)
    assert any(p.startswith(f"{path}:") and message in p for p in found), found


def test_good_choice_options_still_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "pick", CHOICE_FLOW.replace("OPTION", "{value: 2, label: 专业版}"))
    (flow,) = load_flows(tmp_path).flows
    options = flow.steps[0].kind.options  # type: ignore[attr-defined]
    assert [(o.value, o.labels) for o in options] == [
        ("basic", {"zh": "基础版", "en": "Basic"}),
        ("2", {"zh": "专业版"}),
    ]
