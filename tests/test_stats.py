"""Daily counters: summed in memory, written in batches, days in the configured time zone;
the engine counts each message's outcome once."""

from __future__ import annotations

from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.helpers import say, text
from wxbot.models import Base
from wxbot.qa import writer
from wxbot.stats import DailyCounters, day_of, read_counts

SHANGHAI = ZoneInfo("Asia/Shanghai")


def stored(engine, day: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return read_counts(conn, date.fromisoformat(day), date.fromisoformat(day)).get(
            day, Counter()
        )


def test_days_follow_the_time_zone() -> None:
    evening_utc = 1_800_000_000.0 - (1_800_000_000 % 86_400) + 17 * 3600  # 17:00 UTC
    assert day_of(evening_utc, ZoneInfo("UTC")) < day_of(evening_utc, SHANGHAI)  # 01:00 next day


def test_counts_are_batched_and_added_up(app, clock) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    today = day_of(clock(), SHANGHAI)
    counters = DailyCounters(engine, clock, SHANGHAI, flush_every=3, flush_seconds=3600)
    other = DailyCounters(engine, clock, SHANGHAI)  # a second process
    counters.add(["messages", "answered"])
    counters.maybe_flush()
    assert stored(engine, today) == Counter()  # not due yet
    counters.add(["messages"])
    counters.maybe_flush()
    assert stored(engine, today) == Counter(messages=2, answered=1)
    other.add(["messages"])
    other.flush()
    assert stored(engine, today) == Counter(messages=3, answered=1)


def test_a_failed_write_keeps_the_counts(app, clock, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wxbot.db import make_engine
    from wxbot.migrations.schema import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")  # no schema yet
    counters = DailyCounters(engine, clock, SHANGHAI)
    counters.add(["messages"])
    counters.flush()  # logged, not raised
    upgrade(engine)
    counters.flush()
    assert stored(engine, day_of(clock(), SHANGHAI)) == Counter(messages=1)
    engine.dispose()


def test_the_engine_counts_each_outcome_once(app, bot, clock) -> None:  # type: ignore[no-untyped-def]
    with app.extensions["wxbot.engine"].begin() as conn:
        writer.create_entry(conn, ["营业时间"], "9 点到 21 点。", now=0, source="api")
    message = text("o_1", "营业时间")
    bot.handle(message)
    bot.handle(message)  # WeChat's retry of the same message: not a second message
    say(bot, "o_1", "周末营业时间一样吗")  # a near miss: "did you mean"
    say(bot, "o_1", "1")  # picks the suggestion: answered
    say(bot, "o_2", "火星上有网吗")
    say(bot, "o_2", "人工")
    bot.stats.flush()
    assert stored(app.extensions["wxbot.engine"], day_of(clock(), SHANGHAI)) == Counter(
        messages=5, new_users=2, answered=2, suggested=1, unknown=1, handoffs=1
    )


def test_a_retried_transaction_counts_once_and_a_withheld_delivery_not_at_all(
    app, bot, clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    from wxbot.dialog import engine as engine_module
    from wxbot.messages.replies import Withheld

    real_lock = bot.statements.lock
    failures = [1]

    def flaky(conn, openid, dedup_key):  # type: ignore[no-untyped-def]
        if failures[0] > 0:  # as a busy or dropped database answers
            failures[0] -= 1
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return real_lock(conn, openid, dedup_key)

    monkeypatch.setattr(bot.statements, "lock", flaky)
    monkeypatch.setattr(engine_module, "WECHAT_GIVES_UP", 0.2)  # keep the test short
    bot.handle(text("o_1", "火星上有网吗", create_time=int(clock())))  # tried twice, answered
    failures[0] = 10**6
    reply = bot.handle(text("o_1", "还在吗", create_time=int(clock())))
    assert isinstance(reply, Withheld)  # WeChat delivers it again
    bot.stats.flush()
    assert stored(app.extensions["wxbot.engine"], day_of(clock(), SHANGHAI)) == Counter(
        messages=1, new_users=1, unknown=1
    )


def test_models_match_the_migration(app) -> None:  # type: ignore[no-untyped-def]
    ours = {"daily_counts", "console_sessions", "console_login_failures", "console_imports"}
    with app.extensions["wxbot.engine"].connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    def tables(diff) -> set[str]:  # type: ignore[no-untyped-def]
        found = set()
        for part in diff if isinstance(diff, list) else [diff]:
            for item in part:
                name = getattr(getattr(item, "table", None), "name", None) or getattr(
                    item, "name", None
                )
                if isinstance(item, str):
                    name = item
                if name in ours:
                    found.add(name)
        return found

    assert [d for d in diffs if tables(d)] == []


def _commit_then_lose_the_answer(engine, monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """The next COMMIT reaches the server and commits, then its answer is lost (as when the
    connection drops in between): the client sees a transient error and tries again."""
    dialect = engine.dialect
    real = dialect.do_commit
    lost: list[int] = []

    def do_commit(dbapi_connection):  # type: ignore[no-untyped-def]
        real(dbapi_connection)
        if not lost:
            lost.append(1)
            if dialect.name == "sqlite":
                raise dialect.loaded_dbapi.OperationalError("database is locked")
            raise dialect.loaded_dbapi.OperationalError(2013, "Lost connection to server")

    monkeypatch.setattr(dialect, "do_commit", do_commit)
    return lost


def test_a_commit_lost_in_transit_is_not_counted_twice(app, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    today = day_of(clock(), SHANGHAI)
    counters = DailyCounters(engine, clock, SHANGHAI)
    counters.add(["messages", "answered"])
    lost = _commit_then_lose_the_answer(engine, monkeypatch)
    counters.flush()
    assert lost == [1]  # the retry happened
    assert stored(engine, today) == Counter(messages=1, answered=1)
    counters.add(["messages"])
    counters.flush()  # the next batch is a batch of its own
    assert stored(engine, today) == Counter(messages=2, answered=1)


def test_a_batch_kept_after_failures_is_written_once_later(app, clock, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every try of a flush failed after its COMMIT had gone through: the batch is kept, and
    the next flush's write of it adds nothing more (before, its counts went back into the
    sums and were added again)."""
    import wxbot.stats.counters as counters_module

    engine = app.extensions["wxbot.engine"]
    today = day_of(clock(), SHANGHAI)
    counters = DailyCounters(engine, clock, SHANGHAI)
    counters.add(["messages"])
    _commit_then_lose_the_answer(engine, monkeypatch)
    monkeypatch.setattr(counters_module, "with_retries", lambda work: work())  # no retry
    counters.flush()  # logged and kept
    assert counters.waiting()
    counters.add(["answered"])
    counters.flush()
    assert not counters.waiting()
    assert stored(engine, today) == Counter(messages=1, answered=1)


def test_ids_of_old_batches_are_forgotten(app, clock) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from wxbot.stats.counters import BATCH_IDS_KEPT, batches

    engine = app.extensions["wxbot.engine"]
    counters = DailyCounters(engine, clock, SHANGHAI)
    counters.add(["messages"])
    counters.flush()
    clock.advance(BATCH_IDS_KEPT + 1)
    counters.add(["messages"])
    counters.flush()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(batches)).scalar_one() == 1
