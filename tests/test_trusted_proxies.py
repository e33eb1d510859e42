"""Behind reverse proxies (WXBOT_TRUSTED_PROXIES): the admin lockout counts each client's own
address, not the proxy's, and an address a client writes into X-Forwarded-For is not trusted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.console_helpers import ADMIN_TOKEN, login
from wxbot.admin import throttle
from wxbot.config import ConfigError, load_settings

RIGHT = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}
API = "/admin/api/knowledge"
LIMIT = throttle.MAX_FAILURES
NGINX = {"REMOTE_ADDR": "10.0.0.2"}  # every request arrives from the proxy


def via_proxy(client_address: str, forged: str = "") -> dict[str, str]:
    """Headers as nginx sends them: the client's own X-Forwarded-For (forged or not) with the
    address nginx saw appended, and the scheme it was reached by."""
    chain = f"{forged}, {client_address}" if forged else client_address
    return {"X-Forwarded-For": chain, "X-Forwarded-Proto": "https"}


def get(client: Any, token: dict[str, str], address: str, forged: str = "") -> int:
    headers = {**token, **via_proxy(address, forged)}
    return int(client.get(API, headers=headers, environ_base=NGINX).status_code)


def test_behind_nginx_one_guessers_lockout_does_not_lock_out_the_other_admins(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token=ADMIN_TOKEN, trusted_proxies=1).test_client()
    for _ in range(LIMIT):
        assert get(client, WRONG, "203.0.113.9") == 403
    assert get(client, RIGHT, "203.0.113.9") == 429  # the guesser is locked out...
    assert get(client, RIGHT, "198.51.100.7") == 200  # ...the admin elsewhere is not
    login_headers = via_proxy("198.51.100.7")
    assert login(client, headers=login_headers, environ_base=NGINX).status_code == 303


def test_behind_nginx_a_forged_forwarded_address_does_not_buy_more_guesses(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token=ADMIN_TOKEN, trusted_proxies=1).test_client()
    for i in range(LIMIT):
        assert get(client, WRONG, "203.0.113.9", forged=f"192.0.2.{i}") == 403
    # a new made-up address on every guess: nginx's own entry is the one that counts
    assert get(client, WRONG, "203.0.113.9", forged="192.0.2.99") == 429
    assert get(client, RIGHT, "203.0.113.9", forged="198.51.100.7") == 429


def test_without_trusted_proxies_the_forwarded_header_is_ignored(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token=ADMIN_TOKEN).test_client()
    for i in range(LIMIT):  # a client straight on the internet writing its own header
        assert get(client, WRONG, f"192.0.2.{i}") == 403
    assert get(client, RIGHT, "198.51.100.7") == 429  # all came from 10.0.0.2


def test_the_session_cookie_is_secure_when_nginx_was_reached_over_https(make_app) -> None:  # type: ignore[no-untyped-def]
    client = make_app(admin_token=ADMIN_TOKEN, trusted_proxies=1).test_client()
    resp = login(client, headers=via_proxy("198.51.100.7"), environ_base=NGINX)
    assert resp.status_code == 303
    session = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("wxbot_console=")]
    assert session and "; Secure" in session[0]


def test_a_refused_wechat_callback_is_logged_with_the_clients_address(make_app, caplog) -> None:  # type: ignore[no-untyped-def]
    client = make_app(trusted_proxies=1).test_client()
    with caplog.at_level(logging.WARNING, logger="wxbot.wechat"):
        resp = client.post(
            "/wechat?signature=x&timestamp=1&nonce=n",
            data=b"<xml/>",
            headers=via_proxy("203.0.113.9"),
            environ_base=NGINX,
        )
    assert resp.status_code == 403
    assert "203.0.113.9" in caplog.text and "10.0.0.2" not in caplog.text


@pytest.mark.parametrize(
    ("raw", "complaint"), [("x", "is not a number"), ("-1", "negative"), ("40", "hops")]
)
def test_a_wrong_number_of_proxies_is_refused_at_start_up(raw: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load_settings({"WXBOT_TRUSTED_PROXIES": raw})
    assert load_settings({"WXBOT_TRUSTED_PROXIES": "2"}).trusted_proxies == 2
