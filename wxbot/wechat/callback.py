"""``/wechat`` in the app: Flask's ``GET /wechat`` (URL verification, rare) and a plain-WSGI
fast path in front of Flask for ``POST /wechat`` (every message). Both hand the request to
``endpoint.Endpoint``; the bot is ``app.extensions["wxbot.bot"]`` (anything with
``handle(inbound)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.wsgi import get_content_length, get_input_stream

from wxbot.wechat.endpoint import APOLOGY, Answer, Endpoint

__all__ = ["APOLOGY", "FastPath", "init_app"]

log = logging.getLogger("wxbot.wechat")
bp = Blueprint("wechat", __name__)
PATH = "/wechat"
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 413: "Payload Too Large"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable"}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _endpoint() -> Endpoint:
    return current_app.extensions["wxbot.wechat.endpoint"]  # type: ignore[no-any-return]


@bp.get(PATH)
def verify_url() -> Response:
    answer = _endpoint().verify_url(request.args, request.remote_addr)
    return Response(answer.body, status=answer.status, content_type=answer.content_type)


class FastPath:
    """WSGI middleware: ``POST /wechat`` goes straight to the endpoint; everything else to
    the wrapped app. Same answers as a Flask route would give, at a fraction of the cost."""

    def __init__(self, app: WsgiApp, endpoint: Endpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            answer = self._answer(environ)
        except Exception:  # a bug of ours: answered like Flask would, never a traceback
            log.exception("POST %s failed", PATH)
            answer = Answer(500, "internal error\n")
        body = answer.body.encode("utf-8")
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(body)))]
        status = f"{answer.status} {_REASONS.get(answer.status, 'Error')}"
        start_response(status, headers)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> Answer:
        query = environ.get("QUERY_STRING", "")
        args: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
            args.setdefault(name, value)  # the first value wins, as with Flask's request.args
        # Werkzeug's rules, as Flask would apply them: a chunked body has no length, a
        # malformed length counts as 0, and an unterminated stream with no length is empty
        # (the development server would otherwise block reading it).
        content_length = get_content_length(environ)
        stream = get_input_stream(environ)
        remote = environ.get("REMOTE_ADDR")
        return self.endpoint.receive(args, stream.read, content_length, remote)


def init_app(app: Flask) -> None:
    endpoint = Endpoint(app.extensions)
    app.extensions["wxbot.wechat.endpoint"] = endpoint
    app.register_blueprint(bp)
    app.wsgi_app = FastPath(app.wsgi_app, endpoint)  # type: ignore[method-assign]
