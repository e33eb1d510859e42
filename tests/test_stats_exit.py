"""Daily counts at a process's exit: a closed bot has written them all (its database may be
gone before the interpreter exits without a word said), and a count made after the close (slow
work finishing late) is still written by the exit hook, not lost. Run in a child process: the
exit hook is the interpreter's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
from wxbot.stats.counters import counts

ROOT = Path(__file__).resolve().parents[1]
FAILED = "daily counters failed"

CHILD = """
import json, logging, os, sys
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from tests.helpers import say
from wxbot import create_app

logging.basicConfig(level=logging.WARNING)
url, after_close, server_url = sys.argv[1], sys.argv[2], sys.argv[3]
app = create_app({"database_url": url})
bot = app.extensions["wxbot.bot"]
say(bot, "o_exit", "火星上有网吗")
bot.close()
if after_close == "count":  # as slow work finishing after the close counts its outcome
    bot.stats.add(["messages"])
elif after_close == "drop":  # the database goes before the interpreter exits
    app.extensions["wxbot.engine"].dispose()
    if url.startswith("sqlite"):
        os.remove(make_url(url).database)
    else:
        server = create_engine(server_url)
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE {make_url(url).database}"))
        server.dispose()
print(json.dumps({"closed": True}))
"""


def run_child(db_url: str, after_close: str) -> subprocess.CompletedProcess[str]:
    from tests.conftest import MYSQL_SERVER_URL

    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, db_url, after_close, MYSQL_SERVER_URL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.splitlines()[-1]) == {"closed": True}
    return child


def stored_messages(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            query = select(func.sum(counts.c.count)).where(counts.c.name == "messages")
            return int(conn.execute(query).scalar_one() or 0)
    finally:
        engine.dispose()


def test_a_closed_bot_leaves_nothing_for_the_exit_when_its_database_is_gone(db_url) -> None:  # type: ignore[no-untyped-def]
    child = run_child(db_url, "drop")
    assert FAILED not in child.stderr


def test_a_count_made_after_the_close_is_written_at_exit(db_url) -> None:  # type: ignore[no-untyped-def]
    child = run_child(db_url, "count")
    assert FAILED not in child.stderr
    assert stored_messages(db_url) == 2  # the message's, and the late one
