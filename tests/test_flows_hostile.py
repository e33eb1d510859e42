"""Hostile flow files: every one is refused with `file:line: reason` (never a traceback, a
hang or a file accepted that fails when users reach it), and a `pattern` slot cannot stall a
worker with catastrophic backtracking."""

from __future__ import annotations

import time

import pytest

from tests.helpers import content, say, state_of
from tests.test_flow_files import assert_reported, problems, write, written_problems
from wxbot.flows import load_flows
from wxbot.flows.loader import load_file
from wxbot.flows.patterns import MAX_ANSWER, MAX_SEARCH, PatternError, compile_pattern
from wxbot.flows.slots import build
from wxbot.flows.template import render

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
ASK = "    ask: {zh: 请提供订单号。, en: Send the order number.}"
REPLY = '  reply: {zh: "订单 {order_no}"}'


def edited(old: str, new: str) -> str:
    assert old in FLOW, old
    return FLOW.replace(old, new)


# --- the YAML itself ---------------------------------------------------------------------


LAUGHS = "".join(
    f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" if i else "x0: &x0 [lol]\n"
    for i in range(10)
)


def test_a_billion_laughs_is_refused_without_expanding(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Ten aliases of ten aliases ...: 10^9 values. The unused `description` was never
    walked (accepted), and in `example:` or `type:` its str() took 40 s and all memory."""
    text = LAUGHS + edited("length: 6", "length: 6\n    example: *x9")
    started = time.perf_counter()
    path, found = written_problems(tmp_path, text)
    assert time.perf_counter() - started < 2
    assert_reported(path, found, 1, "more than 100,000 values once its aliases")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # a list or mapping as a key was a TypeError (unhashable type: 'MarkedList')
        (edited("name: order", "name: order\n[a, b]: 1"), 2, "a key must be a word"),
        (edited(ASK, "    ask: {[zh]: 请提供订单号。}"), 7, "a key must be a word"),
        (edited("name: order", "name: order\n{a: 1}: 1"), 2, "a key must be a word"),
        # 5,000 nested lists were a RecursionError
        (edited("name: order", "name: order\ndescription: " + "[" * 5000 + "]" * 5000), 2, "deep"),
    ],
)
def test_keys_that_are_not_words_and_deep_nesting(tmp_path, text, line, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, text)
    assert_reported(path, found, line, message)


def test_an_alias_of_the_value_it_is_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(
        tmp_path, edited("triggers: [查订单]", "triggers: &t [查订单, *t]")
    )
    assert_reported(path, found, 2, "inside the value it names")


def test_a_file_over_a_megabyte_is_not_parsed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A 50 MB file (of comments, even) took 17 s to load; a flow is a few KB."""
    path, found = written_problems(tmp_path, FLOW + "# padding\n" * 120_000)
    size = path.stat().st_size
    assert found == [f"{path}:0: the file is {size:,} bytes; a flow file is at most 1,048,576"]


@pytest.mark.parametrize(
    ("raw", "line", "message"),
    [
        # the problem was reported at line 0, with a codec's wording
        (FLOW.replace("查订单", "查订单\n").encode("gbk"), 2, "not UTF-8 text (byte 0xb2)"),
        (FLOW.encode("utf-16"), 1, "the file is UTF-16; save it as UTF-8"),
        (FLOW.replace("length: 6", "length: 6\x00").encode(), 6, "control character #x0000"),
    ],
)
def test_bytes_that_are_not_utf8_text_name_their_line(tmp_path, raw, line, message) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "order.yaml"
    path.write_bytes(raw)
    _, found, _ = load_file(path)
    assert_reported(path, found, line, message)


def test_a_bom_and_merge_keys_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`<<: *anchor` then a key of the step's own was "the key 'slot' is given twice"."""
    text = edited(
        "  - slot: order_no\n    type: digits\n    length: 6\n" + ASK + "\n",
        "  - &digits {slot: order_no, type: digits, length: 6, ask: 订单号？}\n"
        "  - <<: *digits\n    slot: order_no2\n    ask: 第二个订单号？\n",
    )
    path = tmp_path / "order.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    (flow,) = load_flows(tmp_path).flows
    assert [(s.slot, s.ask.by_language["zh"]) for s in flow.steps] == [
        ("order_no", "订单号？"),
        ("order_no2", "第二个订单号？"),
    ]
    path.write_text(text.replace("ask: 第二个订单号？", "ask: 第二个？\n    ask: 第三个？"))
    assert_reported(path, problems(tmp_path), 8, "the key 'ask' is given twice")


# --- wrong shapes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (ASK, "    ask: {zh: 123}", 7, "`ask.zh` of step 'order_no' must be text"),  # "is empty"
        ("type: digits", "type: [digits]", 5, "`type` must be one of: pattern, phone"),
        ("length: 6", "length: 6\n    example: [123456]", 7, "the example must be text"),
        ("name: order", "name: order\ndescription: [a]", 2, "`description` must be text"),
        (REPLY, f"{REPLY}\n  bind_phone: [phone]", 10, "`bind_phone` must name"),  # TypeError
        (REPLY, "  webhook: [http://a]", 9, "`webhook` must be an http(s) URL"),
        ("steps:", "attempts: {limit: 100000000000000000000}\nsteps:", 3, "(at most 100)"),
        ("steps:", "rounds: 100000000000000000000\nsteps:", 3, "(at most 1,000)"),
        # a state the bot's own tasks use: DialogueTableError at start-up, after `check` said OK
        ("length: 6", "length: 6\n    state: WAIT_WEATHER_CITY", 4, "used by the bot itself"),
        ("length: 6", "length: 6\n    state: WAIT_LEARN", 4, "used by the bot itself"),
        ("length: 6", "length: 6\n    state: 'WAIT ORDER '", 7, "`state` must be a name"),
        # a trigger with no words matched every message; 天气 is always the weather's
        ("triggers: [查订单]", "triggers: ['！！']", 2, "has no words once punctuation"),
        ("triggers: [查订单]", "keywords: ['。']", 2, "has no words once punctuation"),
        ("triggers: [查订单]", "triggers: [天气]", 2, "is a weather request"),
        ("triggers: [查订单]", "triggers: [点歌]", 2, "is a music request"),
    ],
)
def test_wrong_shapes_are_refused_with_their_line(tmp_path, old, new, line, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited(old, new))
    assert_reported(path, found, line, message)


