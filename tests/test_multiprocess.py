"""Two real `wxbot serve` processes sharing one database: the whole point of keeping the
context in the database. Messages of one user alternate between the processes, many users
type at once, and WeChat's retries reach both processes."""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, select

from tests.processes import post_text, serve
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
from wxbot.models import Context, SeenMessage

ADMIN = "o_admin_multiprocess"
_ids = itertools.count(7_000_000_000)


@pytest.fixture
def database(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    return db_url


def _context(db_url: str, openid: str):  # type: ignore[no-untyped-def]
    engine = create_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(Context.__table__).where(Context.openid == openid)).first()
    engine.dispose()
    return row


def test_teaching_flow_alternating_between_processes(database):  # type: ignore[no-untyped-def]
    with serve(database, WXBOT_ADMIN_OPENIDS=ADMIN) as (a, b):
        http = requests.Session()
        post_text(http, a, ADMIN, "学习", next(_ids))
        assert _context(database, ADMIN).state == "WAIT_LEARN"
        post_text(http, b, ADMIN, "多进程测试的暗号是什么", next(_ids))
        post_text(http, a, ADMIN, "暗号是芝麻开门", next(_ids))
        assert _context(database, ADMIN).state == "WAIT_QUERY"
        # taught through process a, answered by process b on its very next message
        assert "芝麻开门" in post_text(http, b, "o_someone", "多进程测试的暗号是什么", next(_ids))


def test_many_users_typing_at_once_lose_no_update(database):  # type: ignore[no-untyped-def]
    users, per_user = 50, 20
    with serve(database, WXBOT_HISTORY_ROUNDS=str(per_user + 5)) as urls:
        messages = [
            (f"o_user_{u:03d}", f"用户{u}的第{i}个问题", next(_ids), urls[(u + i) % 2])
            for i in range(per_user)
            for u in range(users)
        ]
        sessions = [requests.Session() for _ in range(16)]

        def send(job: tuple[int, tuple[str, str, int, str]]) -> str:
            n, (openid, text, msg_id, url) = job
            return post_text(sessions[n % len(sessions)], url, openid, text, msg_id)

        with ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(send, enumerate(messages)))
    assert all(replies), "every message got a reply"
    engine = create_engine(database)
    with engine.connect() as conn:
        rows = conn.execute(select(Context.__table__)).all()
    engine.dispose()
    assert len(rows) == users
    for row in rows:
        said = [turn[1] for turn in json.loads(row.history) if turn[0] == "user"]
        u = int(row.openid.rsplit("_", 1)[1])
        assert sorted(said) == sorted(f"用户{u}的第{i}个问题" for i in range(per_user))
        assert row.version == per_user  # one saved step per message: none lost, none doubled


def test_retry_reaching_both_processes_is_processed_once(database):  # type: ignore[no-untyped-def]
    with serve(database) as (a, b):
        http = requests.Session()
        post_text(http, a, "o_retry", "第一句", next(_ids))
        version = _context(database, "o_retry").version
        msg_id = next(_ids)
        with ThreadPoolExecutor(4) as pool:
            replies = list(
                pool.map(
                    lambda url: post_text(requests.Session(), url, "o_retry", "重试的话", msg_id),
                    [a, b, a, b],
                )
            )
    assert len(set(replies)) == 1 and replies[0]
    assert _context(database, "o_retry").version == version + 1
    engine = create_engine(database)
    with engine.connect() as conn:
        attempts = conn.execute(
            select(SeenMessage.attempts).where(SeenMessage.dedup_key.like(f"%{msg_id}%"))
        ).scalar_one()
    engine.dispose()
    assert attempts == 4
