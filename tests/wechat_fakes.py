"""Fakes for testing the WeChat edge without a database: a recording bot and a minimal app."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from wxbot.config import Settings
from wxbot.messages.inbound import Inbound
from wxbot.messages.replies import Reply, Text
from wxbot.wechat import init_app
from wxbot.wechat.simulator import WeChatSimulator

VECTORS = json.loads(
    (Path(__file__).parent / "data" / "wechat-test-vectors.json").read_text("utf-8")
)
TOKEN = "edge-test-token"
APPID = "wx1234567890edge"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
OTHER_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
NOW = 1_800_000_000


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingBot:
    """Records every Inbound; answers with ``answer(inbound)`` (default: echo the text)."""

    def __init__(self, answer: Callable[[Inbound], Reply] | None = None) -> None:
        self.seen: list[Inbound] = []
        self.answer = answer or (lambda m: Text(f"echo:{m.text}"))

    def handle(self, inbound: Inbound) -> Reply:
        self.seen.append(inbound)
        return self.answer(inbound)


def edge_app(bot: Any = None, clock: Clock | None = None, **settings: Any) -> Flask:
    """A Flask app with only the /wechat blueprint, a fake bot and a fixed clock."""
    app = Flask("wxbot-edge-test")
    app.config["TESTING"] = True
    values = {"token": TOKEN, "appid": APPID, **settings}
    app.extensions["wxbot.settings"] = Settings(**values)
    app.extensions["wxbot.bot"] = bot if bot is not None else RecordingBot()
    app.extensions["wxbot.clock"] = clock or Clock()
    init_app(app)
    return app


def simulator(app: Flask, mode: str | None = None, **kwargs: Any) -> WeChatSimulator:
    settings = app.extensions["wxbot.settings"]
    kwargs.setdefault("clock", app.extensions["wxbot.clock"])
    kwargs.setdefault("aes_key", settings.encoding_aes_key)
    return WeChatSimulator(settings.token, settings.appid, mode=mode, **kwargs)


@contextmanager
def http_server(app: Flask) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields the /wechat URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/wechat"
    finally:
        server.shutdown()
        thread.join(5)