def test_a_bad_flow_name_is_reported_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited("name: order", "name: [order]"))
    assert found == [f"{path}:1: `name` must be lower-case letters, digits and _"]


CHOICE = edited("type: digits\n    length: 6", "type: choice\n    options: OPTIONS")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("[{value: a, lable: A}]", "unknown key 'lable' in an option"),  # silently ignored
        ("[{value: a, label: b}, b]", "two options answer to 'b' (options 1 and 2)"),
        ("['2', '1']", "the option name '2' would read as the number of option 2"),
        ("['。', a]", "the option '。' has a name with no words"),  # matched an empty answer
    ],
)
def test_choice_options_each_answerable_by_name(tmp_path, options, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, CHOICE.replace("OPTIONS", options))
    assert_reported(path, found, 6, message)


def test_options_numbered_in_order_still_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path, "order", CHOICE.replace("OPTIONS", "[1, 2, {value: 3, label: 第三}]"))
    assert load_flows(tmp_path).flows[0].steps[0].kind.parse("2") == "2"  # type: ignore[attr-defined]


PHONE_FLOW = """\
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
    messages: MESSAGES
action:
  reply: 好
"""


def test_two_sms_code_steps_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One pending code per user, one a minute: the second step's code was never sent."""
    text = PHONE_FLOW.replace("    messages: MESSAGES\n", "").replace(
        "action:",
        "  - slot: code2\n    type: sms_code\n    phone_slot: phone\n    ask: 再来？\naction:",
    )
    path, found = written_problems(tmp_path, text)
    assert_reported(path, found, 12, "at most one sms_code step (step 'code' is one)")


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        # rendered with {phone} / {left} only: a slot came out empty
        ('{sent: "已发到 {phone}，订单 {code}"}', "`messages.sent` of step 'code' names {code}"),
        ('{lost: "失效了 {phone}"}', "names {phone}; it may use no placeholder"),
    ],
)
def test_sms_messages_name_only_their_own_values(tmp_path, messages, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, PHONE_FLOW.replace("MESSAGES", messages))
    assert_reported(path, found, 11, message)


