"""Review of settings and the `wxbot` command: values that were accepted but could only fail
later (timeouts of 0, URLs without a scheme, a typo in WXBOT_TIMEOUTS), and command-line
numbers out of range (a traceback, a silent default, a clean-up that never ends)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from wxbot.cli import cli, sessions_cleanup
from wxbot.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        # requests refuses a 0 timeout: every weather, music, SMS and webhook call failed
        ({"WXBOT_CONNECT_TIMEOUT": "0"}, "WXBOT_CONNECT_TIMEOUT must be a positive number"),
        ({"WXBOT_HTTP_TIMEOUT": "0"}, "WXBOT_HTTP_TIMEOUT must be a positive number"),
        ({"WXBOT_HTTP_TIMEOUT": "nan"}, "WXBOT_HTTP_TIMEOUT must be a positive number"),
        ({"WXBOT_REPLY_DEADLINE": "0"}, "WXBOT_REPLY_DEADLINE must be a positive number"),
        ({"WXBOT_TIMEOUTS": "sms=0"}, "WXBOT_TIMEOUTS (sms) must be a positive number"),
        ({"WXBOT_TIMEOUTS": "weather=-1"}, "WXBOT_TIMEOUTS (weather) must be a positive"),
        # a typo was silently ignored: the service kept WXBOT_HTTP_TIMEOUT
        ({"WXBOT_TIMEOUTS": "wether=8"}, "unknown service 'wether'; use one of: weather"),
        # 「;」 was read as part of a number and the message suggested WXBOT_TIMEOUTS=10
        ({"WXBOT_TIMEOUTS": "weather=8;music=6"}, "separate services with commas"),
        # no scheme: every code's SMS failed (MissingSchema) and users were told to resend
        (
            {"WXBOT_SMS_BACKEND": "webhook", "WXBOT_SMS_WEBHOOK_URL": "sms.internal/send"},
            "WXBOT_SMS_WEBHOOK_URL must be an http(s) URL",
        ),
        ({"WXBOT_WEATHER_URL": "api.open-meteo.com"}, "WXBOT_WEATHER_URL must be an http(s) URL"),
        ({"WXBOT_API_URL": "ftp://api.weixin.qq.com"}, "WXBOT_API_URL must be an http(s) URL"),
    ],
)
def test_values_that_could_only_fail_later_stop_start_up(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert needle in str(raised.value)


def test_good_values_are_still_accepted() -> None:
    settings = load_settings(
        {
            "WXBOT_TIMEOUTS": "weather=8, music=6,sms=10,webhook=5,wechat_api=3,llm=15",
            "WXBOT_CONNECT_TIMEOUT": "0.5",
            "WXBOT_REPLY_DEADLINE": "0.3",
            "WXBOT_SMS_BACKEND": "webhook",
            "WXBOT_SMS_WEBHOOK_URL": "http://127.0.0.1:9000/sms?key=1",
            "WXBOT_WEATHER_URL": "HTTPS://api.open-meteo.com",
        }
    )
    assert settings.timeouts["sms"] == 10.0 and settings.connect_timeout == 0.5
    assert load_settings({}).timeouts == {}


def test_a_bad_value_is_a_clear_error_of_the_command(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_CONNECT_TIMEOUT", "0")
    result = CliRunner().invoke(cli, ["init-db"])
    assert result.exit_code != 0
    assert "WXBOT_CONNECT_TIMEOUT must be a positive number" in result.output
    assert "Traceback" not in result.output


# --- wxbot serve -------------------------------------------------------------------------------


@pytest.fixture
def served(monkeypatch, tmp_path) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """What `wxbot serve` would have run gunicorn with (nothing is started)."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setenv("WXBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    monkeypatch.setattr(
        "wxbot.serving.run", lambda load_app, *args: calls.append(args), raising=True
    )
    return calls


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        # gunicorn's OverflowError traceback, after the app was built and "listening" printed
        (["--port", "70000"], "--port"),
        (["--port", "0"], "--port"),
        # 0 silently meant "one per core" / "4"; a negative number failed inside gunicorn
        (["--workers", "0"], "--workers"),
        (["--workers", "-2"], "--workers"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_serve_rejects_numbers_out_of_range(served, args: list[str], needle: str) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output and needle in result.output
    assert "listening" not in result.output
    assert served == []


def test_serve_passes_good_numbers_on(served) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(
        cli, ["serve", "--port", "8123", "--workers", "2", "--threads", "3"]
    )
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", 8123, 2, 3)]


# --- wxbot sessions cleanup --------------------------------------------------------------------


@pytest.mark.parametrize("batch", ["0", "-5"])
def test_cleanup_batch_below_one_is_refused(app, bot, monkeypatch, batch: str) -> None:  # type: ignore[no-untyped-def]
    """`--batch 0` never finished: each pass deleted 0 rows, and 0 < 0 is false, so the loop
    went on for ever at full CPU (a cron job that piles up)."""
    batches: list[int] = []
    monkeypatch.setattr(bot, "clean_up", lambda n: batches.append(n) or (0, 0))
    monkeypatch.setattr(bot, "forget_old_histories", lambda n: batches.append(n) or 0)
    result = app.test_cli_runner().invoke(sessions_cleanup, ["--batch", batch])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--batch'" in result.output
    assert batches == []


def test_a_printed_settings_shows_no_secret() -> None:
    """Settings end up in logs and tracebacks (a frame's locals); until 2026-11-24 only the
    LLM and embedding keys were kept out of repr(): the AppSecret, the callback token, the
    AES keys, the admin token and the database password were printed."""
    secrets = {
        "WXBOT_TOKEN": "tok-SECRET-1",
        "WXBOT_ENCODING_AES_KEY": "S" * 43,
        "WXBOT_PREVIOUS_AES_KEY": "P" * 43,
        "WXBOT_ADMIN_TOKEN": "adm-SECRET-2",
        "WXBOT_APPSECRET": "app-SECRET-3",
        "WXBOT_DATABASE_URL": "mysql+pymysql://bot:db-SECRET-4@127.0.0.1/wx",
        "WXBOT_LLM_API_KEY": "llm-SECRET-5",
    }
    settings = load_settings(secrets)
    assert settings.appsecret == "app-SECRET-3"  # all read...
    shown = repr(settings)
    assert "appid=" in shown  # ... and the rest still printed
    for value in secrets.values():
        assert value not in shown and "SECRET" not in shown and "SSSS" not in shown
