"""Review of the daily counters: a process that gets no more messages still writes what it
counted within ``flush_seconds``, so the dashboard of any other process (or container) sees it,
and a worker killed later loses no more than that."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

from tests.console_helpers import ADMIN_TOKEN, login
from tests.helpers import say
from wxbot.stats import DailyCounters, day_of, read_counts

SHANGHAI = ZoneInfo("Asia/Shanghai")


def stored(engine, day: str) -> Counter[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        found = read_counts(conn, date.fromisoformat(day), date.fromisoformat(day))
    return found.get(day, Counter())


def wait_for(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_an_idle_process_writes_its_counts_without_another_message(app, clock) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    today = day_of(clock(), SHANGHAI)
    counters = DailyCounters(engine, clock, SHANGHAI, flush_every=200, flush_seconds=0.2)
    counters.add(["messages", "unknown"])  # the last message this process gets for a while
    assert wait_for(lambda: stored(engine, today) == Counter(messages=1, unknown=1))


def test_the_dashboard_of_another_process_sees_an_idle_process_counts(make_app) -> None:  # type: ignore[no-untyped-def]
    serving = make_app(admin_token=ADMIN_TOKEN)  # the worker WeChat's message reached
    console = make_app(admin_token=ADMIN_TOKEN)  # the worker the admin's browser reached
    bot = serving.extensions["wxbot.bot"]
    bot.stats.flush_seconds = 0.2  # (30 s in production)
    bot.stats.flush()  # nothing to write: the message below is not due for a write
    say(bot, "o_1", "火星上有网吗")
    client = console.test_client()
    login(client)

    def shown() -> bool:
        return 'id="messages-today">1<' in client.get("/admin/").text

    assert wait_for(shown)
