"""Unanswered questions nobody asks any more go after WXBOT_UNANSWERED_DAYS (90; 0 keeps
them), by `wxbot sessions cleanup` and the clean-up one message in 500 runs: before, a flood
of distinct questions grew the table for ever. Both listing orders read an index (at 300k
rows the most-recent page sorted the whole table: 0.5 s). SQLite and MySQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, text

from tests.helpers import say
from wxbot.cli import cli
from wxbot.config import ConfigError, load_settings
from wxbot.db import is_mysql
from wxbot.qa import writer
from wxbot.qa.models import KbUnanswered

DAY = 86_400.0


def _asked(bot: Any) -> list[str]:
    with bot.engine.connect() as conn:
        rows = conn.execute(select(KbUnanswered.question).order_by(KbUnanswered.question))
        return [r.question for r in rows]


def test_questions_not_asked_within_the_retention_go(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(unanswered_days=30)
    bot = app.extensions["wxbot.bot"]
    say(bot, "u1", "火星上能开户吗")
    say(bot, "u2", "你们支持比特币吗")
    clock.advance(20 * DAY)
    say(bot, "u3", "你们支持比特币吗")  # asked again: its clock starts over
    say(bot, "u3", "周末可以上门服务吗")
    clock.advance(11 * DAY)
    assert bot.forget_stale_unanswered(batch=1) == 1  # in batches of one: all the same
    assert _asked(bot) == ["你们支持比特币吗", "周末可以上门服务吗"]
    clock.advance(20 * DAY)
    result = app.test_cli_runner().invoke(cli, ["sessions", "cleanup"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 unanswered questions" in result.output
    assert _asked(bot) == []


def test_zero_keeps_them_for_ever(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = make_app(unanswered_days=0).extensions["wxbot.bot"]
    say(bot, "u1", "火星上能开户吗")
    clock.advance(3650 * DAY)
    assert bot.forget_stale_unanswered() == 0
    assert _asked(bot) == ["火星上能开户吗"]


def test_the_clean_up_that_messages_run_takes_them_too(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]  # the default: 90 days
    say(bot, "u1", "火星上能开户吗")
    clock.advance(89 * DAY)
    bot.housekeeping.clean_up_a_batch()
    assert _asked(bot) == ["火星上能开户吗"]
    clock.advance(2 * DAY)
    bot.housekeeping.clean_up_a_batch()
    assert _asked(bot) == []


@pytest.mark.parametrize("value", ["-1", "36501"])
@pytest.mark.parametrize("name", ["WXBOT_UNANSWERED_DAYS", "WXBOT_MEMORY_DAYS"])
def test_retention_out_of_range_is_refused(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({name: value})
    assert name in str(raised.value)


@pytest.mark.parametrize("db_url", ["mysql"], indirect=True)  # the plan is MariaDB's
def test_both_listing_orders_read_an_index(make_app) -> None:  # type: ignore[no-untyped-def]
    bot = make_app().extensions["wxbot.bot"]
    assert is_mysql(bot.engine)
    with bot.engine.begin() as conn:  # enough rows that sorting them all would cost
        conn.execute(
            text(
                "INSERT INTO kb_unanswered (qkey, question, count, first_asked_at, last_asked_at)"
                " SELECT CONCAT('q', seq), CONCAT('问题', seq), seq % 7, 1, seq"
                " FROM seq_1_to_20000"
            )
        )
        conn.execute(text("ANALYZE TABLE kb_unanswered"))
    orders = (
        "count DESC, last_asked_at DESC, id DESC",  # most asked first
        "last_asked_at DESC, count DESC, id DESC",  # most recent first
    )
    with bot.engine.connect() as conn:
        for order in orders:
            plan = (
                conn.execute(text(f"EXPLAIN SELECT * FROM kb_unanswered ORDER BY {order} LIMIT 20"))
                .mappings()
                .one()
            )
            assert "filesort" not in (plan["Extra"] or ""), (order, plan)


def test_a_long_question_taught_as_kept_leaves_the_list(make_app) -> None:  # type: ignore[no-untyped-def]
    """Kept as its first 500 characters, and keyed by them: a question taught from what the
    list shows (its longest) takes it off the list, as for any question."""
    bot = make_app().extensions["wxbot.bot"]
    long_question = "我想问一下关于火星开户的事情" * 50  # 700 characters
    say(bot, "u1", long_question)
    (kept,) = _asked(bot)
    assert kept == long_question[:500]
    with bot.engine.begin() as conn:
        writer.create_entry(conn, [kept], "不能。", now=2.0, source="api")
    assert _asked(bot) == []
