"""Two real `wxbot serve` processes on one database share a user's memory: each process's
LLM request carries the rounds the other process answered (SQLite and MySQL)."""

from __future__ import annotations

import itertools

import requests

from tests.fakellm import FakeLlm, fake_llm_fixture, rounds_in  # noqa: F401
from tests.processes import post_text, serve
from tests.test_multiprocess import database  # noqa: F401 - the fixture: an upgraded database

_ids = itertools.count(8_000_000_000)


def test_two_processes_share_one_users_memory(database, fake_llm: FakeLlm) -> None:  # noqa: F811
    env = {**fake_llm.env(), "WXBOT_HISTORY_ROUNDS": "3", "WXBOT_LLM_RATE": "0"}
    with serve(database, **env) as (a, b):
        http = requests.Session()
        said = []
        for i, url in enumerate([a, b, a, b, a]):
            question = f"第{i}句话，经过进程{'甲乙'[i % 2]}"
            said.append((question, post_text(http, url, "o_shared", question, next(_ids))))
            post_text(http, url, "o_other", f"别人的第{i}句", next(_ids))
    mine = [r["messages"] for r in fake_llm.requests if "经过进程" in r["messages"][-1]["content"]]
    assert len(mine) == 5
    for n, messages in enumerate(mine):
        assert (
            rounds_in(messages) == said[max(0, n - 3) : n]
        )  # the last 3 rounds, whichever process
        assert all("别人" not in m["content"] for m in messages)
    assert all(answer.startswith("LLM答：") for _, answer in said)
