"""Wrong bearer tokens on /admin/api and on the console are throttled per client address, in
one budget with the login form, strictly under concurrent guesses; a right token costs a read."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event

from tests.console_helpers import (
    ADMIN_TOKEN,
    console_app_fixture,  # noqa: F401 - the app fixture
    login,
)
from tests.helpers import sql_sent
from wxbot.admin import throttle

RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}
API = "/admin/api/knowledge"
PAGE = "/admin/knowledge"
WINDOW = throttle.FAILURE_WINDOW
LIMIT = throttle.MAX_FAILURES


def assert_locked_out(resp: Any, api: bool) -> None:
    assert resp.status_code == 429
    assert WINDOW - 100 < int(resp.headers["Retry-After"]) <= WINDOW
    if api:
        body = resp.get_json()
        assert body["status"] == 429 and "too many wrong tokens" in body["error"]
    else:
        assert "令牌错误次数过多" in resp.text


@pytest.mark.parametrize("path", [API, PAGE])
def test_the_sixth_wrong_token_is_refused_and_so_is_the_right_one_until_the_window_ends(
    client, clock, path: str
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(LIMIT):
        assert client.get(path, headers=WRONG).status_code == 403
    assert_locked_out(client.get(path, headers=WRONG), api=path == API)
    assert_locked_out(client.get(path, headers=RIGHT), api=path == API)
    clock.advance(WINDOW - 10)
    assert client.get(path, headers=RIGHT).status_code == 429
    clock.advance(11)
    assert client.get(path, headers=RIGHT).status_code == 200
    assert client.get(path, headers=WRONG).status_code == 403  # a fresh window


def test_the_login_form_the_api_and_console_bearer_share_one_budget(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        assert login(client, token="guess").status_code == 401
    assert client.get(API, headers=WRONG).status_code == 403
    assert client.get(PAGE, headers=WRONG).status_code == 403
    assert login(client, token="guess").status_code == 401  # the fifth
    assert_locked_out(client.get(API, headers=RIGHT), api=True)
    assert_locked_out(client.get(PAGE, headers=RIGHT), api=False)
    assert login(client).status_code == 429  # bearer guesses locked the form too


def test_a_login_forgets_bearer_failures_and_a_right_bearer_token_writes_nothing(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(LIMIT - 1):
        client.get(API, headers=WRONG)
    assert client.get(API, headers=RIGHT).status_code == 200  # read only: still 4 counted
    assert client.get(API, headers=WRONG).status_code == 403
    assert client.get(API, headers=WRONG).status_code == 429
    client2 = client.application.test_client()
    for _ in range(LIMIT - 1):
        client2.get(API, headers=WRONG, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert login(client2, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 303
    for _ in range(LIMIT):  # the login forgot the four: five fresh guesses
        resp = client2.get(API, headers=WRONG, environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert resp.status_code == 403


def test_a_missing_or_malformed_header_is_not_a_guess(client) -> None:  # type: ignore[no-untyped-def]
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}) * 4:
        assert client.get(API, headers=headers).status_code == 401
    assert client.get(PAGE).status_code == 302  # to the login form
    assert client.get(PAGE, headers={"Authorization": "Basic abc"}).status_code == 403
    for _ in range(LIMIT):  # none of the above was counted
        assert client.get(API, headers=WRONG).status_code == 403
    assert client.get(API, headers=WRONG).status_code == 429


def test_failures_are_counted_per_address(client) -> None:  # type: ignore[no-untyped-def]
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for _ in range(LIMIT + 1):
        client.get(API, headers=WRONG, environ_base=attacker)
    assert client.get(API, headers=RIGHT).status_code == 200  # another address
    assert client.get(PAGE, headers=RIGHT).status_code == 200
    # ...whose successes did not reset the attacker's count
    assert client.get(API, headers=RIGHT, environ_base=attacker).status_code == 429


@pytest.mark.parametrize("path", [API, PAGE])
def test_concurrent_wrong_tokens_get_no_more_answers_than_the_limit(app, path: str) -> None:  # type: ignore[no-untyped-def]
    """Guesses sent at once must not all be answered because none was counted yet when each
    looked at the count."""
    attempts = 3 * LIMIT
    statuses: list[int] = []
    start = threading.Barrier(attempts)

    def guess(i: int) -> None:
        client = app.test_client()
        start.wait()
        headers = {"Authorization": f"Bearer guess-{i}"}
        statuses.append(client.get(path, headers=headers).status_code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == attempts
    assert statuses.count(403) == LIMIT and statuses.count(429) == attempts - LIMIT
    assert app.test_client().get(path, headers=RIGHT).status_code == 429


def test_a_right_token_waits_for_a_wrong_one_being_counted(app) -> None:  # type: ignore[no-untyped-def]
    """The race the design closes: a right token read while the guess that fills the budget
    is counted but not committed must see that count (on MySQL a plain read would not)."""
    client = app.test_client()
    for _ in range(LIMIT - 1):
        client.get(API, headers=WRONG)
    counted, release = threading.Event(), threading.Event()

    def hold(conn, clauseelement, *args: Any) -> None:  # type: ignore[no-untyped-def]
        # the last guess's transaction, after its count and before its commit
        if threading.current_thread().name == "guess" and "INSERT" in str(clauseelement):
            counted.set()
            assert release.wait(30)

    engine = app.extensions["wxbot.engine"]
    event.listen(engine, "after_execute", hold)
    answers: dict[str, int] = {}

    def call(name: str, headers: dict[str, str]) -> None:
        answers[name] = app.test_client().get(API, headers=headers).status_code

    wrong = threading.Thread(target=call, args=("wrong", WRONG), name="guess")
    right = threading.Thread(target=call, args=("right", RIGHT))
    try:
        wrong.start()
        assert counted.wait(30)
        right.start()
        right.join(0.5)
        assert right.is_alive()  # waiting for the count to be committed
    finally:
        release.set()
        wrong.join(30)
        right.join(30)
        event.remove(engine, "after_execute", hold)
    assert answers == {"wrong": 403, "right": 429}


@pytest.mark.parametrize("path", [API, PAGE])
def test_locked_out_the_right_and_a_wrong_token_cost_the_same_statements(client, path: str) -> None:  # type: ignore[no-untyped-def]
    """A locked-out client must not tell the right token by how fast its 429 comes back:
    counting a wrong guess took two statements more than reading the count."""
    for _ in range(LIMIT + 1):
        client.get(path, headers=WRONG)
    engine = client.application.extensions["wxbot.engine"]
    sent = {}
    for name, headers in (("right", RIGHT), ("wrong", WRONG)):
        with sql_sent(engine, this_thread=True) as statements:
            assert client.get(path, headers=headers).status_code == 429
        sent[name] = statements
    assert sent["right"] == sent["wrong"] and sent["right"]
