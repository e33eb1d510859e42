"""The console blueprint: the access check before every page, security headers, and what
every template may use (CSRF token, time formatting, Chinese labels, paging)."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from wxbot.admin.ops import Admin, AdminError
from wxbot.admin.ops.base import MAX_ID, MAX_PAGE, oversized_id
from wxbot.console import auth, labels
from wxbot.console.models import MAX_UPLOAD_BYTES
from wxbot.i18n import LANGUAGES
from wxbot.qa import unanswered as unanswered_store
from wxbot.stats import zone

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OPEN_ENDPOINTS = {"console.static", "console.login"}
MAX_FORM_BYTES = 1024 * 1024  # an answer is at most 10,000 characters
PER_PAGE = 20
LINE_BREAK = re.compile(r"\r\n|\r|\n")
# No inline script or style anywhere: an injected tag could not run even if escaping failed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def admin() -> Admin:
    return Admin.of(current_app)


@bp.before_request
def _guard() -> Response | None:
    if not auth.admin_token():
        abort(404, "管理后台未启用：请设置 WXBOT_ADMIN_TOKEN。")
    # before anything reads the body (the CSRF check does): uploads may be large, forms not
    upload = request.endpoint == "console.upload"
    request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024 if upload else MAX_FORM_BYTES
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    access = auth.bearer_access() or auth.session_access(request.cookies.get(auth.COOKIE, ""))
    if access is None:
        if request.method in ("GET", "HEAD"):
            target = request.full_path.rstrip("?")
            return redirect(url_for("console.login", next=target))
        abort(401, "登录已过期，请重新登录。")
    if request.method not in ("GET", "HEAD") and not auth.csrf_ok(access):
        abort(400, "表单已失效（CSRF 校验失败），请刷新页面后重试。")
    g.console_access = access
    if oversized_id(request.view_args) is not None:
        abort(404, "没有这一项。")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(AdminError)
def _admin_error(exc: AdminError) -> tuple[str, int]:
    return error_page(exc.status, labels.reason(exc.reason))


def error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("console/error.html", status=status, message=message), status


def render_http_error(exc: HTTPException) -> Response:
    """Errors of console paths (unknown pages, wrong methods, failures) as a page."""
    status = exc.code or 500
    message = labels.HTTP_ERRORS.get(status, "请求无法完成。")
    if status in (400, 401, 404, 413, 429) and exc.description and _is_ours(exc):
        message = exc.description
    html, status = error_page(status, message)
    response = current_app.make_response((html, status))
    retry_after = getattr(exc, "retry_after", None)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return _headers(response)


def _is_ours(exc: HTTPException) -> bool:
    """Our own aborts carry Chinese descriptions; werkzeug's defaults are English."""
    return any("\u4e00" <= ch <= "\u9fff" for ch in exc.description or "")


def as_int(raw: str) -> int | None:
    """A number typed in a URL or a form: ASCII digits only (str.isdigit() also says yes to
    "²", which int() refuses) and no larger than a database id; otherwise None. A number
    longer than any id is refused before int() sees it: int() of over 4,300 digits raises
    ValueError (a 500)."""
    digits = raw.lstrip("0") or "0"
    if not (raw.isascii() and raw.isdigit()) or len(digits) > len(str(MAX_ID)):
        return None
    value = int(digits)
    return value if value <= MAX_ID else None


def page_number() -> int:
    page = as_int(request.args.get("page", "1"))
    if page is None or not 1 <= page <= MAX_PAGE:
        abort(400, "页码必须是正整数。")
    return page


def paging(total: int, page: int, per_page: int = PER_PAGE) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    return {"page": page, "pages": pages, "total": total}


def form_int(name: str) -> int:
    value = as_int(request.form.get(name, "").strip())
    if value is None:
        abort(400, f"缺少或错误的字段：{name}")
    return value


def lines(text: str) -> list[str]:
    """Non-empty lines of a textarea (one question per line). Only the line breaks a browser
    sends (CR LF, LF, CR) separate them: str.splitlines() also splits at U+2028, U+0085 and
    others, which a stored question may hold, so saving an entry split such a question in
    two."""
    return [ln.strip() for ln in LINE_BREAK.split(text) if ln.strip()]


def shown_version() -> set[str] | None:
    """The version of the entry (or synonym group) a form showed, which a save or delete
    must still find; None for a form without one (a script posting with the bearer token):
    last write wins, as before versions."""
    version = request.form.get("version", "").strip()
    return {version} if version else None


def form_ids(name: str) -> list[int]:
    """The ids a form sent under ``name`` (checkboxes: several values)."""
    values = [as_int(v.strip()) for v in request.form.getlist(name)]
    if any(v is None for v in values):
        abort(400, f"缺少或错误的字段：{name}")
    return [v for v in values if v is not None]


def state_label(name: str) -> str:
    flows = current_app.extensions.get("wxbot.flows")
    return labels.STATES.get(name) or labels.flow_state(name, flows) or name


@bp.app_template_filter("when")
def _when(timestamp: float | None) -> str:
    if not timestamp:
        return "—"
    tz = zone(current_app.extensions["wxbot.settings"].timezone)
    return datetime.fromtimestamp(timestamp, tz).strftime("%Y-%m-%d %H:%M")


@bp.app_template_filter("pretty_json")
def _pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


@bp.app_template_filter("cost")
def _cost(value: float) -> str:
    """An estimated cost: cents, or four decimals while it is still below one unit."""
    return f"{value:,.2f}" if value >= 1 or value == 0 else f"{value:.4f}"


@bp.app_template_filter("percent")
def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    access = g.get("console_access")

    def csrf_field() -> Markup:
        token = access.csrf_token if access else ""
        return Markup('<input type="hidden" name="csrf_token" value="{}">').format(token)

    def unanswered_total() -> int:
        return admin().read(unanswered_store.count_unanswered)

    return {
        "csrf_field": csrf_field,
        "csrf_token": access.csrf_token if access else "",
        "logged_in": access is not None,
        "unanswered_total": unanswered_total,
        "state_label": state_label,
        "source_label": labels.source,
        "reason_label": labels.reason,
        "language_label": labels.language,
        "funnel_label": lambda name: labels.FUNNEL.get(name, name),
        "slot_type_label": lambda name: labels.SLOT_TYPES.get(name, name),
        "languages": LANGUAGES,
    }


def register(app: Flask) -> None:
    from wxbot.admin.api import add_error_page
    from wxbot.console import (  # noqa: F401 - their routes join the blueprint
        conversations,
        dashboard,
        flows,
        imports,
        knowledge,
        llm,
        login,
        synonyms,
        unanswered,
    )

    app.register_blueprint(bp)
    add_error_page(app, "/admin/", render_http_error)
