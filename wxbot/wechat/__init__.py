"""The protocol edge: WeChat's callback, its security, XML in and out. Knows nothing of dialogue."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register ``GET|POST /wechat``. Needs ``app.extensions["wxbot.settings"]``, ``["wxbot.bot"]``
    and optionally ``["wxbot.clock"]`` (a callable returning epoch seconds) at request time."""
    from wxbot.wechat.callback import init_app as _init

    _init(app)
