"""Production serving for ``wxbot serve``: gunicorn, with the app loaded once before forking.

The app is built in the master (jieba's dictionary and the knowledge index load once, and
the workers share those pages), then each worker drops the database connections it
inherited, so no socket is shared across processes. Metrics from every worker are collected
through prometheus-client's multiprocess directory.

Stopping (SIGTERM from docker stop, Kubernetes or systemd; SIGINT/SIGQUIT; SIGHUP's reload
and a recycled worker, which gunicorn stops with SIGTERM): the stop signal starts each
worker's drain clock. gunicorn stops accepting, answers the requests in flight, and then
``worker_exit`` lets the slow work under way (dialog/slow.py) finish until the clock's
deadline, gives up on the rest (owning up to it to its users) and logs it. gunicorn's
graceful_timeout is the drain plus a margin, so its SIGKILL never comes first. The hooks
find the bot in the worker's app, so a gunicorn config of your own can import them.
"""

from __future__ import annotations

import atexit
import errno
import gc
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask

from wxbot import index_loaded, metrics
from wxbot.dialog.slow import DRAIN_SECONDS

log = logging.getLogger(__name__)

DEFAULT_THREADS = 4
# What a worker needs past its drain to write the apologies for work it gave up on, flush
# its batched counts and exit before gunicorn's SIGKILL.
STOP_MARGIN = 5.0
DEFAULT_GRACEFUL_TIMEOUT = int(DRAIN_SECONDS + STOP_MARGIN)  # 25 s: inside Kubernetes' 30 s

# Upper bounds of `wxbot serve --workers/--threads/--graceful-timeout`. Unbounded,
# `--workers 100000` had gunicorn fork 100,000 copies of the app, each with its own database
# pool. Workers: the default is one per core, the benchmarks (README) found no layout faster
# on a saturated box, and gunicorn's advice is 2-4 per core: 256 is 4 per core on a 64-core
# machine, and still refuses a typo's extra digits. A 2-core box gains nothing past ~8, but a
# bound from os.cpu_count() would refuse on a smaller machine a command that worked on a
# bigger one (and in a container it counts the host's cores, not the container's share).
MAX_WORKERS = 256
# Threads: a request holds one while it is handled (a request waiting on slow work, up to
# HOLD_SECONDS); a worker's MySQL pool has 30 connections (pool_size 10 + max_overflow 20,
# wxbot/db.py) for its requests and slow work. 64 is 16 times the default and room past the
# pool for held requests; 256 x 64 = 16,384 threads stay under the smallest usual pid_max
# (32,768), which counts threads too.
MAX_THREADS = 64
# A stop longer than an hour is a typo: slow work not back within 300 s (longer only if the
# configured timeouts allow longer work) has been declared lost to its users. Unbounded, a
# 400-digit value was taken, and no float holds it (drain_seconds, gunicorn's deadlines).
MAX_GRACEFUL_TIMEOUT = 3600


