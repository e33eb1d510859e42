"""Console access: the login form, sessions, throttling, CSRF, the bearer token, redirects."""

from __future__ import annotations

import pytest

from tests.console_helpers import (
    ADMIN_TOKEN,
    console_app_fixture,  # noqa: F401 - the app fixture
    csrf,
    login,
    post,
)

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
NEW_FORMS = [  # round 2: synonyms, learned, LLM answers, similar questions, history window
    "/admin/synonyms", "/admin/synonyms/1", "/admin/synonyms/1/delete", "/admin/learned/1/undo",
    "/admin/llm/1/promote", "/admin/knowledge/1/questions", "/admin/knowledge/1/questions/remove",
    "/admin/conversations/o_x/window",
]  # fmt: skip


def test_disabled_without_an_admin_token(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app().test_client()
    for path in ("/admin/", "/admin/login", "/admin/knowledge"):
        resp = client.get(path)
        assert resp.status_code == 404 and "WXBOT_ADMIN_TOKEN" in resp.text


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/unanswered", "/admin/knowledge", "/admin/knowledge/1", "/admin/import",
     "/admin/conversations", "/admin/conversations/o_x", "/admin/flows", "/admin/synonyms",
     "/admin/knowledge/export", "/admin/knowledge/search.json?q=a", "/admin/import/abc",
     "/admin/learned", "/admin/llm", "/admin/llm/1/promote", "/admin/unanswered?sort=grouped",
     "/admin/unanswered/1/attach?group=1", "/admin/unanswered/1/answer?group=1"],
)  # fmt: skip
def test_every_page_needs_a_login(client, path: str) -> None:  # type: ignore[no-untyped-def]
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize(
    "path",
    ["/admin/logout", "/admin/knowledge/1", "/admin/knowledge/1/delete", "/admin/knowledge/new",
     "/admin/unanswered/1/answer", "/admin/unanswered/1/attach", "/admin/unanswered/1/dismiss",
     "/admin/import", "/admin/import/abc/commit", "/admin/conversations/o_x/clear",
     "/admin/conversations/o_x/forget", *NEW_FORMS],
)  # fmt: skip
def test_every_form_needs_a_login(client, path: str) -> None:  # type: ignore[no-untyped-def]
    assert client.post(path, data={"csrf_token": "x"}).status_code == 401


def test_login_sets_a_safe_cookie_and_logout_ends_the_session(client) -> None:  # type: ignore[no-untyped-def]
    resp = login(client, next_url="/admin/knowledge?q=a")
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/knowledge?q=a"
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("wxbot_console="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    stolen = client.get_cookie("wxbot_console", path="/admin").value
    again = client.get("/admin/login?next=/admin/import")  # logged in already: no form
    assert again.status_code == 303 and again.headers["Location"] == "/admin/import"
    assert client.get("/admin/knowledge").status_code == 200
    assert post(client, "/admin/logout").status_code == 303
    assert client.get("/admin/knowledge").status_code == 302
    client.set_cookie("wxbot_console", stolen, path="/admin")  # a copy of the old cookie
    assert client.get("/admin/knowledge").status_code == 302  # is dead: the session is gone


def test_the_cookie_is_secure_behind_https(client) -> None:  # type: ignore[no-untyped-def]
    resp = login(client, base_url="https://bot.example")
    cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("wxbot_console="))
    assert "Secure" in cookie


