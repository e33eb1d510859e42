"""The admin web console at /admin/: server-rendered pages for the people who run the account."""

from __future__ import annotations

from flask import Flask

from wxbot.console import models  # noqa: F401 - registers the console_* tables on the shared Base


def init_app(app: Flask) -> None:
    from wxbot.console.web import register

    register(app)
