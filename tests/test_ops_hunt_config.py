"""WXBOT_* values an operator gets wrong: each is one line at start-up naming the variable
and what to do, not a traceback at the first connection nor a silent default."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from wxbot.cli import cli
from wxbot.config import ConfigError, load_settings

MYSQL = "mysql+pymysql://wxbot:pw@127.0.0.1:3306"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        # accepted, then every outbound call raised OverflowError (no socket takes 1e308 s)
        ({"WXBOT_HTTP_TIMEOUT": "1e308"}, "WXBOT_HTTP_TIMEOUT=1e+308 is too long"),
        ({"WXBOT_CONNECT_TIMEOUT": "1e12"}, "WXBOT_CONNECT_TIMEOUT=1e+12 is too long"),
        ({"WXBOT_TIMEOUTS": "weather=1e300"}, "WXBOT_TIMEOUTS (weather)=1e+300 is too long"),
        # nan and inf passed the LLM's `<= 0` check: every LLM call failed
        ({"WXBOT_LLM_TIMEOUT": "nan"}, "WXBOT_LLM_TIMEOUT must be a positive number"),
        ({"WXBOT_LLM_TIMEOUT": "inf"}, "WXBOT_LLM_TIMEOUT must be a positive number"),
        ({"WXBOT_LLM_CONNECT_TIMEOUT": "nan"}, "WXBOT_LLM_CONNECT_TIMEOUT must be a positive"),
        ({"WXBOT_LLM_PRICE_INPUT": "nan"}, "WXBOT_LLM_PRICE_INPUT must be a price"),
        ({"WXBOT_LLM_PRICE_OUTPUT": "inf"}, "WXBOT_LLM_PRICE_OUTPUT must be a price"),
        # WeChat hangs up after 5 s: the user saw 「该公众号暂时无法提供服务」
        ({"WXBOT_REPLY_DEADLINE": "10"}, "WXBOT_REPLY_DEADLINE=10 is longer than WeChat waits"),
        # `WXBOT_DATABASE_URL=${DB_URL}` with DB_URL unset: a SQLite file per container
        ({"WXBOT_DATABASE_URL": ""}, "WXBOT_DATABASE_URL is set but empty"),
        ({"WXBOT_DATABASE_URL": "  "}, "WXBOT_DATABASE_URL is set but empty"),
        # a typo of a setting was ignored: SQLite instead of MySQL, plaintext instead of AES
        (
            {"WXBOT_DATABSE_URL": f"{MYSQL}/wxbot"},
            "WXBOT_DATABSE_URL is not a wxbot setting: did you mean WXBOT_DATABASE_URL?",
        ),
        (
            {"WXBOT_ENCODINGAESKEY": "a" * 43},
            "WXBOT_ENCODINGAESKEY is not a wxbot setting: did you mean WXBOT_ENCODING_AES_KEY?",
        ),
        ({"WXBOT_ADMIN_OPENID": "o1"}, "did you mean WXBOT_ADMIN_OPENIDS?"),
        # accepted, then every embedding call failed (InvalidSchema), logged each minute
        ({"WXBOT_EMBEDDING_URL": "localhost:8001/v1"}, "WXBOT_EMBEDDING_URL must be `local`"),
        # mariadb+pymysql:// passed init-db and /healthz; every message failed (SQL syntax)
        (
            {"WXBOT_DATABASE_URL": "mariadb+pymysql://wxbot:pw@127.0.0.1/wxbot"},
            "write 'mariadb+pymysql' as 'mysql+pymysql'",
        ),
    ],
)
def test_wrong_values_stop_start_up_in_one_line(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert needle in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_password_with_an_unescaped_at_sign_is_not_shown() -> None:
    """`p@ss`: SQLAlchemy read the password "p" and the host "ss@127.0.0.1", and every
    error line showed that host: the password's tail, in the logs."""
    with pytest.raises(ConfigError) as raised:
        load_settings({"WXBOT_DATABASE_URL": "mysql+pymysql://wxbot:p@Tail9@127.0.0.1/wxbot"})
    assert "write @ as %40" in str(raised.value)
    assert "Tail9" not in str(raised.value)


def test_names_that_are_no_typo_stay_allowed() -> None:
    """Flow files read any ${VAR}; the test suite's own variables are WXBOT_ too."""
    settings = load_settings(
        {
            "WXBOT_RECHARGE_WEBHOOK": "http://127.0.0.1:9000/recharge",
            "WXBOT_TEST_MYSQL_URL": f"{MYSQL}/test",
            "WXBOT_REPLY_DEADLINE": "5",
            "WXBOT_LLM_TIMEOUT": "3600",
            "WXBOT_EMBEDDING_URL": "Local",
            "WXBOT_DATABASE_URL": f"{MYSQL}/wxbot?charset=utf8mb4&ssl_ca=/etc/ca.pem&read_timeout=30",
        }
    )
    assert settings.reply_deadline == 5 and settings.llm_timeout == 3600


def test_an_empty_variable_is_said_not_silently_defaulted(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="wxbot.config"):
        settings = load_settings({"WXBOT_SESSION_TTL": "", "WXBOT_EMBEDDING_URL": ""})
    assert settings.session_ttl == 600
    lines = [r.getMessage() for r in caplog.records]
    assert any("WXBOT_SESSION_TTL is set but empty: using its default" in line for line in lines)
    # scripts/run.sh documents WXBOT_EMBEDDING_URL= as "meaning off": nothing to warn about
    assert not any("WXBOT_EMBEDDING_URL" in line for line in lines)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        # AttributeError: 'NoneType' object has no attribute 'replace' (inside PyMySQL)
        (f"{MYSQL}/", "WXBOT_DATABASE_URL names no database"),
        (MYSQL, "WXBOT_DATABASE_URL names no database"),
        # TypeError: Connection.__init__() got an unexpected keyword argument 'bogus'
        (f"{MYSQL}/wxbot?chraset=utf8mb4", "driver has no option 'chraset'"),
        # ValueError: invalid literal for int() with base 10: 'abc'
        (f"{MYSQL}/wxbot?connect_timeout=abc", "an option after '?' has a value the driver"),
        ("sqlite:////tmp/wxbot-ops.db?timeout=abc", "an option after '?' has a value the driver"),
    ],
)
def test_a_database_url_the_driver_cannot_use_is_one_line(
    monkeypatch, url: str, needle: str
) -> None:  # type: ignore[no-untyped-def]
    """Each was a traceback from every command (and `wxbot serve`) at the first connection."""
    monkeypatch.setenv("WXBOT_DATABASE_URL", url)
    for command in (["init-db"], ["sessions", "cleanup"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, result.output
        assert "configuration error: " in result.output and needle in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "pw" not in result.output.replace("password", "")
