"""Review of the console: the login throttle under concurrent attempts, stalled import jobs,
and numbers in URLs and forms that used to end in a 500."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf_of,
    login,
    post,
)
from tests.test_console_flows import HOOK_FLOW
from wxbot.console import auth, jobs

BIG = "9" * 25  # past any database integer


@pytest.fixture
def admin(client):  # type: ignore[no-untyped-def]
    login(client)
    return client


# -- the login throttle -----------------------------------------------------------------------


def test_concurrent_wrong_logins_get_no_more_guesses_than_the_limit(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An attacker who sends many attempts at once must not have them all checked against the
    token because none was counted yet when each looked at the count."""
    checked: list[str] = []
    real = auth.token_matches

    def slow_check(given: str) -> bool:  # a request in flight while the others arrive
        checked.append(given)
        time.sleep(0.3)
        return real(given)

    monkeypatch.setattr(auth, "token_matches", slow_check)
    attempts = 3 * auth.MAX_FAILURES
    forms: list[tuple[Any, dict[str, str]]] = []
    for i in range(attempts):
        client = app.test_client()
        page = client.get("/admin/login")
        forms.append((client, {"csrf_token": csrf_of(page.text), "token": f"guess-{i}"}))
    statuses: list[int] = []
    start = threading.Barrier(attempts)

    def attempt(client: Any, data: dict[str, str]) -> None:
        start.wait()
        statuses.append(client.post("/admin/login", data=data).status_code)

    threads = [threading.Thread(target=attempt, args=form) for form in forms]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == attempts
    assert len(checked) <= auth.MAX_FAILURES
    assert statuses.count(401) <= auth.MAX_FAILURES and statuses.count(429) >= attempts - 5


# -- import jobs ------------------------------------------------------------------------------


def test_a_stalled_import_can_be_discarded(app, admin, clock) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    orphan = jobs.create(engine, "lost.csv", "csv", b"q,a\n" * 1000, clock())  # its process died
    clock.advance(jobs.STALLED_AFTER + 1)
    page = admin.get(f"/admin/import/{orphan}").text
    assert "已中断" in page and f"/admin/import/{orphan}/discard" in page
    resp = admin.post(f"/admin/import/{orphan}/discard", data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 303
    assert admin.get(f"/admin/import/{orphan}").status_code == 404


def test_a_stalled_import_does_not_keep_its_upload_forever(app, admin, clock) -> None:  # type: ignore[no-untyped-def]
    engine = app.extensions["wxbot.engine"]
    orphan = jobs.create(engine, "lost.csv", "csv", b"q,a\n" * 1000, clock())  # its process died
    clock.advance(jobs.KEEP_SECONDS + 1)
    jobs.create(engine, "next.csv", "csv", b"q,a\n", clock())  # the next upload cleans up
    assert jobs.get(engine, orphan, clock()) is None


# -- numbers that used to 500 -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/admin/knowledge?page={BIG}",
        f"/admin/unanswered?page={BIG}",
        f"/admin/conversations?page={BIG}",
        f"/admin/llm?page={BIG}",
        f"/admin/learned?page={BIG}",
        "/admin/knowledge?page=%C2%B2",  # "²": str.isdigit() says yes, int() says no
        "/admin/llm?entry=%C2%B2",
        "/admin/unanswered?entry=%C2%B2",
        f"/admin/knowledge/{BIG}",
        f"/admin/unanswered/{BIG}/answer",
        f"/admin/unanswered/{BIG}/attach",
        f"/admin/llm/{BIG}/promote",
    ],
)
def test_odd_numbers_in_a_url_get_a_page_not_a_500(admin, path: str) -> None:  # type: ignore[no-untyped-def]
    assert admin.get(path).status_code in (200, 400, 404)


@pytest.mark.parametrize(
    ("path", "form"),
    [
        (f"/admin/knowledge/{BIG}/delete", {}),
        (f"/admin/synonyms/{BIG}/delete", {}),
        (f"/admin/learned/{BIG}/undo", {}),
        (f"/admin/unanswered/{BIG}/dismiss", {}),
        ("/admin/unanswered/1/dismiss", {"similar": "²"}),
        ("/admin/unanswered/1/attach", {"entry_id": BIG}),
        ("/admin/unanswered/1/attach", {"entry_id": "²"}),
        ("/admin/conversations/o_1/window", {"history_rounds": "²"}),
    ],
)
def test_odd_numbers_in_a_form_get_a_page_not_a_500(admin, path: str, form: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    assert post(admin, path, **form).status_code in (400, 404, 422)


# -- the flows page ---------------------------------------------------------------------------

BAD_PORT_FLOW = HOOK_FLOW.replace("127.0.0.1:9/", "127.0.0.1:99999/")


def test_the_flows_page_shows_a_webhook_with_a_bad_port(make_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A typo in the port (here, or in the ${VAR} it came from) must not 500 the page the
    operator opens to find it; the password and query string stay hidden."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hook.yaml").write_text(BAD_PORT_FLOW, encoding="utf-8")
    client = make_app(admin_token=ADMIN_TOKEN, flows_dir=str(flows)).test_client()
    login(client)
    resp = client.get("/admin/flows")
    assert resp.status_code == 200
    assert "http://127.0.0.1:99999/refund?…" in resp.text
    assert "s3cret" not in resp.text and "abc123" not in resp.text
