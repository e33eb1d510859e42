"""Issue 13: WeChat's identical deliveries of one message fired at once at two processes.

A new user's first message and an existing user's message: every delivery gets the same
reply, the turn is stored once, and no process logs an error (a delivery that waited for the
user's lock must find the dedup record the winner committed, not fail on inserting it).
The race shows only sometimes, so each test fires several rounds.
"""

from __future__ import annotations

import itertools
import json
import threading

import requests
from sqlalchemy import create_engine, select

from tests.processes import reply_content, serve, signed_params, text_body
from tests.test_multiprocess import database  # noqa: F401 - the fixture
from wxbot.models import Context, SeenMessage

DELIVERIES = 3
ROUNDS = 6
_ids = itertools.count(8_100_000_000)


def fire_at_once(urls: list[str], openid: str, content: str, msg_id: int) -> list[str]:
    """DELIVERIES identical POSTs of one message, released together, spread over ``urls``."""
    body = text_body(openid, content, msg_id)
    sessions = [requests.Session() for _ in range(DELIVERIES)]
    for session, url in zip(sessions, itertools.cycle(urls)):  # open the connections first
        session.get(url.rsplit("/", 1)[0] + "/healthz", timeout=10)
    gate = threading.Barrier(DELIVERIES)
    replies: list[str] = [""] * DELIVERIES

    def deliver(n: int) -> None:
        url = urls[n % len(urls)]
        gate.wait()
        response = sessions[n].post(url, params=signed_params(), data=body, timeout=30)
        replies[n] = f"HTTP {response.status_code}" if not response.ok else response.text

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    return [reply_content(r) for r in replies]


def stored(db_url: str, openid: str) -> tuple[int, list[str], int]:
    """(context version, what the user said in the history, dedup records of the user)."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(Context.__table__).where(Context.openid == openid)).one()
        records = conn.execute(
            select(SeenMessage.dedup_key).where(SeenMessage.openid == openid)
        ).all()
    engine.dispose()
    said = [turn[1] for turn in json.loads(row.history) if turn[0] == "user"]
    return row.version, said, len(records)


def test_identical_deliveries_at_two_processes_are_answered_alike(database, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with serve(database, log_dir=tmp_path) as urls:
        for round_ in range(ROUNDS):
            newcomer = f"o_new_{round_}"
            first = f"新用户{round_}的第一个问题"
            replies = fire_at_once(urls, newcomer, first, next(_ids))
            assert replies[0] and replies.count(replies[0]) == DELIVERIES, replies
            assert stored(database, newcomer) == (1, [first], 1)

            second = f"新用户{round_}的第二个问题"
            replies = fire_at_once(urls, newcomer, second, next(_ids))
            assert replies[0] and replies.count(replies[0]) == DELIVERIES, replies
            assert stored(database, newcomer) == (2, [first, second], 2)
    logged = "".join(p.read_text(errors="replace") for p in tmp_path.glob("serve-*.log"))
    assert "ERROR" not in logged and "Traceback" not in logged, logged[-3000:]


def test_a_duplicate_dedup_insert_is_answered_from_the_record(bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Should the lock ever let two deliveries through, the loser's insert of the dedup record
    fails on the duplicate key: it answers from the winner's record, never with the apology."""
    from tests.helpers import content, text
    from wxbot.dialog import words
    from wxbot.dialog.locked import Locked

    msg = text("o_dup", "你好")
    first = content(bot.handle(msg))
    real_lock = bot.statements.lock

    def stale_lock(conn, openid, dedup_key):  # type: ignore[no-untyped-def]
        locked = real_lock(conn, openid, dedup_key)
        return Locked(locked.ctx, None, locked.stored_contexts)  # as if read before the wait

    monkeypatch.setattr(bot.statements, "lock", stale_lock)
    again = content(bot.handle(msg))
    assert again == first and again != words.APOLOGY
    assert stored(str(bot.engine.url.render_as_string(hide_password=False)), "o_dup")[0] == 1
