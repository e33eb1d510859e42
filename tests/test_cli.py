"""The `wxbot` commands, driven through Flask's CLI runner."""

from __future__ import annotations

import logging

from click.testing import CliRunner

from tests.helpers import say
from wxbot.cli import cli, init_db, sessions_cleanup
from wxbot.config import ConfigError, load_settings


def test_init_db_is_idempotent(app):  # type: ignore[no-untyped-def]
    runner = app.test_cli_runner()
    for _ in range(2):
        result = runner.invoke(init_db)
        assert result.exit_code == 0, result.output
        assert "database ready" in result.output


def test_sessions_cleanup_reports_counts(app, bot, clock):  # type: ignore[no-untyped-def]
    say(bot, "u1", "你好")
    say(bot, "u2", "你好")
    clock.advance(700)
    result = app.test_cli_runner().invoke(sessions_cleanup)
    assert result.exit_code == 0, result.output
    assert "deleted 2 expired contexts" in result.output


def test_bad_configuration_is_a_clear_error_not_a_traceback(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("WXBOT_ENCODING_AES_KEY", "too-short")
    result = CliRunner().invoke(cli, ["init-db"])
    assert result.exit_code != 0
    assert "WXBOT_ENCODING_AES_KEY" in result.output
    assert "Traceback" not in result.output


def test_settings_validation_messages() -> None:
    for env, needle in [
        ({"WXBOT_ENCODING_AES_KEY": "x" * 42}, "43-character"),
        ({"WXBOT_SESSION_TTL": "ten"}, "not a number"),
        ({"WXBOT_DATABASE_URL": "not a url"}, "SQLAlchemy URL"),
        ({"WXBOT_TEACH_POLICY": "nobody"}, "admins' or 'everyone"),
        ({"WXBOT_PREVIOUS_AES_KEY": "a" * 43}, "WXBOT_ENCODING_AES_KEY is not"),
        ({"WXBOT_MEMORY_DAYS": "-1"}, "WXBOT_MEMORY_DAYS='-1' must not be negative"),
    ]:
        try:
            load_settings(env)
        except ConfigError as exc:
            assert needle in str(exc)
        else:  # pragma: no cover
            raise AssertionError(f"{env} was accepted")


def test_settings_from_environment() -> None:
    settings = load_settings(
        {"WXBOT_ADMIN_OPENIDS": "a, b,,c", "WXBOT_SESSION_TTL": "60", "WXBOT_TOKEN": "t"}
    )
    assert settings.admin_openids == frozenset({"a", "b", "c"})
    assert settings.session_ttl == 60 and settings.token == "t"


def test_init_db_logs_the_migrations_not_alembics_preamble(tmp_path, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    """Each migration run is logged; Alembic's per-connection "Context impl SQLiteImpl." and
    "Will assume non-transactional DDL." (wrong here: SQLite's upgrade is one transaction)
    are not, on the first run or the next."""
    monkeypatch.setenv("WXBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    caplog.set_level(logging.INFO)
    for _ in range(2):
        result = CliRunner().invoke(cli, ["init-db"])
        assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert any(m.startswith("Running upgrade 0015_seen_status_index") for m in said)
    assert not [m for m in said if m.startswith(("Context impl", "Will assume"))]