def test_a_wrong_code_message_may_say_the_tries_left(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """{left} is what the built-in text says; an override naming it was refused."""
    write(tmp_path, "bind", PHONE_FLOW.replace("MESSAGES", '{wrong: "不对，还有 {left} 次"}'))
    (flow,) = load_flows(tmp_path).flows
    assert flow.steps[1].messages["wrong"].render("zh", {"left": 2}) == "不对，还有 2 次"


# --- templates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("'订单 {order_no'", "a '{' that belongs to no placeholder"),
        ("'订单 order_no}'", "a '}' that belongs to no placeholder"),
        ("'{order_no | mask}'", "'{order_no | mask}' is not a placeholder"),
        ("'{order_no|Mask}'", "'{order_no|Mask}' is not a placeholder"),
        ("'{订单}'", "'{订单}' is not a placeholder"),
        ("'{0.__class__}'", "'{0.__class__}' is not a placeholder"),
        ("'{order_no.__init__.__globals__}'", "is not a placeholder"),
    ],
)
def test_braces_that_are_no_placeholder_are_refused(tmp_path, reply, message) -> None:  # type: ignore[no-untyped-def]
    """They reached users as typed: 「订单 {order_no」."""
    path, found = written_problems(tmp_path, edited(REPLY, f"  reply: {reply}"))
    assert_reported(path, found, 9, message)


def test_templates_are_never_formatted() -> None:
    value = "{phone|mask} %s {0.__class__}"  # a user's answer is not a template
    assert render("你写的是 {note}，%s %d", {"note": value}) == f"你写的是 {value}，%s %d"


# --- webhooks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook", "message"),
    [
        ("'http://shop host/refund'", "contains a space or a control character"),
        ('"http://shop/\\nrefund"', "contains a space or a control character"),
        ("'http://'", "it has no host"),
        ("'http:///refund'", "it has no host"),
        ("'${lower:-http://shop/}'", "write environment variables as ${NAME}"),
    ],
)
def test_webhooks_that_cannot_be_posted_to(tmp_path, webhook, message) -> None:  # type: ignore[no-untyped-def]
    path, found = written_problems(tmp_path, edited(REPLY, f"{REPLY}\n  webhook: {webhook}"))
    assert_reported(path, found, 10, message)


