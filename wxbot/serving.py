"""Production serving for ``wxbot serve``: gunicorn, with the app loaded once before forking.

The app is built in the master (jieba's dictionary and the knowledge index load once, and
the workers share those pages), then each worker drops the database connections it
inherited, so no socket is shared across processes. Metrics from every worker are collected
through prometheus-client's multiprocess directory.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from flask import Flask

from wxbot import metrics

DEFAULT_THREADS = 4


def default_workers() -> int:
    """One worker per core: the message path is CPU-bound between short database waits."""
    return max(1, os.cpu_count() or 1)


def prepare_metrics_dir() -> None:
    """Give the workers a shared, empty multiprocess directory (before any metric is made)."""
    if os.environ.get(metrics.MULTIPROC_ENV):
        return
    path = tempfile.mkdtemp(prefix="wxbot-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = path
    atexit.register(shutil.rmtree, path, ignore_errors=True)


def run(
    load_app: Callable[[], Flask],
    host: str,
    port: int,
    workers: int | None = None,
    threads: int | None = None,
) -> None:
    from gunicorn.app.base import BaseApplication

    prepare_metrics_dir()
    app = load_app()
    kb = app.extensions["wxbot.bot"].deps.kb
    wait = getattr(kb, "wait_until_rebuilt", None)
    if wait is not None:  # no index thread may be running when the workers fork
        wait(60)

    # Everything loaded so far (jieba's dictionary, the knowledge index, the app) lives as
    # long as the process: frozen, the collector never walks it again (a full collection of
    # it took ~60 ms with the starter knowledge, more with a large base, stalling a worker's
    # threads), and the workers' copies of those pages stay shared after the fork.
    gc.freeze()

    def post_fork(_server: Any, _worker: Any) -> None:
        # The master's pooled connections are the workers' too after fork: forget them
        # without closing (closing would close the master's sockets).
        app.extensions["wxbot.engine"].dispose(close=False)

    def worker_exit(_server: Any, _worker: Any) -> None:
        app.extensions["wxbot.bot"].close()  # finish slow work, write batched hit counts

    def child_exit(_server: Any, worker: Any) -> None:
        metrics.worker_exited(worker.pid)

    options = {
        "bind": f"{host}:{port}",
        "workers": workers or default_workers(),
        "threads": threads or DEFAULT_THREADS,
        "worker_class": "gthread",
        "preload_app": True,
        # slow work may hold a delivery for up to 15 s (dialog/slow.py); keep-alive helps
        # a load balancer or WeChat's proxy reuse connections
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "post_fork": post_fork,
        "worker_exit": worker_exit,
        "child_exit": child_exit,
    }

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Application().run()
