"""Driving the console with Flask's test client: log in through the form, read CSRF tokens."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

ADMIN_TOKEN = "console-admin-token"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: Any, token: str = ADMIN_TOKEN, next_url: str = "", **kw: Any) -> Any:
    """Post the login form as a browser would (its CSRF pair included); returns the response.
    Any session the client had is dropped first (a logged-in browser gets no form)."""
    client.delete_cookie("wxbot_console", path="/admin")
    page = client.get("/admin/login", **kw)
    data = {"csrf_token": csrf_of(page.text), "token": token, "next": next_url}
    return client.post("/admin/login", data=data, **kw)


def csrf(client: Any, path: str = "/admin/knowledge") -> str:
    """The session's CSRF token, read off a page."""
    return csrf_of(client.get(path).text)


def post(client: Any, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf(client), **data})


def wait_for_job(client: Any, job_path: str, until: tuple[str, ...]) -> dict[str, Any]:
    """Poll an import job's status (it runs in a background thread) until it is in ``until``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = client.get(job_path + "/status").get_json()
        if state["status"] in until:
            return state
        time.sleep(0.05)
    raise AssertionError(f"import job still {state['status']}")


@pytest.fixture(name="app")
def console_app_fixture(make_app: Any) -> Any:
    """The app with the console on (an admin token). Import ``console_app_fixture`` into a
    test module to use it."""
    return make_app(admin_token=ADMIN_TOKEN)


@pytest.fixture(name="admin")
def admin_fixture(client: Any) -> Any:
    """The test client, logged in. Import ``admin_fixture`` into a test module to use it."""
    login(client)
    return client
