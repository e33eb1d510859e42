"""Prometheus metrics of the message path (multiprocess-safe under gunicorn) and ``GET /metrics``.

The metric objects are made on first use, not at import: prometheus-client picks its
multiprocess storage when it is imported, and ``wxbot serve`` sets PROMETHEUS_MULTIPROC_DIR
only once it knows it will fork workers. Recording never raises into the message path.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from flask import Flask, Response
from wechatpy.events import EVENT_TYPES

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 4.0, 5.0, 10.0, 15.0)


_made: dict[str, Any] = {}
_making = threading.Lock()

# Every label value is a time series kept for the life of the process (and, under gunicorn,
# in its multiprocess files), so none may come from what a request says: the ``type`` of
# a delivery is its MsgType or event name, which the body names (a plaintext-mode body is
# not covered by the signature). Names outside WeChat's own are counted as "other".
MESSAGE_KINDS = frozenset(
    {"text", "image", "voice", "video", "shortvideo", "location", "link", "file", "unknown"}
)
EVENTS = frozenset(EVENT_TYPES) | {
    "subscribe_msg_popup_event",
    "subscribe_msg_change_event",
    "subscribe_msg_sent_event",
    "user_info_modified",
    "user_authorization_revoke",
    "user_authorization_cancellation",
}


def _metrics() -> dict[str, Any]:
    if not _made:
        with _making:  # registering the same metric twice (two threads at once) raises
            if not _made:
                _made.update(_make())
    return _made


def _make() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    return {
        "messages": Counter(
            "wxbot_messages_total",
            "Deliveries answered, by WeChat message type and outcome",
            ["type", "outcome"],
        ),
        "latency": Histogram(
            "wxbot_message_seconds", "Time to answer one delivery", buckets=LATENCY_BUCKETS
        ),
        "db_retries": Counter(
            "wxbot_db_retries_total", "Transactions run again after a transient database error"
        ),
        "deferred": Counter(
            "wxbot_deferred_total", "Slow work (Deferred outcomes) by event", ["event"]
        ),
        "kb": Counter("wxbot_kb_lookups_total", "Knowledge-base lookups by result", ["result"]),
        "llm_refusals": Counter(
            "wxbot_llm_refusals_total",
            "LLM questions the provider's content filter or the model declined",
            ["source"],
        ),
    }


def _safely(record: Any) -> None:
    try:
        record(_metrics())
    except Exception:  # metrics must never cost a message
        log.warning("recording a metric failed", exc_info=True)


def message(kind: str, outcome: str, seconds: float) -> None:
    """One delivery answered: ``outcome`` is replied, duplicate, deferred, still_working,
    withheld (left unanswered so WeChat delivers again), busy or apology."""

    def record(m: dict[str, Any]) -> None:
        m["messages"].labels(kind_label(kind), outcome).inc()
        m["latency"].observe(seconds)

    _safely(record)


def kind_label(kind: str) -> str:
    """The ``type`` label of a delivery's kind (``text``, ``event:click``...): one of a fixed
    set, whatever the request says."""
    if kind in MESSAGE_KINDS:
        return kind
    event = kind.partition("event:")[2] if kind.startswith("event:") else None
    if event is None:
        return "other"
    return kind if event in EVENTS else "event:other"


def db_retry(_exc: BaseException | None = None) -> None:
    _safely(lambda m: m["db_retries"].inc())


def deferred(event: str) -> None:
    """Slow work: started, finished (in time for a delivery or not), late (the last
    delivery said "still working")."""
    _safely(lambda m: m["deferred"].labels(event).inc())


def kb_lookup(result: str) -> None:
    """answered, suggested or unknown."""
    _safely(lambda m: m["kb"].labels(result).inc())


def llm_refusal(source: str) -> None:
    """finish_reason, error or refusal (wxbot.llm.client.Refused.source)."""
    _safely(lambda m: m["llm_refusals"].labels(source).inc())


def exposition() -> tuple[bytes, str]:
    """The text format: every worker's figures when PROMETHEUS_MULTIPROC_DIR is set."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _metrics()  # the families exist (at zero) before the first message
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live-only values."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def count_lookups(kb: Any) -> Any:
    """Count what each ``kb.lookup`` finds (answered / suggested / unknown), by wrapping that
    one method on the instance: the matcher needs no knowledge of metrics. Returns ``kb``.
    The lookup as it was stays as ``kb.lookup_uncounted``, for checks that ask nothing
    (whether a QR code's scene is a question at all: wxbot.dialog.handlers.query)."""
    lookup = getattr(kb, "lookup", None)
    if lookup is None:
        return kb
    kb.lookup_uncounted = lookup

    def counted(*args: Any, **kwargs: Any) -> Any:
        found = lookup(*args, **kwargs)
        if getattr(found, "best", None) is not None:
            kb_lookup("answered")
        elif getattr(found, "suggestions", None):
            kb_lookup("suggested")
        else:
            kb_lookup("unknown")
        return found

    kb.lookup = counted
    return kb


def init_app(app: Flask) -> None:
    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        body, content_type = exposition()
        return Response(body, content_type=content_type)