def test_a_missing_variable_is_one_problem_and_secrets_stay_hidden(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("WXBOT_NO_SUCH_HOOK", raising=False)
    path, found = written_problems(tmp_path, edited(REPLY, "  webhook: ${WXBOT_NO_SUCH_HOOK}"))
    assert found == [f"{path}:9: the webhook URL needs WXBOT_NO_SUCH_HOOK, which is not set"]
    monkeypatch.setenv("WXBOT_NO_SUCH_HOOK", "ftp://shop:s3cret@host/x?token=abc123")
    path, found = written_problems(tmp_path, edited(REPLY, "  webhook: ${WXBOT_NO_SUCH_HOOK}"))
    assert found == [
        f"{path}:9: the webhook 'ftp://host/x?…' is not an http(s) URL: "
        "it must start with http:// or https://"
    ]


def test_a_bad_port_is_a_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Accepted in silence before; each user reaching the action got 「暂时无法完成办理」."""
    write(tmp_path, "order", edited(REPLY, f"{REPLY}\n  webhook: http://a:pw@shop:99999/x?t=1"))
    warnings = load_flows(tmp_path).warnings
    assert any(":10: the webhook 'http://shop:99999/x?…' will fail" in w for w in warnings)


# --- the pattern slot: catastrophic backtracking -----------------------------------------

CATASTROPHIC = [
    r"^(a+)+$",
    r"^(\w+\s?)*$",  # words and spaces: looks legit, 30 letters and a '!' take seconds
    r"(x+x+)+y",
    r"^(\d{1,3})+$",
    r"^(a|aa)+$",
    r"^(\d\d|1\d)+$",
    r"^([a-z0-9]+[-.]?)+@example\.com$",
    r"^(?=(a+)+b)",
    r"^\w+\d+$",  # polynomial: n^2 per start, n^3 when searched in a message
    r"\w+\s*\w+x",
    r"^.+@.+$",
    "^" + "a?" * 20 + "b$",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_are_refused(tmp_path, pattern: str) -> None:
    path, found = written_problems(
        tmp_path,
        edited("type: digits\n    length: 6", f"type: pattern\n    pattern: '{pattern}'"),
    )
    assert any(p.startswith(f"{path}:6: ") and "time on some answers" in p for p in found), found


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[A-Z]{2}\d{6}$",
        r"^1[3-9]\d{9}$",
        r"^[\w.+-]+@[\w-]+\.[a-z]{2,}$",
        r"^(?:[a-z0-9-]+\.)+[a-z]{2,}$",
        r"^(?:\d{1,3}\.){3}\d{1,3}$",
        r"^[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*$",
        r"^(?=.*[A-Z])(?=.*\d).{8,20}$",
        r"^\w+\s+\w+$",
        r"^SN-?\d{8}$",
        r"^(ab|cd)+$",
    ],
)
def test_usual_patterns_load_and_stay_fast_on_hostile_text(pattern: str) -> None:
    slot = build("pattern", {"pattern": pattern})
    started = time.perf_counter()
    for unit in ("a", "1", "a.", "a-", "a ", "@", "a1-", "Aa1"):
        for tail in ("", "#", "!", "\n"):
            text = (unit * 2000)[:1999] + tail
            slot.parse(text)
            slot.find(text)
            slot.parse(text[:MAX_ANSWER])
            slot.find(text[:MAX_SEARCH])
    assert time.perf_counter() - started < 1.5


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("a{99999999999}", "bad regex"),  # OverflowError: the repetition number is too large
        ("a" * 1001, "at most 1,000"),
    ],
)
def test_bad_regexes_are_problems_not_tracebacks(pattern: str, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        compile_pattern(pattern)


def test_a_value_is_found_in_a_message_with_an_escaped_dollar() -> None:
    r"""Finding a value in passing stripped ^ and $ as characters: `\$` lost its `$`, and
    compiling `…\` raised re.error on every message the flow received."""
    slot = build("pattern", {"pattern": r"^US\d{2}\$$"})
    assert slot.find("the code is US12$ thanks") == "US12$"
    assert slot.parse("US12$") == "US12$"


def test_long_text_is_not_matched() -> None:
    slot = build("pattern", {"pattern": r"^[A-Z]{2}\d{6}$"})
    assert slot.parse("AB123456") == "AB123456"
    assert slot.parse("AB123456" + " " * 10 + "x" * 5000) is None  # longer than it can match
    assert slot.find("单号 AB123456 " + "好" * (MAX_SEARCH - 20)) == "AB123456"
    assert slot.find("单号 AB123456 " + "好" * MAX_SEARCH) is None


# --- a file edited while users are inside the flow ---------------------------------------

CONFIRMING = """\
name: order
triggers: [查订单]
steps:
  - slot: SLOT
    type: digits
    length: 6
    state: WAIT_ORDER
    confirm: true
    ask: 请提供订单号。
action:
  reply: "好"
"""


def test_a_slot_renamed_while_a_user_confirms_it(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The stored 「waiting for 是/否」 named the old slot: every message of that user was
    ValueError (「系统开小差」) until the session expired. Now the value is asked again."""
    write(tmp_path / "before", "order", CONFIRMING.replace("SLOT", "order_no"))
    bot = make_app(flows_dir=str(tmp_path / "before")).extensions["wxbot.bot"]
    assert "123456" in content(say(bot, "u1", "查订单 123456"))
    write(tmp_path / "after", "order", CONFIRMING.replace("SLOT", "order"))
    bot = make_app(flows_dir=str(tmp_path / "after")).extensions["wxbot.bot"]
    assert content(say(bot, "u1", "是")) == "请提供订单号。"
    assert "654321" in content(say(bot, "u1", "654321"))
    assert content(say(bot, "u1", "是")) == "好"
    assert state_of(bot, "u1")[0] == "WAIT_QUERY"
