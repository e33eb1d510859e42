"""Flow files and answers from the same review as the restarts (SQLite and MySQL where a bot
is needed): a text step's answer over `max_length` is told the limit; `wxbot flows check`
refuses a pattern no answer can match and warns of a trigger listed twice; a trigger of
digits matches only a whole number."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.helpers import content, say, state_of
from tests.test_flow_files import GOOD, assert_reported, write, written_problems
from wxbot.cli import cli
from wxbot.flows import load_flows
from wxbot.flows import messages as flow_says
from wxbot.flows.triggers import TriggerMatcher
from wxbot.i18n import translate

NOTE_FLOW = """\
name: leave_note
triggers: [留言, leave a note]
attempts: {patient: 1, explicit: 2, urgent: 3, limit: 4}
steps:
  - slot: note
    type: text
    max_length: 10
    ask: {zh: 请留言。, en: "Your note?"}
action:
  reply: {zh: "已收到：{note}", en: "Got it: {note}"}
"""


@pytest.fixture
def note_bot(make_app, tmp_path: Path):  # type: ignore[no-untyped-def]
    write(tmp_path / "flows", "note", NOTE_FLOW)
    return make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]


# --- 3. a text answer over max_length says the limit -------------------------------------------


def test_a_text_over_max_length_is_told_the_limit(note_bot) -> None:  # type: ignore[no-untyped-def]
    say(note_bot, "u1", "留言")
    reply = content(say(note_bot, "u1", "一二三四五六七八九十零"))
    limit = translate(flow_says.TOO_LONG, "zh", most=10, length=11)
    assert reply == f"{limit}\n请留言。"
    assert "10" in limit and "11" in limit
    assert state_of(note_bot, "u1") == ("WAIT_leave_note.note", 1)
    assert content(say(note_bot, "u1", "一二三四五六七八九十")) == "已收到：一二三四五六七八九十"


def test_the_limit_in_english_and_with_the_example_band(note_bot) -> None:  # type: ignore[no-untyped-def]
    say(note_bot, "u1", "leave a note")
    say(note_bot, "u1", "this is far too long")
    reply = content(say(note_bot, "u1", "this is far too long again"))  # explicit band
    first = reply.splitlines()[0]
    assert first == translate(flow_says.TOO_LONG, "en", most=10, length=26)
    assert "10 characters" in first
    assert reply.splitlines()[1] == "Your note?"


# --- 4. flows check: a pattern that matches no answer; a trigger listed twice ---------------------


@pytest.mark.parametrize(
    "pattern", ["^$", "(?!)", r"^(?!)\d{6}$", r"^\d+[^\s\S]$", r"\d{3}^", r"(?!\d*)\d{6}"]
)
def test_a_pattern_no_answer_can_match_is_refused(tmp_path: Path, pattern: str) -> None:
    text = GOOD.format(name="order", trigger="查订单").replace(
        "    type: digits\n    length: 18\n", f"    type: pattern\n    pattern: '{pattern}'\n"
    )
    path, found = written_problems(tmp_path, text)
    assert_reported(path, found, 6, "can never match an answer")
    result = CliRunner().invoke(cli, ["flows", "check", str(tmp_path)])
    assert result.exit_code != 0
    assert f"error: {path}:6: step 'order_no': the regex" in result.output


@pytest.mark.parametrize(
    "pattern", [r"^\d{6}$", r"^(?!000)\d{3}$", r"(?m)^a\n^b$", r"^[A-Z]{2}\d{4}$", "^a$|^$"]
)
def test_patterns_that_can_match_stay_allowed(tmp_path: Path, pattern: str) -> None:
    text = GOOD.format(name="order", trigger="查订单").replace(
        "    type: digits\n    length: 18\n", f"    type: pattern\n    pattern: '{pattern}'\n"
    )
    write(tmp_path, "order", text)
    assert [f.name for f in load_flows(tmp_path).flows] == ["order"]


def test_a_trigger_listed_twice_is_a_warning(tmp_path: Path) -> None:
    text = GOOD.format(name="order", trigger="查订单, 订单查询, 查 订单！")
    path = write(tmp_path, "order", text)
    loaded = load_flows(tmp_path)
    assert [f.name for f in loaded.flows] == ["order"]
    (warning,) = [w for w in loaded.warnings if "repeats" in w]
    assert warning.startswith(f"{path}:2: the trigger '查 订单！' repeats '查订单'")
    result = CliRunner().invoke(cli, ["flows", "check", str(tmp_path)])
    assert result.exit_code == 0 and "warning: " in result.output and "repeats" in result.output
    strict = CliRunner().invoke(cli, ["flows", "check", str(tmp_path), "--strict"])
    assert strict.exit_code != 0


def test_a_keyword_listed_twice_is_a_warning(tmp_path: Path) -> None:
    text = GOOD.format(name="order", trigger="查订单").replace(
        "triggers: [查订单]\n", "triggers: [查订单]\nkeywords:\n  - 订单\n  - 订单\n"
    )
    path = write(tmp_path, "order", text)
    warnings = [w for w in load_flows(tmp_path).warnings if "repeats" in w]
    assert warnings == [
        f"{path}:5: the keyword '订单' repeats '订单' (line 4) of the same flow; "
        "remove one (was another phrase meant?)"
    ]


def test_the_shipped_flows_repeat_no_trigger() -> None:
    assert not [w for w in load_flows().warnings if "repeats" in w]


# --- 5. a trigger of digits matches a whole number only ----------------------------------------


def _matcher(tmp_path: Path, triggers: str, keywords: str = "[]") -> TriggerMatcher:
    text = GOOD.format(name="order", trigger=triggers).replace(
        "steps:", f"keywords: {keywords}\nsteps:"
    )
    write(tmp_path, "order", text)
    return TriggerMatcher(load_flows(tmp_path).flows)


@pytest.mark.parametrize(
    ("text", "starts"),
    [
        ("我2012年买的", False),
        ("12345", False),
        ("1234 号", False),
        ("３１２", False),  # full-width digits are digits too
        ("12", True),
        ("我要 12", True),
        ("选12号", True),
        ("１２", True),
    ],
)
def test_a_trigger_of_digits_matches_a_whole_number_only(
    tmp_path: Path, text: str, starts: bool
) -> None:
    matcher = _matcher(tmp_path, "'12'")
    assert (matcher.match(text) is not None) is starts


@pytest.mark.parametrize(("text", "starts"), [("12", True), ("12 号", True), ("123", False)])
def test_a_keyword_of_digits_starts_only_a_whole_number(
    tmp_path: Path, text: str, starts: bool
) -> None:
    matcher = _matcher(tmp_path, "查订单", keywords="['12']")
    assert (matcher.match(text) is not None) is starts
    assert (matcher.command_flow(text) is not None) is starts


@pytest.mark.parametrize(
    ("text", "starts"), [("查12号", True), ("我要查12", True), ("查123", False), ("查1", False)]
)
def test_a_trigger_ending_in_digits_matches_a_whole_number(
    tmp_path: Path, text: str, starts: bool
) -> None:
    matcher = _matcher(tmp_path, "查12")
    assert (matcher.match(text) is not None) is starts


def test_a_number_inside_a_year_does_not_start_the_flow(make_app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "flows", "order", GOOD.format(name="order", trigger="'12'"))
    bot = make_app(flows_dir=str(tmp_path / "flows")).extensions["wxbot.bot"]
    say(bot, "u1", "我2012年买的手机")
    assert state_of(bot, "u1") == ("WAIT_QUERY", 0)
    assert content(say(bot, "u1", "12")) == "请提供订单号。"
    assert state_of(bot, "u1") == ("WAIT_order.order_no", 0)
