"""MySQL locking: a user's lock serialises only that user. The knowledge version read in
the same statement must not lock the version row, or every message would queue behind
every other (and behind every knowledge write)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text as sql

from tests.helpers import say
from wxbot import create_app
from wxbot.db import transaction, upgrade
from wxbot.dialog import context as store
from wxbot.qa import store as kb_store


@pytest.fixture
def mysql_bot(mysql_database_url):  # type: ignore[no-untyped-def]
    app = create_app({"database_url": mysql_database_url})
    upgrade(app.extensions["wxbot.engine"])
    yield app.extensions["wxbot.bot"]
    app.extensions["wxbot.bot"].close()
    app.extensions["wxbot.engine"].dispose()


def test_lock_reads_knowledge_version_without_locking_it(mysql_bot):  # type: ignore[no-untyped-def]
    bot = mysql_bot
    say(bot, "o_a", "你好")
    say(bot, "o_b", "你好")
    with transaction(bot.engine) as holder:
        ctx, _ = store.lock_context(holder, "o_a", None, bot._lock_statement)
        assert ctx is not None and "kb_version" in ctx.extras
        # another user's message and a knowledge write both go through at once
        with transaction(bot.engine) as other:
            other.execute(sql("SET SESSION innodb_lock_wait_timeout = 1"))
            started = time.monotonic()
            ctx_b, _ = store.lock_context(other, "o_b", None, bot._lock_statement)
            kb_store.bump_version(other, 0.0)
            assert ctx_b is not None and time.monotonic() - started < 1


def test_same_user_waits_for_the_lock(mysql_bot):  # type: ignore[no-untyped-def]
    from sqlalchemy.exc import OperationalError

    bot = mysql_bot
    say(bot, "o_a", "你好")
    with transaction(bot.engine) as holder:
        store.lock_context(holder, "o_a", None, bot._lock_statement)
        with pytest.raises(OperationalError), transaction(bot.engine) as other:
            other.execute(sql("SET SESSION innodb_lock_wait_timeout = 1"))
            store.lock_context(other, "o_a", None, bot._lock_statement)
