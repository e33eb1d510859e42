"""The command line builds the knowledge index only for the commands that answer messages
(and `serve` builds the app for production: no Flask debug mode under gunicorn).

Every `wxbot` command builds the app. With the index loaded in it, `wxbot --help`, `kb
export` or `sessions cleanup` on a base of 100k entries each took about 6-9 s, most of it
building an index they never read. `serve` (in gunicorn's master, before the workers fork)
and in-process `chat` still load it before the first message.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

import wxbot
import wxbot.serving
from wxbot import create_app
from wxbot.cli import cli
from wxbot.migrations.schema import upgrade
from wxbot.qa.freshness import FreshIndex

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def builds(monkeypatch, tmp_path) -> Iterator[list[int]]:  # type: ignore[no-untyped-def]
    """A database with the starter knowledge, the CLI pointed at it, and a list that gets
    one item per full index build. The apps the commands build are closed afterwards (the
    command line leaves its bot to the process's exit: an in-process chat's counts would
    wait for pytest's)."""
    url = f"sqlite:///{tmp_path / 'wxbot.sqlite3'}"
    app = create_app({"database_url": url})
    try:
        upgrade(app.extensions["wxbot.engine"])
        result = app.test_cli_runner().invoke(
            cli, ["kb", "import", str(ROOT / "knowledge/faq.txt")]
        )
        assert result.exit_code == 0, result.output
    finally:
        app.extensions["wxbot.bot"].close()
        app.extensions["wxbot.engine"].dispose()
    monkeypatch.setenv("WXBOT_DATABASE_URL", url)
    calls: list[int] = []
    build = FreshIndex._build

    def counted(self: FreshIndex, snap: Any) -> Any:
        calls.append(len(snap.rows))
        return build(self, snap)

    monkeypatch.setattr(FreshIndex, "_build", counted)
    built: list[Flask] = []

    def recorded(*args: Any, **kwargs: Any) -> Flask:
        built.append(create_app(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(wxbot, "create_app", recorded)  # (the command line's, looked up per call)
    yield calls
    for cli_app in built:
        cli_app.extensions["wxbot.bot"].close()
        cli_app.extensions["wxbot.engine"].dispose()


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["kb", "--help"],
        ["sessions", "cleanup"],
        ["kb", "export", "-"],
        ["kb", "import", "--dry-run", str(ROOT / "knowledge/faq.txt")],
        ["chat", "--url", "http://127.0.0.1:9/wechat"],  # another server answers (none here)
    ],
)
def test_commands_that_answer_no_message_build_no_index(builds, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, args, input="")
    assert "Traceback" not in result.output
    assert builds == [], (args, result.output)


def test_serve_builds_the_index_before_the_workers_fork(builds, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    loaded: list[int] = []

    def fake_run(load_app: Any, *args: Any, **kw: Any) -> None:  # gunicorn's master
        app = load_app()
        loaded.append(app.extensions["wxbot.bot"].deps.kb.version)
        app.extensions["wxbot.bot"].close()

    monkeypatch.setattr(wxbot.serving, "run", fake_run)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    assert len(builds) == 1 and builds[0] > 100  # the starter knowledge's entries
    assert loaded and loaded[0] >= 0  # loaded when the app is handed to gunicorn


def test_chat_in_process_builds_the_index_before_the_first_message(builds, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import wxbot.wechat.chat as chat

    seen: list[int] = []
    post = chat.WeChatSimulator.post

    def counted(self: Any, target: Any, message: Any) -> Any:
        seen.append(len(builds))  # builds made before this message was sent
        return post(self, target, message)

    monkeypatch.setattr(chat.WeChatSimulator, "post", counted)
    result = CliRunner().invoke(cli, ["chat"], input="营业时间\n")
    assert result.exit_code == 0, result.output
    assert "营业时间为每天" in result.output
    assert seen and seen[0] == 1  # one build, before the message
    assert len(builds) == 1


@pytest.mark.parametrize("args", [["--help"], ["no-such-command"], []])
def test_listing_or_looking_up_commands_builds_no_app(monkeypatch, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    """FlaskGroup built the app to list commands or to look one up in app.cli: `wxbot
    --help` took a second and said the demo-credentials warning."""
    import wxbot

    built: list[int] = []
    monkeypatch.setattr(wxbot, "create_app", lambda *a, **kw: built.append(1))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code in (0, 2), result.output
    assert "init-db" in result.output or "No such command" in result.output
    assert built == []


def test_serve_under_gunicorn_turns_flasks_debug_mode_off(builds, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`wxbot --debug serve` or FLASK_DEBUG=1 left over from development: debug mode is for
    --dev; the production path says so and serves without it."""
    debug: list[bool] = []

    def fake_run(load_app: Any, *args: Any, **kw: Any) -> None:
        app = load_app()
        debug.append(app.debug)
        app.extensions["wxbot.bot"].close()

    monkeypatch.setattr(wxbot.serving, "run", fake_run)
    # Flask's --debug sets os.environ["FLASK_DEBUG"]: recorded as unset first, so it is unset
    # again after this test (it leaked into later `serve` tests, which then said so too)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    result = CliRunner().invoke(cli, ["--debug", "serve"])
    assert result.exit_code == 0, result.output
    assert debug == [False]
    assert "--debug / FLASK_DEBUG is for --dev" in result.output
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert debug == [False, False]
