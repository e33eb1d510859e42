"""Readiness vs liveness across start-up and stop.

A process that started while its database was down (or before `wxbot init-db`) has no
knowledge index. `/healthz` used to answer 200 as soon as the database did, so a load
balancer sent it messages at once, and the first message built the whole index inside its
transaction, holding its user's lock (on SQLite everyone's): seconds at 100k entries, past
WeChat's 5 s. Now `/healthz` (readiness) loads it in the background and says 503 until it
is in memory; `/livez` (liveness) only says the process answers, so a slow start is not
mistaken for a dead process and restarted. A stopping process is not ready either.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import wxbot
from tests.test_slow_path import wait_for
from wxbot import create_app
from wxbot.migrations.schema import upgrade


@pytest.fixture
def started_before_the_schema(tmp_path: Path) -> Any:
    """An app that found no schema at start (like a database that was down): no index."""
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'late.sqlite3'}"})
    upgrade(app.extensions["wxbot.engine"])
    yield app
    app.extensions["wxbot.bot"].close(0)
    app.extensions["wxbot.engine"].dispose()


def test_healthz_loads_the_index_before_saying_ready(started_before_the_schema: Any) -> None:
    app = started_before_the_schema
    kb = app.extensions["wxbot.bot"].deps.kb
    assert kb.version < 0  # nothing loaded yet
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.json
    assert kb.version >= 0  # loaded by the readiness check, not by a user's first message


def test_healthz_is_not_ready_while_the_index_loads(
    started_before_the_schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = started_before_the_schema
    kb = app.extensions["wxbot.bot"].deps.kb
    release = threading.Event()
    load = kb.load_at_start
    monkeypatch.setattr(kb, "load_at_start", lambda: (release.wait(30), load()))  # 100k entries
    monkeypatch.setattr(wxbot, "INDEX_READY_WAIT", 0.2)
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 503, response.json
    assert "knowledge" in response.json["reason"]
    assert client.get("/livez").status_code == 200  # alive, only not ready
    release.set()
    wait_for(lambda: client.get("/healthz").status_code == 200, timeout=30)


def test_a_stopping_process_is_not_ready_but_alive(app: Any, client: Any) -> None:
    assert client.get("/healthz").status_code == 200
    app.extensions["wxbot.bot"].slow.begin_drain(20)  # SIGTERM
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["reason"] == "stopping"
    assert client.get("/livez").status_code == 200
