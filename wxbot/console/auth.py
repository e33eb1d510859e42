"""Who may see the console: a login form checked against WXBOT_ADMIN_TOKEN, server-side
sessions, CSRF tokens on every form, throttled failed logins; or the API's bearer token.

The cookie holds a random session id; the database keeps only its sha256, the admin token's
fingerprint (changing WXBOT_ADMIN_TOKEN logs everyone out) and the expiry (idle and absolute),
so logging out really ends the session, in every container. The CSRF token of a session is an
HMAC of the cookie's secret value, so it needs no storage. Requests with the bearer token
carry no cookie, so they need no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flask import Response, current_app, g, request
from sqlalchemy import delete, insert, select, update
from werkzeug.exceptions import Forbidden, TooManyRequests

from wxbot.admin import throttle
from wxbot.admin.throttle import FAILURE_WINDOW, MAX_FAILURES, client_address  # noqa: F401 - re-exported
from wxbot.console.models import ConsoleSession
from wxbot.db import transaction, with_retries

COOKIE = "wxbot_console"
LOGIN_COOKIE = "wxbot_console_login"  # the login form's CSRF secret (no session exists yet)
COOKIE_PATH = "/admin"
IDLE_SECONDS = 2 * 3600
MAX_AGE_SECONDS = 12 * 3600
TOUCH_EVERY = 60  # seconds: how stale last_seen may get before a request refreshes it
# Wrong tokens are throttled per client address by wxbot.admin.throttle (MAX_FAILURES within
# FAILURE_WINDOW): the login form, the console's bearer access and the JSON API share one budget.

sessions = ConsoleSession.__table__


@dataclass(frozen=True)
class Access:
    via: str  # "session" | "bearer"
    csrf_token: str = ""  # "" for bearer requests


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hmac(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def _engine():  # type: ignore[no-untyped-def]
    return current_app.extensions["wxbot.engine"]


def _now() -> float:
    return current_app.extensions["wxbot.clock"]()


def admin_token() -> str | None:
    return current_app.extensions["wxbot.settings"].admin_token


def token_matches(given: str) -> bool:
    token = admin_token()
    return bool(token) and hmac.compare_digest(given.strip().encode(), token.encode())


# -- sessions --------------------------------------------------------------------------------


def start_session() -> str:
    """Store a new session; returns the cookie value."""
    secret = secrets.token_urlsafe(32)
    now = _now()

    def run() -> None:
        with transaction(_engine()) as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    id_hash=_sha256(secret),
                    token_hash=_sha256(admin_token() or ""),
                    client=client_address(),
                    created_at=now,
                    last_seen=now,
                    expires_at=now + IDLE_SECONDS,
                )
            )

    with_retries(run)
    return secret


def end_session(secret: str) -> None:
    def run() -> None:
        with transaction(_engine()) as conn:
            conn.execute(delete(sessions).where(sessions.c.id_hash == _sha256(secret)))

    with_retries(run)


def session_access(secret: str) -> Access | None:
    """The access a session cookie gives, or None (unknown, expired, or an older token)."""
    if not secret:
        return None
    now = _now()
    key = _sha256(secret)
    with _engine().connect() as conn:
        row = conn.execute(select(sessions).where(sessions.c.id_hash == key)).first()
    if row is None or row.expires_at <= now or now - row.created_at > MAX_AGE_SECONDS:
        return None
    if not hmac.compare_digest(row.token_hash, _sha256(admin_token() or "")):
        return None
    if now - row.last_seen >= TOUCH_EVERY:  # sliding idle expiry, written once a minute at most
        expires = min(now + IDLE_SECONDS, row.created_at + MAX_AGE_SECONDS)

        def touch() -> None:
            with transaction(_engine()) as conn:
                conn.execute(
                    update(sessions)
                    .where(sessions.c.id_hash == key)
                    .values(last_seen=now, expires_at=expires)
                )

        with_retries(touch)
    return Access("session", _hmac(secret, "csrf"))


def bearer_access() -> Access | None:
    """Access by ``Authorization: Bearer``: None when the header is absent; 403 when it is
    present but wrong (as the JSON API answers); 429 while the client has used up its wrong
    tokens (throttle.bearer_wait: shared with the login form and the API)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():  # never right: not a guess
        raise Forbidden("the bearer token is not the admin token")
    right = token_matches(given)
    wait = throttle.bearer_wait(right)
    if wait:
        minutes = (wait + 59) // 60
        raise TooManyRequests(f"令牌错误次数过多，请 {minutes} 分钟后再试。", retry_after=wait)
    if not right:
        raise Forbidden("the bearer token is not the admin token")
    return Access("bearer")


def csrf_ok(access: Access) -> bool:
    if access.via == "bearer":
        return True
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token", "")
    return hmac.compare_digest(given.encode(), access.csrf_token.encode())


def set_cookie(response: Response, name: str, value: str, samesite: str = "Lax") -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite=samesite,
        secure=request.is_secure,  # behind HTTPS (gunicorn trusts X-Forwarded-Proto from its proxy)
    )


def current_access() -> Access:
    return g.console_access


# -- the login form ---------------------------------------------------------------------------


def login_csrf(secret: str) -> str:
    return _hmac(secret, "login")


def new_login_secret() -> str:
    return secrets.token_urlsafe(24)


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path inside the console (no open redirect)."""
    default = "/admin/"
    if not target or any(ch in target for ch in "\\\r\n\t") or not target.isprintable():
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return default
    if target.startswith("//") or parts.path.startswith("/admin/login"):
        return default
    # a browser resolves dot segments, "%2e" spelled as well: /admin/%2e%2e/x is /x
    if any(unquote(seg) in (".", "..") for seg in parts.path.split("/")):
        return default
    return target
