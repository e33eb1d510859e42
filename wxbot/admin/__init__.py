"""Admin HTTP API under /admin/api (JSON, ``Authorization: Bearer $WXBOT_ADMIN_TOKEN``).

Disabled (404) when WXBOT_ADMIN_TOKEN is unset. Errors are JSON ``{"error": reason}``:
401 no bearer token, 403 wrong token, 404 unknown entry/session, 409 a question that belongs to
another entry, 412 an ``If-Match`` that is no longer the entry's (or synonym group's) ETag,
422 invalid input, 429 too many wrong tokens from the client's address (with
``Retry-After``; the budget is shared with the console's login, see throttle.py).
"""

from __future__ import annotations

from flask import Flask

from wxbot.admin.api import bp, register_error_pages


def init_app(app: Flask) -> None:
    from wxbot.admin import knowledge, learning, llm, sessions  # noqa: F401 - routes join the blueprint

    app.register_blueprint(bp)
    register_error_pages(app)
