"""/admin/login and /admin/logout."""

from __future__ import annotations

import hmac

from flask import Response, make_response, redirect, render_template, request
from werkzeug.exceptions import TooManyRequests

from wxbot.admin import throttle
from wxbot.console import auth
from wxbot.console.web import bp


def _form(status: int = 200, error: str = "") -> Response:
    """The login form with a fresh CSRF pair (the secret in a cookie, its HMAC in the form)."""
    secret = auth.new_login_secret()
    html = render_template(
        "console/login.html",
        login_token=auth.login_csrf(secret),
        next=auth.safe_next(request.values.get("next")),
        error=error,
    )
    response = make_response(html, status)
    auth.set_cookie(response, auth.LOGIN_COOKIE, secret, samesite="Strict")
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if request.method == "GET":
        if auth.session_access(request.cookies.get(auth.COOKIE, "")):  # already logged in
            return redirect(auth.safe_next(request.args.get("next")), code=303)
        return _form()
    secret = request.cookies.get(auth.LOGIN_COOKIE, "")
    given = request.form.get("csrf_token", "")
    if not secret or not hmac.compare_digest(given.encode(), auth.login_csrf(secret).encode()):
        return _form(400, "登录表单已失效，请再试一次。")
    wait = throttle.count_attempt()  # counted before the check: a failure stays counted
    if wait:
        minutes = (wait + 59) // 60
        raise TooManyRequests(f"登录失败次数过多，请 {minutes} 分钟后再试。", retry_after=wait)
    if not auth.token_matches(request.form.get("token", "")):
        return _form(401, "令牌不正确。")
    throttle.forget_failures()
    response = redirect(auth.safe_next(request.form.get("next")), code=303)
    auth.set_cookie(response, auth.COOKIE, auth.start_session())
    response.delete_cookie(auth.LOGIN_COOKIE, path=auth.COOKIE_PATH)
    return response


@bp.post("/logout")
def logout() -> Response:
    auth.end_session(request.cookies.get(auth.COOKIE, ""))
    response = redirect("/admin/login", code=303)
    response.delete_cookie(auth.COOKIE, path=auth.COOKIE_PATH)
    return response
