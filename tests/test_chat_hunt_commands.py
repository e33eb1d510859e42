"""`wxbot chat` and the simulator as a new operator meets them: /commands with odd
arguments, piped files, a terminal that is not UTF-8, servers that are slow or not wxbot,
and the simulator called with the wrong arguments."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from flask import Flask

from tests.wechat_fakes import KEY, RecordingBot, edge_app, http_server, simulator
from wxbot.messages.replies import Text
from wxbot.wechat.chat import UsageError, chat, message_for, run_chat
from wxbot.wechat.simulator import WeChatSimulator

SIM = WeChatSimulator("t", "wxapp", clock=lambda: 1_800_000_000)


def chat_lines(lines: list[str], **kwargs: Any) -> tuple[int, list[str], RecordingBot]:
    bot = RecordingBot()
    app = edge_app(bot, encoding_aes_key=KEY)
    feed = iter(lines)
    out: list[str] = []
    failed = run_chat(
        simulator(app), app.test_client(), "o_hunt", lambda: next(feed, None), out.append, **kwargs
    )
    return failed, out, bot


# --- typed lines ---------------------------------------------------------------------------


def test_a_file_with_a_bom_sends_its_first_command_as_a_command() -> None:
    """A script saved by Notepad starts with U+FEFF: its "/location …" went out as text."""
    failed, out, bot = chat_lines(["\ufeff/location 39.9 116.4 北京\r\n", "\ufeff你好\r\n"])
    assert failed == 0, out
    assert [m.kind for m in bot.seen] == ["location", "text"]
    assert bot.seen[1].text == "你好"


@pytest.mark.parametrize("line", ["/QUIT", "/quit now", "/Exit"])
def test_quit_in_any_case_or_with_words_leaves_without_a_failure(line: str) -> None:
    failed, out, bot = chat_lines([line, "never sent"])
    assert failed == 0, out
    assert bot.seen == []


@pytest.mark.parametrize("line", ["/HELP", "/help location"])
def test_help_in_any_case_or_with_words_is_the_help(line: str) -> None:
    failed, out, _ = chat_lines([line])
    assert failed == 0
    assert "/location LAT LON" in out[0]


@pytest.mark.parametrize(
    "line",
    [
        "/location 91 116.4",
        "/location 39.9 200",
        "/location 116.4 39.9",  # longitude first, as some maps copy it
        "/location nan 1",
        "/location 1 inf",
        "/location 1e999 2",
    ],
)
def test_a_location_off_the_earth_is_a_usage_error_not_sent(line: str) -> None:
    """91 200 went out and was answered as a place; nan met the server's 400 (an [错误])."""
    with pytest.raises(UsageError, match="within"):
        message_for(SIM, line, "u")


@pytest.mark.parametrize(
    "line",
    ["/location 39.9,116.4 北京", "/location 39.9, 116.4 北京", "/location 39.9，116.4 北京"],
)
def test_a_location_as_maps_copy_it(line: str) -> None:
    msg = message_for(SIM, line, "u")
    assert (msg["Location_X"], msg["Location_Y"], msg["Label"]) == (39.9, 116.4, "北京")


@pytest.mark.parametrize(
    "line", ["/click A B", "/scan 1 2", "/view http://a http://b", "/subscribe 你好 世界"]
)
def test_extra_words_of_a_one_argument_command_are_refused_not_dropped(line: str) -> None:
    """/click A B sent the key A: the user never learnt that B was dropped."""
    with pytest.raises(UsageError, match="quote"):
        message_for(SIM, line, "u")


def test_quoted_arguments_with_spaces_still_work() -> None:
    assert message_for(SIM, '/click "A B"', "u")["EventKey"] == "A B"
    assert message_for(SIM, '/subscribe "你好 世界"', "u")["EventKey"] == "qrscene_你好 世界"


def test_a_link_title_of_several_words_is_not_cut_to_its_first() -> None:
    """/link 标题 有 空格 http://x sent the title 标题 and the URL 有."""
    msg = message_for(SIM, "/link 标题 有 空格 http://x.example/a", "u")
    assert (msg["Title"], msg["Url"]) == ("标题 有 空格", "http://x.example/a")


def test_text_that_starts_with_a_slash_can_be_sent() -> None:
    """WeChat's faces arrive as text like "/::)"; there was no way to send one."""
    assert message_for(SIM, "//::)", "u")["Content"] == "/::)"
    with pytest.raises(UsageError, match="//"):
        message_for(SIM, "/::)", "u")


# --- slow and odd servers ------------------------------------------------------------------


def test_a_reply_later_than_wechat_waits_is_flagged() -> None:
    ticks = iter([100.0, 106.5])
    failed, out, _ = chat_lines(["你好"], now=lambda: next(ticks))
    assert failed == 0
    assert out[0] == "bot> echo:你好"
    assert out[1].startswith("[注意] the reply took 6.5 s") and "5 s" in out[1]


def test_a_reply_in_time_has_no_note() -> None:
    ticks = iter([100.0, 101.0])
    _, out, _ = chat_lines(["你好"], now=lambda: next(ticks))
    assert out == ["bot> echo:你好"]


