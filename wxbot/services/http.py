"""Outbound HTTP done one way for every service: a Session each, timeouts, one retry, a cache.

Why a Session per service: connection reuse (keep-alive) saves a TLS handshake per call, and
one service's pool trouble never starves another. Why one retry: a pooled keep-alive
connection that the far end closed fails on first use; trying once more on a fresh
connection fixes that without turning a down service into a long wait.
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import re
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
import urllib3.poolmanager
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    DecodeError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

from wxbot import errors
from wxbot.redaction import redact
from wxbot.services.budget import Budget
from wxbot.services.deadline import LOCAL, POOL_CLASSES, TIME_UP, WATCHDOG

DEFAULT_CONNECT = 1.5
MIN_CALL = 0.05  # seconds: a call with less time left than this is not sent (Deadline)
# The longest answer body read (decoded): every answer of ours is a few KB (a forecast, ten
# places, five songs, an LLM reply). A wrong URL serving a file, or a runaway API, would
# otherwise be read whole into a worker's memory.
MAX_ANSWER_BYTES = 2 * 1024 * 1024
MAX_REDIRECTS = 2  # requests' own default is 30, each with a fresh timeout
_CHUNK = 64 * 1024
USER_AGENT = "wxbot/0.1 (+https://github.com/wxbot)"

T = TypeVar("T")

# WeChat's API takes its access_token in the query string, and urllib3 logs request URLs (at
# WARNING when it retries a failed connection, or when an answer's headers do not parse:
# urllib3.connection): those records are redacted. A logger's filter sees only the records
# logged to that very logger, so each module's logger gets one (any urllib3 logger that
# exists when the filter is installed, too).
_URL_SECRETS = re.compile(r"((?:access_token|secret)=)[^&\s'\"()<>,;]+")
_URL_LOGGERS = (
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)


class RedactUrlSecrets(logging.Filter):
    """Also done for every record by wxbot.redaction once an app is built (this filter covers
    a WeChatApi used without one); urllib3's lines lose every query value."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's problem, not the request's
            return True
        redacted = redact(_URL_SECRETS.sub(r"\1***", message), all_queries=True)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_url_secrets_in_logs() -> None:
    """Install the filter on the loggers that print request URLs (idempotent)."""
    known = [n for n in logging.root.manager.loggerDict if n.startswith("urllib3.")]
    for name in sorted({*_URL_LOGGERS, *known}):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrlSecrets) for f in logger.filters):
            logger.addFilter(RedactUrlSecrets())


class ServiceError(Exception):
    """An outside service failed (down, slow, or answered nonsense). Handlers turn this into a
    friendly reply; it never reaches the engine as an unexpected exception."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class _Retry(Retry):
    """urllib3 counts a read *timeout* as a read error like a dropped connection; retrying
    it would wait the whole read budget twice (12 s -> 24 s, past WeChat's last delivery)
    and ask a struggling service again. A timeout is raised at once (requests: Timeout), and
    so is any failure of a call whose deadline has passed (the watchdog cut its socket)."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:
        error = kwargs.get("error", args[3] if len(args) > 3 else None)
        if isinstance(error, ReadTimeoutError):
            raise error
        call = getattr(LOCAL, "call", None)
        if call is not None and call.fired:
            url = kwargs.get("url", args[1] if len(args) > 1 else None)
            raise ReadTimeoutError(kwargs.get("_pool"), url, TIME_UP)  # type: ignore[arg-type]
        return super().increment(*args, **kwargs)


def release_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames in the tracebacks of ``exc`` and of the
    exceptions it wraps (its cause, context, ``reason`` and ``args``).

    urllib3 keeps a failed connection's exception in locals of the very frame its traceback
    holds (``urlopen``: ``err``, ``new_e``, the Retry whose history has it): a reference
    cycle per failed call. Through each frame's ``f_back`` it keeps every caller's frame
    alive, up to the slow-path job with its message, until the garbage collector gets to
    it; while a service is down that is every message that asks it. Callers keep only the
    exception's type name (ServiceError, LlmError), and a logged traceback needs no locals.
    """
    for one in errors.chain(exc):
        if one.__traceback__ is not None:
            traceback.clear_frames(one.__traceback__)  # running frames (ours) are left alone


class ReleasingAdapter(HTTPAdapter):
    """An HTTPAdapter whose failures carry no reference cycle (see release_frames)."""

    def send(self, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().send(*args, **kwargs)
        except Exception as exc:
            release_frames(exc)
            raise


class AnswerTooLarge(requests.RequestException):
    """An answer body longer than the session allows (MAX_ANSWER_BYTES)."""


class AnswerTooSlow(requests.exceptions.ReadTimeout):
    """An answer (its status line, headers or body) still arriving, or a connection still
    being made, when the call's read budget ran out."""


def _read_budget(timeout: Any) -> float | None:
    """The read part of a requests ``timeout`` (a number, (connect, read) or urllib3's)."""
    if isinstance(timeout, tuple):
        timeout = timeout[1]
    elif isinstance(timeout, urllib3.Timeout):
        timeout = timeout.read_timeout
    return float(timeout) if isinstance(timeout, (int, float)) else None


def _read_answer(response: requests.Response, ends: float | None, limit: int) -> None:
    """Read the body of ``response`` by ``ends`` (time.monotonic) and at most ``limit`` bytes.

    requests' own timeout is per socket read: an answer dripping a byte a second never times
    out, and the worker waits for it for ever. Here each read waits only what is left of the
    budget, and returns what has arrived (``read1``) so the clock is looked at every time.
    """
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            if ends is not None:
                left = ends - time.monotonic()
                if left <= 0:
                    raise AnswerTooSlow("the answer was still arriving when its time was up")
                # Looked up each time: at the end of the answer urllib3 hands the connection
                # back to the pool (and ``connection`` becomes None), where another thread
                # may take it. urllib3 sets the timeout again for each use.
                sock = getattr(getattr(raw, "connection", None), "sock", None)
                if sock is not None:
                    sock.settimeout(left)
            chunk = raw.read1(_CHUNK, decode_content=True)  # as requests would (gzip)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise AnswerTooLarge(f"the answer is longer than {limit} bytes")
            chunks.append(chunk)
    except requests.RequestException:  # ours (too slow, too large): an OSError too
        response.close()
        raise
    except ReadTimeoutError:
        response.close()
        raise AnswerTooSlow("the answer was still arriving when its time was up") from None
    except ProtocolError as exc:  # the connection dropped mid-answer
        response.close()
        raise requests.exceptions.ChunkedEncodingError(type(exc).__name__) from None
    except DecodeError as exc:
        response.close()
        raise requests.exceptions.ContentDecodingError(type(exc).__name__) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # TLS errors, a closed socket
        response.close()
        raise requests.exceptions.ConnectionError(type(exc).__name__) from None
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)
    response._content_consumed = True