def test_a_wrong_token_is_refused_and_failures_are_throttled(client, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        resp = login(client, token="guess")
        assert resp.status_code == 401 and "令牌不正确" in resp.text
        assert not client.get_cookie("wxbot_console", path="/admin")
    resp = login(client)  # the right token, but too many failures from this address
    assert resp.status_code == 429 and "分钟后再试" in resp.text
    assert 800 < int(resp.headers["Retry-After"]) <= 900
    clock.advance(15 * 60 + 1)
    assert login(client).status_code == 303
    login(client, token="guess")  # a success forgot the earlier failures: one fresh failure
    assert login(client).status_code == 303


def test_failures_are_counted_per_address(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        login(client, token="guess", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert login(client, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 429
    assert login(client, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 303


def test_the_login_form_needs_its_csrf_token(client) -> None:  # type: ignore[no-untyped-def]
    resp = client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert resp.status_code == 400 and not client.get_cookie("wxbot_console", path="/admin")


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/admin/", "/\\evil.example", "\\\\evil.example",
     "javascript:alert(1)", "/admin\r\nLocation: https://evil.example", "http:/admin/",
     "/wechat", "/admin/login?next=//evil.example", "  //evil.example", "/%2F%2Fevil.example"],
)  # fmt: skip
def test_no_open_redirect_after_login(client, target: str) -> None:  # type: ignore[no-untyped-def]
    resp = login(client, next_url=target)
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/"


def test_sessions_expire_when_idle_and_with_a_new_admin_token(make_app, clock) -> None:  # type: ignore[no-untyped-def]
    app = make_app(admin_token=ADMIN_TOKEN)
    client = app.test_client()
    login(client)
    clock.advance(3600)
    assert client.get("/admin/").status_code == 200  # active within the idle limit: renewed
    clock.advance(3600)
    assert client.get("/admin/").status_code == 200
    clock.advance(2 * 3600 + 1)
    assert client.get("/admin/").status_code == 302  # idle for more than 2 hours
    login(client)
    rotated = make_app(admin_token="a-new-token").test_client()
    rotated.set_cookie("wxbot_console", client.get_cookie("wxbot_console", path="/admin").value,
                       path="/admin")  # fmt: skip
    assert rotated.get("/admin/").status_code == 302


def test_forms_need_the_csrf_token(client) -> None:  # type: ignore[no-untyped-def]
    login(client)
    resp = client.post("/admin/knowledge/new", data={"questions": "问", "answer": "答"})
    assert resp.status_code == 400 and "CSRF" in resp.text
    resp = client.post(
        "/admin/knowledge/new", data={"questions": "问", "answer": "答", "csrf_token": "forged"}
    )
    assert resp.status_code == 400
    assert "知识库是空的" in client.get("/admin/knowledge").text  # nothing was created
    token = csrf(client)
    resp = client.post(
        "/admin/knowledge/new", data={"questions": "问", "answer": "答", "csrf_token": token}
    )
    assert resp.status_code == 303


@pytest.mark.parametrize("path", NEW_FORMS)
def test_the_new_forms_need_the_csrf_token(client, path: str) -> None:  # type: ignore[no-untyped-def]
    login(client)
    before = client.get("/admin/synonyms").text.count('class="chip"')
    for token in ({}, {"csrf_token": "forged"}):
        resp = client.post(path, data={"words": "甲 乙", "question": "x", **token})
        assert resp.status_code == 400 and "CSRF" in resp.text
    assert client.get("/admin/synonyms").text.count('class="chip"') == before  # nothing made


def test_the_bearer_token_opens_pages_and_forms_without_a_cookie(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/admin/knowledge", headers=BEARER).status_code == 200
    resp = client.post(
        "/admin/knowledge/new", data={"questions": "问题", "answer": "答案"}, headers=BEARER
    )
    assert resp.status_code == 303  # no CSRF token needed: no cookie is involved
    wrong = {"Authorization": "Bearer nope"}
    assert client.get("/admin/knowledge", headers=wrong).status_code == 403
    # and the JSON API beside it is unchanged
    api = client.get("/admin/api/knowledge", headers=BEARER)
    assert api.status_code == 200 and api.get_json()["total"] == 1
    assert client.get("/admin/api/knowledge").get_json()["status"] == 401
    assert client.get("/admin/api/nothing-here", headers=BEARER).is_json


def test_pages_carry_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    login(client)
    resp = client.get("/admin/knowledge")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    missing = client.get("/admin/no-such-page")
    assert missing.status_code == 404 and "页面不存在" in missing.text and not missing.is_json
