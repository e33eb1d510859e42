"""`wxbot chat` and the simulator over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from tests.wechat_fakes import KEY, RecordingBot, edge_app, http_server, simulator
from wxbot.messages.replies import (
    Article,
    Image,
    Music,
    News,
    Silent,
    Text,
    TransferToHuman,
    Video,
    Voice,
)
from wxbot.wechat.chat import UsageError, chat, format_reply, message_for, run_chat
from wxbot.wechat.simulator import WeChatSimulator

SIM = WeChatSimulator("t", "wxapp", clock=lambda: 1_800_000_000)


def test_format_reply() -> None:
    assert format_reply(Text("你好\n世界")) == "你好\n世界"
    assert (
        format_reply(Music("晴天", "周杰伦", "http://m/1.mp3"))
        == "[音乐] 晴天 — 周杰伦\n  http://m/1.mp3"
    )
    news = News((Article("标题", "描述", "http://img", "http://url"),))
    assert format_reply(news) == "[图文] 标题\n  描述\n  http://url"
    assert format_reply(TransferToHuman()) == "[转人工客服]"
    assert format_reply(Silent()) == "[无回复]"
    assert format_reply(Image("m1")) == "[图片] m1"
    assert format_reply(Voice("m2")) == "[语音] m2"
    assert format_reply(Video("m3", "片")) == "[视频] 片 m3"


def test_commands_become_wechat_messages() -> None:
    assert message_for(SIM, "你好", "u")["Content"] == "你好"
    loc = message_for(SIM, "/location 39.9 116.4 北京 天安门", "u")
    assert (loc["MsgType"], loc["Location_X"], loc["Location_Y"], loc["Label"]) == (
        "location",
        39.9,
        116.4,
        "北京 天安门",
    )
    assert message_for(SIM, "/voice 天气 上海", "u")["Recognition"] == "天气 上海"
    assert message_for(SIM, "/image", "u")["MsgType"] == "image"
    sub = message_for(SIM, "/subscribe 42", "u")
    assert (sub["Event"], sub["EventKey"]) == ("subscribe", "qrscene_42")
    assert message_for(SIM, "/subscribe", "u")["EventKey"] == ""
    assert message_for(SIM, "/unsubscribe", "u")["Event"] == "unsubscribe"
    assert message_for(SIM, "/click MENU", "u")["EventKey"] == "MENU"
    for bad in ("/location", "/location a b", "/nonsense", "/click", '/voice "unbalanced'):
        if bad.startswith("/voice"):
            assert message_for(SIM, bad, "u")["MsgType"] == "voice"  # shlex failure tolerated
            continue
        with pytest.raises(UsageError):
            message_for(SIM, bad, "u")


def test_run_chat_loop_with_a_fake_bot() -> None:
    bot = RecordingBot(
        lambda m: TransferToHuman() if m.text == "人工" else Text(f"echo:{m.text}\n第二行")
    )
    app = edge_app(bot, encoding_aes_key=KEY)
    lines = iter(["你好", "", "/help", "/bogus", "人工", "/location 1 2", "/quit", "never sent"])
    out: list[str] = []
    run_chat(simulator(app), app.test_client(), "o_loop", lambda: next(lines, None), out.append)
    assert out[0] == "bot> echo:你好\nbot> 第二行"
    assert "/location LAT LON" in out[1]
    assert out[2].startswith("[用法]")
    assert out[3] == "bot> [转人工客服]"
    assert out[4] == "bot> echo:\nbot> 第二行"
    assert [m.openid for m in bot.seen] == ["o_loop"] * 3


def test_run_chat_reports_server_errors_and_keeps_going() -> None:
    app = edge_app(encoding_aes_key=KEY)
    wrong = WeChatSimulator(
        "wrong-token", "wx1234567890edge", KEY, "safe", clock=app.extensions["wxbot.clock"]
    )
    out: list[str] = []
    lines = iter(["a", "b"])
    run_chat(wrong, app.test_client(), "u", lambda: next(lines, None), out.append)
    assert out == ["[错误] HTTP 403: bad signature"] * 2
    out.clear()
    lines = iter(["x"])
    run_chat(wrong, "http://127.0.0.1:9/wechat", "u", lambda: next(lines, None), out.append)
    assert out[0].startswith("[错误] cannot reach the server")


def test_chat_command_in_process(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(token="chat-token", appid="wxchat00000000001", encoding_aes_key=KEY)
    result = app.test_cli_runner().invoke(
        chat, ["--openid", "o_cli"], input="/subscribe\n你好\n人工\n/unsubscribe\n"
    )
    assert result.exit_code == 0, result.output
    assert "safe mode, in-process" in result.output
    welcome = app.extensions["wxbot.settings"].welcome.split("\n")[0]
    assert f"bot> {welcome}" in result.output
    assert "bot> [转人工客服]" in result.output
    assert "bot> [无回复]" in result.output


def test_chat_command_against_a_running_server(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(token="chat-token", appid="wxchat00000000001", clock=time.time)
    with http_server(app) as url:
        result = app.test_cli_runner().invoke(
            chat, ["--url", url, "--openid", "o_http", "--mode", "plain"], input="人工\n"
        )
    assert result.exit_code == 0, result.output
    assert f"plain mode, {url}" in result.output
    assert "bot> [转人工客服]" in result.output


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_simulator_over_real_http(mode: str) -> None:
    bot = RecordingBot()
    app = edge_app(bot, encoding_aes_key=KEY)
    app.extensions["wxbot.clock"] = time.time
    sim = simulator(app, mode)
    with http_server(app) as url:
        assert sim.send(url, "你好") == Text("echo:你好")
        assert sim.verify_url(url, "echo-42") == "echo-42"


def test_chunked_upload_over_the_size_limit_is_refused_over_http() -> None:
    app = edge_app(RecordingBot())
    app.extensions["wxbot.clock"] = time.time
    sim = simulator(app, "plain")
    params, _ = sim.sign({})

    def chunks():  # type: ignore[no-untyped-def]
        yield b"<xml><Content>"
        for _ in range(100):
            yield b"x" * 1024  # 100 KiB, no Content-Length: Transfer-Encoding: chunked
        yield b"</Content></xml>"

    with http_server(app) as url:
        resp = requests.post(url, params=params, data=chunks(), timeout=10)
    assert resp.status_code == 413
