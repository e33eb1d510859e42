"""The admin blueprint: bearer-token check, JSON errors, request helpers."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Container
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from wxbot.admin import throttle
from wxbot.admin.ops import Admin, AdminError
from wxbot.admin.ops.base import MAX_ID, MAX_PAGE, oversized_id

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")

MAX_PER_PAGE = 100
# The largest body a valid request has is under half of this (an entry of 50 questions of
# 500 characters and a 10,000-character answer, every character a \uXXXX\uXXXX escape);
# without a limit a careless client's 300 MB file was read and parsed whole (1.3 GB of memory)
# to be refused as too long.
MAX_BODY_BYTES = 1024 * 1024


ApiError = AdminError  # the name the API modules raise it by


def error(status: int, reason: str, **headers: str) -> Response:
    response = jsonify(error=reason, status=status)
    response.status_code = status
    response.headers.update(headers)
    return response


@bp.before_request
def _check_token() -> Response | None:
    request.max_content_length = MAX_BODY_BYTES  # 413 before a larger body is read
    token = current_app.extensions["wxbot.settings"].admin_token
    if not token:
        return error(404, "the admin API is disabled: set WXBOT_ADMIN_TOKEN to enable it")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return error(
            401,
            "missing bearer token: send 'Authorization: Bearer <WXBOT_ADMIN_TOKEN>'",
            **{"WWW-Authenticate": 'Bearer realm="wxbot admin"'},
        )
    right = hmac.compare_digest(given.strip().encode(), token.encode())
    wait = throttle.bearer_wait(right)  # a wrong token is counted; shared with the console
    if wait:
        reason = f"too many wrong tokens from this address: try again in {wait} seconds"
        return error(429, reason, **{"Retry-After": str(wait)})
    if not right:
        return error(403, "the bearer token is not the admin token")
    name = oversized_id(request.view_args)
    if name is not None:
        return error(404, f"no such {name.replace('_', ' ')}: {request.view_args[name]}")  # type: ignore[index]
    return None


@bp.errorhandler(AdminError)
def _api_error(exc: AdminError) -> Response:
    return error(exc.status, exc.reason)


def admin() -> Admin:
    return Admin.of(current_app)


ERROR_PAGES = "wxbot.error_pages"  # app.extensions: [(path prefix, render)], longest first


def add_error_page(app: Flask, prefix: str, render: Callable[[HTTPException], Response]) -> None:
    """Errors (unknown routes, wrong methods, aborts, 500s) of paths under ``prefix`` are
    rendered by ``render``: JSON for the API, HTML pages for the console."""
    pages = app.extensions.setdefault(ERROR_PAGES, [])
    if not pages:
        app.register_error_handler(HTTPException, _render_error)
    pages.append((prefix, render))
    pages.sort(key=lambda page: -len(page[0]))


def _render_error(exc: HTTPException) -> Response | HTTPException:
    for prefix, render in current_app.extensions[ERROR_PAGES]:
        if request.path.startswith(prefix):
            return render(exc)
    return exc


def register_error_pages(app: Flask) -> None:
    """JSON instead of HTML for errors under /admin/api/."""
    add_error_page(app, "/admin/api/", _json_error)


def _json_error(exc: HTTPException) -> Response:
    if exc.code == 500:  # Flask has logged the exception
        return error(500, "internal error; see the server log")
    if exc.code == 413:
        return error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return error(exc.code or 500, exc.description or exc.name)


def is_id(value: object) -> bool:
    """A whole number a database id can be (not a bool, not beyond the integer range)."""
    return isinstance(value, int) and not isinstance(value, bool) and -MAX_ID <= value <= MAX_ID


def json_body() -> dict[str, Any]:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # json.loads of "[[[[..." (not a ValueError: silent lets it through)
        raise ApiError(400, "the body is not usable JSON: nested too deeply") from None
    if data is None:
        raise ApiError(400, "the body must be JSON (Content-Type: application/json)")
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object")
    return data


def paging() -> tuple[int, int]:
    """(page, per_page) from the query string, validated."""
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 20))
    except ValueError:
        raise ApiError(422, "page and per_page must be whole numbers") from None
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        raise ApiError(
            422,
            f"page must be between 1 and {MAX_PAGE} and per_page between 1 and {MAX_PER_PAGE}",
        )
    return page, per_page


def if_match() -> Container[str] | None:
    """The versions an ``If-Match`` header accepts (strong comparison: a weak tag matches
    none), or None without one, or with ``*`` (the thing only has to exist): then the write
    is last-write-wins, as before ETags, so existing scripts work unchanged."""
    if "If-Match" not in request.headers or request.if_match.star_tag:
        return None
    return request.if_match


def tagged(response: Response, version: str, status: int = 200) -> Response:
    """``response`` with the ETag to send back in If-Match."""
    response.set_etag(version)
    response.status_code = status
    return response


def page_of(items: list[Any], total: int, page: int, per_page: int) -> Response:
    return jsonify(items=items, total=total, page=page, per_page=per_page)
