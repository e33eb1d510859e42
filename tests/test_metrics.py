"""GET /metrics: Prometheus's text format, the families README documents, and, under
`wxbot serve` (gunicorn, several workers), every worker's counts in every scrape.

A scrape reaches one worker; without prometheus-client's multiprocess mode it would show
only that worker's counts, so each scrape would tell a different, partial story.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import post_text, serve
from wxbot.db import make_engine
from wxbot.migrations.schema import upgrade
from wxbot.wechat.simulator import WeChatSimulator

FAMILIES = {
    "wxbot_messages": "counter",
    "wxbot_message_seconds": "histogram",
    "wxbot_db_retries": "counter",
    "wxbot_deferred": "counter",
    "wxbot_kb_lookups": "counter",
    "wxbot_llm_refusals": "counter",
}
_ids = itertools.count(8_100_000_000)


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_the_format_and_the_families_before_and_after_a_message(app, client, clock) -> None:  # type: ignore[no-untyped-def]
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type == CONTENT_TYPE_LATEST  # text/plain; version=...
    text = resp.get_data(as_text=True)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert FAMILIES.items() <= families.items()  # there (at zero) before the first message
    before = scrape(text)

    settings = app.extensions["wxbot.settings"]
    WeChatSimulator.from_settings(settings, clock=clock).send(
        client, "你好", openid="o_metrics_user"
    )
    after = scrape(client.get("/metrics").get_data(as_text=True))
    replied = {"type": "text", "outcome": "replied"}
    assert value(after, "wxbot_messages_total", **replied) == (
        value(before, "wxbot_messages_total", **replied) + 1
    )
    assert value(after, "wxbot_message_seconds_count") == (
        value(before, "wxbot_message_seconds_count") + 1
    )
    lookups = sum(
        value(after, "wxbot_kb_lookups_total", result=r)
        - value(before, "wxbot_kb_lookups_total", result=r)
        for r in ("answered", "suggested", "unknown")
    )
    assert lookups == 1


@pytest.fixture
def database(db_url: str) -> Iterator[str]:
    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    yield db_url


def test_every_scrape_counts_every_workers_messages(database: str) -> None:
    """One `wxbot serve` with two gunicorn workers; messages and scrapes each on a new
    connection, so both workers answer some of each. Every scrape says the same total."""
    messages = 40
    with serve(database, count=1, args=("--workers", "2")) as (url,):
        base = url.rsplit("/wechat", 1)[0]
        for n in range(messages):
            with requests.Session() as http:  # a new connection: either worker may take it
                post_text(http, url, f"o_metrics_{n % 7}", f"第{n}个问题", next(_ids))
        totals = set()
        for _ in range(12):
            with requests.Session() as http:
                samples = scrape(http.get(base + "/metrics", timeout=10).text)
            totals.add(
                sum(
                    v
                    for (name, labels), v in samples.items()
                    if name == "wxbot_messages_total" and ("type", "text") in labels
                )
            )
            totals.add(value(samples, "wxbot_message_seconds_count"))
        assert totals == {messages}