def test_a_server_that_does_not_answer_in_time_is_not_said_unreachable() -> None:
    def slow(_environ: Any, start_response: Any) -> list[bytes]:
        time.sleep(1.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"success"]

    sim = WeChatSimulator("t", "wxapp", timeout=0.3)
    feed = iter(["你好"])
    out: list[str] = []
    with http_server(slow) as url:  # type: ignore[arg-type]
        failed = run_chat(sim, url, "u", lambda: next(feed, None), out.append)
    assert failed == 1
    assert out == ["[错误] no reply within 0.3 s (WeChat waits 5 s)"]


def test_a_404_says_which_url_is_expected() -> None:
    app = edge_app(RecordingBot())
    app.extensions["wxbot.clock"] = time.time
    sim = simulator(app, "plain", path="/")
    feed = iter(["你好"])
    out: list[str] = []
    assert run_chat(sim, app.test_client(), "u", lambda: next(feed, None), out.append) == 1
    assert out[0].startswith("[错误] HTTP 404") and out[0].endswith("/wechat address?)")


def test_a_reply_without_a_charset_is_read_as_utf8() -> None:
    """requests reads text/xml without a charset (a proxy's) as ISO-8859-1: 你好 became
    mojibake, and a Chinese OpenID failed the addressing check."""
    sim = WeChatSimulator("t", "wxapp")

    def proxy(_environ: Any, start_response: Any) -> list[bytes]:
        xml = (
            "<xml><ToUserName><![CDATA[o_用户]]></ToUserName>"
            "<FromUserName><![CDATA[gh_wxbot_sim]]></FromUserName><CreateTime>1</CreateTime>"
            "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>"
        )
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [xml.encode("utf-8")]

    with http_server(proxy) as url:  # type: ignore[arg-type]
        assert sim.send(url, "你好", openid="o_用户") == Text("你好")


# --- the command ---------------------------------------------------------------------------


def test_a_url_without_http_is_refused_once_not_on_every_line(make_app) -> None:  # type: ignore[no-untyped-def]
    result = (
        make_app()
        .test_cli_runner()
        .invoke(chat, ["--url", "127.0.0.1:8000/wechat"], input="你好\n你好\n")
    )
    assert result.exit_code == 2, result.output
    assert "http://" in result.output and "InvalidSchema" not in result.output
    assert "[错误]" not in result.output


def test_a_gbk_terminal_shows_what_it_cannot_print_instead_of_a_traceback(make_app) -> None:  # type: ignore[no-untyped-def]
    """The welcome's ภาษาไทย ended the chat with a UnicodeEncodeError in a GBK terminal."""
    app = make_app(welcome="欢迎 · ภาษาไทย: language th")
    result = app.test_cli_runner(charset="gbk").invoke(chat, [], input="/subscribe\n你好\n")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    assert "bot> 欢迎 · ???????: language th" in result.output
    assert result.output.count("bot> ") >= 2


# --- the simulator as a library ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("t", "wx", "short"), {"mode": "safe"}, "43-character"),
        (("t", "wx", KEY + "="), {}, "43-character"),
        ((None, "wx"), {}, "token"),
        (("", "wx"), {}, "token"),
        (("t", None), {}, "appid"),
        (("t", "wx"), {"timeout": 0}, "timeout"),
        (("t", "wx"), {"timeout": math.nan}, "timeout"),
    ],
)
def test_a_simulator_built_wrong_says_what_is_wrong(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        WeChatSimulator(*args, **kwargs)


def test_wrong_targets_and_messages_are_said_plainly() -> None:
    sim = WeChatSimulator("t", "wxapp")
    with pytest.raises(ValueError, match="http://"):
        sim.send("127.0.0.1:8000/wechat", "你好")
    with pytest.raises(TypeError, match="test client"):
        sim.send(object(), "你好")
    with pytest.raises(TypeError, match=r"sim\.text"):
        sim.post("http://127.0.0.1:9/wechat", "你好")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        sim.text(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number"):
        sim.location("39.9", 116.4)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="number"):
        sim.location(True, 116.4)
    with pytest.raises(ValueError, match="lat"):
        sim.location(math.nan, 116.4)
    with pytest.raises(ValueError, match="lon"):
        sim.location(39.9, 181)


def test_the_flask_app_itself_is_a_target_too() -> None:
    """README passes `app.test_client()`; the app itself met "'Flask' has no attribute 'open'"."""
    app: Flask = edge_app(RecordingBot(), encoding_aes_key=KEY)
    assert simulator(app).send(app, "你好") == Text("echo:你好")


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/click", "/click KEY"),
        ("/scan", "/scan SCENE"),
        ("/view", "/view URL"),
        ("/link t", "/link TITLE URL"),
    ],
)
def test_a_known_command_without_its_argument_shows_its_usage(line: str, usage: str) -> None:
    """/click alone said "unknown or incomplete command '/click'"."""
    with pytest.raises(UsageError, match=f"^usage: {usage}"):
        message_for(SIM, line, "u")


def test_an_openid_pasted_with_spaces_around_it_is_chatted_as(make_app) -> None:  # type: ignore[no-untyped-def]
    """The server's parser strips the OpenID: every reply came back "addressed" to o_pasted
    and each line failed with "[错误] reply addressed 'gh_wxbot_sim' -> 'o_pasted'"."""
    result = make_app().test_cli_runner().invoke(chat, ["--openid", " o_pasted "], input="人工\n")
    assert result.exit_code == 0, result.output
    assert "as o_pasted." in result.output and "bot> [转人工客服]" in result.output