def default_workers(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """One worker per core the process may use: the message path is CPU-bound between short
    database waits (at most MAX_WORKERS, as --workers)."""
    return min(MAX_WORKERS, usable_cores(cgroup_root))


def usable_cores(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The cores this process may run on, not the host's: its CPU affinity (cpusets,
    ``taskset``) and its cgroup's CPU quota (``docker run --cpus 2``, a Kubernetes CPU limit),
    rounded up. os.cpu_count() counts the host: a container limited to 2 cores on a 64-core
    host started 64 workers, each with its own knowledge index and database pool."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """Cores' worth of CPU time the cgroup may use (None: no quota, or none readable). Read
    where a container sees its own cgroup (cgroup v2: ``cpu.max`` "200000 100000" or "max
    100000"; v1: ``cpu/cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``)."""
    base = Path(root)
    try:
        quota, period = (base / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota_us = int((base / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((base / "cpu" / "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def url_host(host: str) -> str:
    """``host`` as a URL and gunicorn's ``bind`` write it: an IPv6 address in brackets
    (``::1:8000`` was read by gunicorn as host ``::1:8000`` and no port)."""
    bare = host.strip("[]")
    return f"[{bare}]" if ":" in bare else bare


class CannotServe(Exception):
    """``wxbot serve`` cannot start as told (an address, a directory); the message says why."""


class CannotListen(CannotServe):
    """``wxbot serve`` cannot listen where it was told to."""


def check_listen(host: str, port: int) -> None:
    """Refuse (CannotListen) an address that cannot be listened on, before the app loads:
    gunicorn found out only after it, then retried five times over five seconds."""
    if os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"):
        # gunicorn's USR2 upgrade or systemd's socket activation: the socket is inherited,
        # and the port is in use by design (by the old master, or by systemd)
        return
    refused = listen_error(host, port)
    if refused is not None:
        raise CannotListen(refused)


def listen_error(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (None: it can)."""
    bare = host.strip("[]") or None  # "": every address, as gunicorn reads it
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError) as exc:  # gaierror is an OSError
        reason = getattr(exc, "strerror", None) or str(exc)
        return f"--host {host!r} is not an address this machine has ({reason})"
    where = f"{url_host(host)}:{port}"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"cannot listen on {where}: the port is in use (another wxbot serve?);"
                    " stop that process or choose another --port"
                )
            if exc.errno == errno.EADDRNOTAVAIL:
                return (
                    f"cannot listen on {where}: --host {host!r} is not an address of this machine"
                )
            if exc.errno == errno.EACCES:
                return f"cannot listen on {where}: ports below 1024 need root; use e.g. --port 8000"
            return f"cannot listen on {where}: {exc.strerror or exc}"
    return None


def prepare_metrics_dir() -> None:
    """Give the workers a shared, empty multiprocess directory (before any metric is made)."""
    given = os.environ.get(metrics.MULTIPROC_ENV)
    if given:
        # The operator's own (prometheus-client's docs): one that does not exist made every
        # scrape of /metrics a 500 with a FileNotFoundError traceback in the log.
        if not os.path.isdir(given) or not os.access(given, os.W_OK | os.X_OK):
            raise CannotServe(
                f"{metrics.MULTIPROC_ENV}={given!r} is not a directory wxbot can write: "
                "create it (empty it before each start) or unset it, and `wxbot serve` "
                "makes one of its own"
            )
        return
    path = tempfile.mkdtemp(prefix="wxbot-metrics-")
    os.environ[metrics.MULTIPROC_ENV] = path
    atexit.register(_remove_metrics_dir, path, os.getpid())


def _remove_metrics_dir(path: str, owner: int) -> None:
    """At the master's exit only. The workers inherit the atexit handler with the fork, and
    one that exits on its own (SIGHUP's reload, a recycled worker) removed the directory
    every other worker still writes to: /metrics then answered 500 until the next restart."""
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def drain_seconds(cfg: Any) -> float:
    """The drain that fits gunicorn's graceful_timeout (it SIGKILLs workers after that)."""
    return max(0.0, float(cfg.graceful_timeout) - STOP_MARGIN)


def _bot(worker: Any) -> Any | None:
    """The bot of the app this worker serves (None before it loaded one)."""
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", None)
    return extensions.get("wxbot.bot") if isinstance(extensions, dict) else None


# --- gunicorn hooks (server hooks take the arbiter first; worker hooks only the worker) -----


def post_fork(server: Any, _worker: Any) -> None:
    """The master's pooled connections are the workers' too after fork: forget them without
    closing (closing would close the master's sockets)."""
    app = getattr(server.app, "callable", None) if server.cfg.preload_app else None
    if isinstance(app, Flask):
        app.extensions["wxbot.engine"].dispose(close=False)


def post_worker_init(worker: Any) -> None:
    """Start the drain clock on SIGTERM, the moment the container's grace period starts:
    counted from worker_exit instead, the requests gunicorn first waits for would eat it.
    And load the knowledge index if the master could not (its database was down), so no
    user's first message builds it (readiness, /healthz, waits for it too)."""
    bot = _bot(worker)
    if bot is None:
        return
    index_loaded(worker.wsgi, wait=0)  # started, not waited for: the worker serves meanwhile
    stop = signal.getsignal(signal.SIGTERM)
    if not callable(stop):
        return
    seconds = drain_seconds(worker.cfg)

    def on_term(signum: int, frame: Any) -> None:
        bot.slow.begin_drain(seconds)
        stop(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_int(worker: Any) -> None:
    """SIGINT/SIGQUIT (a quick stop): gunicorn leaves the worker's loop at once; the slow
    work under way still gets the drain (the master waits graceful_timeout for it)."""
    bot = _bot(worker)
    if bot is not None:
        bot.slow.begin_drain(drain_seconds(worker.cfg))


def worker_abort(worker: Any) -> None:
    """SIGABRT: gunicorn's timeout found the worker stuck and SIGKILLs it a moment later.
    No drain: give up on the slow work at once, so its users hear of it now."""
    bot = _bot(worker)
    if bot is not None:
        bot.slow.begin_drain(0)


def worker_exit(_server: Any, worker: Any) -> None:
    """Drain the slow work, write batched counts. gunicorn's master also calls this hook
    for a worker that vanished: closing the master's bot there would leave every worker
    forked later with a stopped one."""
    bot = _bot(worker)
    if bot is None or worker.pid != os.getpid():
        return
    bot.close(drain_seconds(worker.cfg))


def child_exit(_server: Any, worker: Any) -> None:
    metrics.worker_exited(worker.pid)


HOOKS = {
    "post_fork": post_fork,
    "post_worker_init": post_worker_init,
    "worker_int": worker_int,
    "worker_abort": worker_abort,
    "worker_exit": worker_exit,
    "child_exit": child_exit,
}


def run(
    load_app: Callable[[], Flask],
    host: str,
    port: int,
    workers: int | None = None,
    threads: int | None = None,
    graceful_timeout: int = DEFAULT_GRACEFUL_TIMEOUT,
) -> None:
    from gunicorn.app.base import BaseApplication

    check_listen(host, port)
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

    options = {
        "bind": f"{url_host(host)}:{port}",
        "workers": workers or default_workers(),
        "threads": threads or DEFAULT_THREADS,
        "worker_class": "gthread",
        "preload_app": True,
        # gthread's main loop heartbeats while request threads wait on slow work, so this
        # only catches a worker whose loop is stuck; it must exceed the drain (a draining
        # worker sends no heartbeat), and a reload's old workers are bound by it alone.
        "timeout": 60,
        "graceful_timeout": graceful_timeout,
        "keepalive": 5,
        # gunicorn 25.1+ opens a control socket (for its `gunicornc`, which wxbot does not
        # use) at one path per user: two `wxbot serve` on one host (two bots, or
        # two ports) took it from each other, and with an unwritable $HOME (a container's
        # user) the master logged "[ERROR] Control server error" at start and at every fork.
        "control_socket_disable": True,
        **HOOKS,
    }

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # an older gunicorn lacks some settings
                    self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Application().run()