class BoundedAdapter(ReleasingAdapter):
    """A ReleasingAdapter whose calls end by their read budget, counted from the call's start
    (connecting, resolving the name, the status line, headers and body: see _Watchdog), and
    that reads each answer whole, up to ``max_answer`` bytes (a caller asking
    ``stream=True`` reads the body itself, and the deadline covers the call up to the
    headers)."""

    def __init__(self, *args: Any, max_answer: int = MAX_ANSWER_BYTES, **kwargs: Any) -> None:
        self.max_answer = max_answer
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES  # watched connections

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # An HTTP(S) proxy's; a SOCKS proxy's connections are its own (not watched).
        if manager.pool_classes_by_scheme is urllib3.poolmanager.pool_classes_by_scheme:
            manager.pool_classes_by_scheme = POOL_CLASSES
        return manager

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        budget = _read_budget(kwargs.get("timeout"))
        ends = None if budget is None else time.monotonic() + budget
        call = None if ends is None else WATCHDOG.arm(ends)
        outer, LOCAL.call = getattr(LOCAL, "call", None), call
        fired = False
        try:
            try:
                response = super().send(request, stream=True, **kwargs)
                if not stream:
                    _read_answer(response, ends, self.max_answer)
            finally:
                LOCAL.call = outer
                fired = call is not None and WATCHDOG.disarm(call)
            if fired:  # cut at its deadline: what looks like the end may be the shutdown
                response.raw.close()
                response.close()
                raise AnswerTooSlow(TIME_UP)
        except Exception as exc:
            release_frames(exc)
            if fired and isinstance(exc, _CUT) and not isinstance(exc, _NOT_CUT):
                raise AnswerTooSlow(TIME_UP) from None  # "connection reset", as it was cut
            raise
        return response


# How a call cut by the watchdog fails (its socket shut down), or a failure at its deadline.
_CUT = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
_NOT_CUT = (requests.Timeout, AnswerTooLarge)


class ApiSession(requests.Session):
    """A Session that follows a redirect only on the same host, never from https to http:
    an API that sends a call elsewhere (a hijacked DNS name, a misconfigured proxy, a
    captive portal) gets no query string, body or secret of ours; its 3xx is the answer."""

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is None:
            return None
        here, there = urlsplit(resp.url), urlsplit(urljoin(resp.url, target))
        if there.hostname != here.hostname or (here.scheme == "https" != there.scheme):
            return None
        return target


