"""wxbot: a WeChat Official Account bot backend. ``create_app`` builds the Flask app."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify

from wxbot import redaction
from wxbot.config import ConfigError, Settings, load_settings, warn_about_demo

log = logging.getLogger(__name__)

INSTANCE_CONFIG = "wxbot.cfg"  # optional; WXBOT_* = "value" lines, overridden by the environment
BLUEPRINT_MODULES = ("wxbot.wechat", "wxbot.admin", "wxbot.console", "wxbot.metrics")


def create_app(
    test_config: Mapping[str, Any] | None = None, *, load_knowledge: bool = True
) -> Flask:
    """Build the app. ``test_config`` maps Settings field names to values (plus ``clock``, a
    callable returning epoch seconds); otherwise settings come from WXBOT_* variables.
    ``load_knowledge``: load the knowledge index now (seconds at 100k entries), so no request
    pays for it; the command line builds its app without it and loads it only for the
    commands that answer messages (``load_knowledge``)."""
    # Every log record of the process loses secrets, SQL parameters and phone numbers
    # before any handler sees it (wxbot.redaction): logs are shipped and shared.
    redaction.install()
    app = Flask(__name__, instance_relative_config=True)
    # A path with an empty segment (``/admin/api/sessions//history``: an unset variable in a
    # script) names nothing: a 404 (the API's JSON, the console's page), not Werkzeug's HTML
    # 308 to the path with its slashes merged, which names another thing (a client following
    # it with DELETE cleared the history of a user called "history").
    app.url_map.merge_slashes = False
    overrides = dict(test_config or {})
    clock = overrides.pop("clock", time.time)
    settings = _load_settings(app, overrides)
    if test_config is None:
        warn_about_demo(settings)

    from wxbot.db import default_sqlite_url, make_engine
    from wxbot.dialog.answer_cache import cache_lookups
    from wxbot.dialog.engine import Bot
    from wxbot.dialog.flow import Deps
    from wxbot.dialog.states import build_table
    from wxbot.flows import load_flows
    from wxbot.flows.runner import FlowRunner
    from wxbot.llm import MemoryStore, build_fallback
    from wxbot.metrics import count_lookups
    from wxbot.qa import build_knowledge_base
    from wxbot.services import build_services

    flows = FlowRunner(load_flows(settings.flows_dir).flows)  # bad files stop start-up here
    url = settings.database_url or default_sqlite_url(app.instance_path)
    engine = make_engine(url)
    deps = Deps(
        settings=settings,
        kb=count_lookups(cache_lookups(build_knowledge_base(settings, engine, load_knowledge))),
        services=build_services(settings, engine),
        memory=MemoryStore(),
        fallback=build_fallback(settings),
    )
    app.extensions["wxbot.settings"] = settings
    app.extensions["wxbot.engine"] = engine
    app.extensions["wxbot.flows"] = flows
    table = build_table(extra=[flows])
    bot = Bot(engine, settings, deps, table=table, clock=clock)
    app.extensions["wxbot.bot"] = bot
    # The bot keeps time by the database server's clock (wxbot.database_clock.DatabaseClock),
    # which every container shares: the console's sessions and the admin lockout window go by
    # it too.
    app.extensions["wxbot.clock"] = bot.clock

    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "init_app"):
            module.init_app(app)
    _add_health_check(app)
    _behind_proxies(app, settings.trusted_proxies)
    return app


def _behind_proxies(app: Flask, hops: int) -> None:
    """Take the client's address and scheme from the last ``hops`` X-Forwarded-For/-Proto
    entries (Werkzeug's ProxyFix), outermost so the WeChat fast path logs them too. Only the
    entries our own proxies appended are read: a client can forge the header, not them."""
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _load_settings(app: Flask, overrides: dict[str, Any]) -> Settings:
    environ: dict[str, str] = {}
    path = os.path.join(app.instance_path, INSTANCE_CONFIG)
    if os.path.exists(path):
        try:
            app.config.from_pyfile(path)
        except Exception as exc:  # noqa: BLE001 - the file is Python: it may raise anything
            # One line naming the file and the line, not a traceback (a stray quote, binary
            # junk, an unreadable file): the operator's fix is in that file.
            line = f":{exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
            reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
            raise ConfigError(
                f"{path}{line}: {type(exc).__name__}: {reason}; it holds "
                'WXBOT_X = "value" lines (Python syntax)'
            ) from None
        environ.update(
            {k: str(v) for k, v in app.config.items() if k.startswith("WXBOT_") and v is not None}
        )
    environ.update({k: v for k, v in os.environ.items() if k.startswith("WXBOT_")})
    return load_settings(environ, overrides)


# Seconds a readiness check waits for the index to load: a small base (and jieba's
# dictionary, on a busy machine) loads within it, so a process whose database came up after
# it started is answered 200 at once, as the contract "/healthz answers 200 when the database
# answers" expects; a big base answers 503 and keeps loading for the next probe.
INDEX_READY_WAIT = 8.0


def _add_health_check(app: Flask) -> None:
    """``/healthz`` is readiness (send this process messages?): the database answers with a
    usable schema, the knowledge index is in memory, and the process is not stopping.
    ``/livez`` is liveness (restart it?): the process answers at all."""

    @app.get("/livez")
    def livez():  # type: ignore[no-untyped-def]
        return jsonify(status="alive")

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        from wxbot.migrations.guard import CURRENT, MISSING, NEWER, schema_status

        bot = app.extensions["wxbot.bot"]
        if bot.slow.draining:  # a deploy's SIGTERM: finishing its work, taking no more
            return jsonify(status="error", reason="stopping"), 503
        try:
            status = schema_status(app.extensions["wxbot.engine"])
        except Exception as exc:  # the database does not answer: say so, don't 500
            log.warning("health check failed: %s", exc)
            return jsonify(status="error", reason="database unreachable"), 503
        if status.state not in (CURRENT, NEWER):
            reason = (
                "schema missing: run `wxbot init-db`" if status.state == MISSING else status.message
            )
            return jsonify(status="error", reason=reason, schema=status.revision), 503
        if not index_loaded(app):
            return jsonify(status="error", reason="knowledge index loading"), 503
        if status.state == NEWER:
            # A later release migrated it during a rolling deploy: this one keeps serving
            # (migrations only add); a 503 would pull every old container at once.
            return jsonify(status="ok", schema=status.revision, note=status.message)
        return jsonify(status="ok", schema=status.revision)


def _unloaded_knowledge(app: Flask) -> Any | None:
    """The app's knowledge base if it has no index in memory yet (and can load one)."""
    kb = app.extensions["wxbot.bot"].deps.kb
    return kb if getattr(kb, "version", 0) < 0 and hasattr(kb, "load_at_start") else None


def load_knowledge(app: Flask) -> None:
    """Load the knowledge index now, if the app was built without it (see create_app)."""
    kb = _unloaded_knowledge(app)
    if kb is not None:
        kb.load_at_start()


_index_loading = threading.Lock()


def index_loaded(app: Flask, wait: float | None = None) -> bool:
    """Whether the knowledge index is in memory. A process that started while the database
    was down (or before `wxbot init-db`) has none, and its first message would build it in
    its transaction, holding its user's lock: seconds at 100k entries, past WeChat's 5 s.
    So load it here, in the background, and say "not ready" until it is in (after waiting
    up to ``wait`` seconds, INDEX_READY_WAIT by default, for the load to end)."""
    kb = _unloaded_knowledge(app)
    if kb is None:
        return True
    with _index_loading:
        loader = app.extensions.get("wxbot.index_loader")
        if loader is None or not loader.is_alive():
            loader = threading.Thread(target=kb.load_at_start, name="wxbot-kb-load", daemon=True)
            app.extensions["wxbot.index_loader"] = loader
            loader.start()
    loader.join(INDEX_READY_WAIT if wait is None else wait)
    return bool(kb.version >= 0)