def make_session(retry_reads: bool = True) -> requests.Session:
    """A Session that retries once on connection errors.

    Connect errors are always safe to retry (nothing was sent). Read errors (the connection
    dropped after sending) are retried only when ``retry_reads``, and then only for GET: the
    request may have been processed. A read that timed out is never retried: the read budget
    is the budget. HTTP error statuses are not retried: a 5xx now is usually a 5xx in a
    moment, too. An answer must arrive whole within the call's read budget and be at most
    MAX_ANSWER_BYTES long (BoundedAdapter); redirects are followed only on the same host
    (ApiSession), at most MAX_REDIRECTS of them.
    """
    retry = _Retry(
        total=1,
        connect=1,
        read=1 if retry_reads else 0,
        status=0,
        other=0,
        redirect=2,
        allowed_methods=frozenset({"GET", "HEAD"}),
        backoff_factor=0,
        raise_on_status=False,
    )
    session = ApiSession()
    session.max_redirects = MAX_REDIRECTS
    adapter = BoundedAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    # One Session serves every user's calls from many threads: a cookie one call received
    # (a framework's session id, a sticky-routing cookie) must not ride along the next
    # user's call. These are API calls; none of them needs cookies.
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def as_budget(budget: Budget | float) -> Budget:
    """A bare number is a read budget with the default connect budget."""
    if isinstance(budget, Budget):
        return budget
    return Budget(read=budget, connect=DEFAULT_CONNECT)


def timeouts(budget: Budget | float) -> tuple[float, float]:
    """(connect, read) timeouts of one call: connecting should take far less than reading an
    answer. A bare number is a read budget with the default connect budget."""
    return as_budget(budget).timeout


class Deadline:
    """One budget for a chain of calls that answer one question (a weather lookup: geocode,
    maybe geocode again, forecast). Per-call budgets alone let a slow upstream take the
    budget once per call (3 x 12 s, past WeChat's last delivery); here the chain as a whole
    gets ``budget.read`` seconds from its first call, and each call only what is left.
    """

    def __init__(
        self, service: str, budget: Budget | float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service = service
        self.budget = as_budget(budget)
        self.clock = clock
        self._ends: float | None = None  # set by the first call

    def timeout(self) -> tuple[float, float]:
        """(connect, read) for the next call; ServiceError, without a call, when too little is
        left for one to be answered."""
        now = self.clock()
        if self._ends is None:
            self._ends = now + self.budget.read
        left = self._ends - now
        if left < MIN_CALL:
            raise ServiceError(self.service, "out of time")
        return (min(self.budget.connect, left), left)


def request_json(
    session: requests.Session,
    service: str,
    method: str,
    url: str,
    timeout: tuple[float, float],
    **kwargs: Any,
) -> Any:
    """Send one request and return its JSON body, or raise ServiceError with a reason for
    the log (timeout, unreachable, HTTP status, not JSON)."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise ServiceError(service, "timed out") from None
    except requests.RequestException as exc:
        raise ServiceError(service, f"unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise ServiceError(service, f"HTTP {response.status_code}")
    return parse_json(response, service)


NOT_JSON = object()  # what json_or_not gives for a body that is not JSON


def json_or_not(raw: bytes) -> Any:
    """A body as JSON (UTF-8, -16 or -32, as RFC 8259 allows), else NOT_JSON. JSON nested
    thousands deep raises RecursionError, which callers catching ValueError missed (the
    user got the system-error apology)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return NOT_JSON


def parse_json(response: requests.Response, service: str) -> Any:
    """The JSON of an answer, decoded strictly: in the charset its Content-Type names, else
    UTF-8 (JSON's own). ``response.json()`` turns undecodable bytes into U+FFFD, and a user
    would read a place name like 「����」."""
    declared = requests.utils.get_encoding_from_headers(response.headers)
    charset = declared if declared and declared.lower() != "iso-8859-1" else "utf-8"
    try:
        return json.loads(response.content.decode(charset).lstrip("\ufeff"))
    except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError
        raise ServiceError(service, "answered with something that is not JSON") from None


def get_json(
    session: requests.Session,
    service: str,
    url: str,
    params: dict[str, Any],
    timeout: tuple[float, float],
) -> Any:
    """GET ``url`` and return its JSON body (see request_json)."""
    return request_json(session, service, "GET", url, timeout, params=params)


class TTLCache(Generic[T]):
    """A small thread-safe LRU cache whose entries expire after ``ttl`` seconds.

    Per process on purpose: weather and search results are cheap to fetch again, so sharing
    them across containers through the database would cost more round trips than it saves.
    """

    def __init__(
        self, ttl: float, maxsize: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self.clock = clock
        self._data: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= self.clock():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._data[key] = (self.clock() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_fetch(self, key: Hashable, fetch: Callable[[], T]) -> T:
        """The cached value, or ``fetch()``'s (cached on success; errors are not cached)."""
        value = self.get(key)
        if value is None:
            value = fetch()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
