"""A deadline on the whole outbound call: one watchdog thread, watched connections, names
resolved in threads of their own (the sessions of wxbot/services/http.py use them).

requests' timeouts are per socket operation: http.client reads the status line and each
header line with a recv of its own, each waiting up to the read timeout (a server sending a
header byte every 0.3 s held a 0.5 s call for 37 s), and getaddrinfo ignores timeouts. So a
call through http.BoundedAdapter has a deadline, its read budget from the moment it is sent
(connect, request, status line, headers, body). One watchdog thread keeps the deadlines in a
heap; when one passes it shuts the call's socket down (socket.shutdown: a blocked recv
returns at once) and the call fails as a timeout. A connection knows which call is using it
(set when the call connects it or sends a request on it, cleared when it goes back to the
pool or is closed): a late watchdog never touches a connection another call has taken.
Names are resolved in a thread of their own and waited for within the connect budget.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import math
import os
import socket
import threading
import time
from contextlib import suppress
from typing import Any

import urllib3
import urllib3.connection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

TIME_UP = "the call's time was up"
_RECHECK = 0.1  # seconds: a call still running past its deadline is cut again this often
LOCAL = threading.local()  # .call: the _Call this thread is making (BoundedAdapter.send)


class _Call:
    """One call's deadline, and the connection it last used."""

    __slots__ = ("ends", "conn", "fired", "done")

    def __init__(self, ends: float) -> None:
        self.ends = ends
        self.conn: _Watched | None = None
        self.fired = False  # the deadline passed while the call was running
        self.done = False


def _shut(sock: Any) -> None:
    """Shut ``sock`` down for both directions: a recv blocked on it returns (empty)."""
    while sock is not None and not isinstance(sock, socket.socket):
        sock = getattr(sock, "socket", None)  # urllib3's SSLTransport (TLS in a TLS proxy)
    if sock is not None:
        with suppress(OSError):  # closed meanwhile, or never connected
            # socket.socket's own: SSLSocket.shutdown would also drop its SSL object, under
            # the feet of the thread reading from it.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One thread for every call's deadline (a heap; calls that end are dropped lazily)."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:  # also in a forked child: the thread and a held lock stay behind
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._heap: list[tuple[float, int, _Call]] = []
        self._order = itertools.count()
        self._sleeps_until = math.inf
        self._thread: threading.Thread | None = None
        self._live = 0  # calls armed and not yet disarmed

    def arm(self, ends: float) -> _Call:
        call = _Call(ends)
        with self.lock:
            self._live += 1
            if len(self._heap) > 2 * self._live + 1024:  # mostly calls ended long ago
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (ends, next(self._order), call))
            if ends < self._sleeps_until:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="wxbot-deadlines", daemon=True
                    )
                    self._thread.start()
                self._wake.notify()
        return call

    def disarm(self, call: _Call) -> bool:
        """End the watch of ``call``; whether its deadline had passed (then its answer, even
        one that looks whole, may have been cut short)."""
        with self.lock:
            if not call.done:
                call.done = True
                self._live -= 1
            call.conn = None
            return call.fired

    def claim(self, conn: _Watched) -> None:
        """``conn`` is about to connect or send for this thread's call (if any)."""
        call = getattr(LOCAL, "call", None)
        if call is None:
            return
        with self.lock:
            conn._wxbot_call = call
            call.conn = conn
            if call.fired:  # no new connection, no new request once the time is up
                raise TimeoutError(TIME_UP)

    def disown(self, conn: Any) -> None:
        """``conn`` goes back to the pool (or is closed): no call's deadline concerns it."""
        if getattr(conn, "_wxbot_call", None) is not None:
            with self.lock:
                conn._wxbot_call = None

    def _run(self) -> None:
        with self.lock:
            while True:
                try:
                    self._cut_overdue()
                except Exception:  # never let the watch end
                    logging.getLogger(__name__).exception("the deadline watchdog failed")
                self._sleeps_until = self._heap[0][0] if self._heap else math.inf
                self._wake.wait(
                    None if not self._heap else max(self._sleeps_until - time.monotonic(), 0)
                )

    def _cut_overdue(self) -> None:
        now = time.monotonic()
        while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
            _, _, call = heapq.heappop(self._heap)
            if call.done:
                continue
            call.fired = True
            conn = call.conn
            if conn is not None and conn._wxbot_call is call:
                _shut(conn.sock)
            # Looked at again until the call ends: it may be between two sockets now.
            heapq.heappush(self._heap, (now + _RECHECK, next(self._order), call))


WATCHDOG = _Watchdog()


class _Lookup:
    """One getaddrinfo under way, in a thread of its own; callers wait for it with a timeout
    and those asking for the same name meanwhile share it (a broken resolver holds one
    thread per name, not one per call)."""

    lock = threading.Lock()
    running: dict[tuple[str, int, int], _Lookup] = {}

    def __init__(self, key: tuple[str, int, int]) -> None:
        self.key = key
        self.finished = threading.Event()
        self.found: list[Any] | None = None
        self.error: BaseException | None = None

    def _run(self) -> None:
        host, port, family = self.key
        try:
            self.found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
        except BaseException as exc:  # noqa: BLE001 - handed to the callers
            self.error = exc
        finally:
            with _Lookup.lock:
                if _Lookup.running.get(self.key) is self:
                    del _Lookup.running[self.key]
            self.finished.set()

    @classmethod
    def resolve(cls, host: str, port: int, wait: float) -> list[str] | None:
        """The addresses of ``host`` in getaddrinfo's order; TimeoutError past ``wait``
        seconds, socket.gaierror if the name does not resolve, None on any other failure
        (urllib3 then connects, and reports it, its own way)."""
        key = (host, port, int(allowed_gai_family()))
        with cls.lock:
            lookup = cls.running.get(key)
            start = lookup is None
            if lookup is None:
                lookup = cls.running[key] = cls(key)
        if start:
            threading.Thread(target=lookup._run, name="wxbot-resolve", daemon=True).start()
        if not lookup.finished.wait(wait):
            raise TimeoutError(f"resolving {host} took more than {wait:.3g} s")
        if isinstance(lookup.error, socket.gaierror):
            raise socket.gaierror(*lookup.error.args)  # a copy: each caller's own traceback
        if lookup.error is not None or lookup.found is None:
            return None
        addresses: list[str] = []
        for family, _, _, _, address in lookup.found:
            one = str(address[0])
            if family == socket.AF_INET6 and len(address) > 3 and address[3]:
                one = f"{one}%{address[3]}"  # a link-local address's scope
            if one not in addresses:
                addresses.append(one)
        return addresses


def _after_fork_in_child() -> None:
    WATCHDOG._reset()
    _Lookup.lock = threading.Lock()
    _Lookup.running = {}


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class _Watched(urllib3.connection.HTTPConnection):
    """A connection that tells the watchdog which call is using it, and resolves its host's
    name within what is left of the call's connect budget."""

    _wxbot_call: _Call | None = None

    def connect(self) -> None:
        WATCHDOG.claim(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        WATCHDOG.claim(self)
        super().request(*args, **kwargs)

    def close(self) -> None:
        WATCHDOG.disown(self)
        super().close()

    def _new_conn(self) -> socket.socket:
        call = getattr(LOCAL, "call", None)
        connect = self.timeout
        if call is None or not isinstance(connect, (int, float)):
            return super()._new_conn()  # no deadline (not through a BoundedAdapter)
        left = call.ends - time.monotonic()
        if call.fired or left <= 0:
            raise ConnectTimeoutError(self, f"Connection to {self.host}: {TIME_UP}")
        host = self._dns_host
        self.timeout = min(connect, left)  # each TCP connect: at most what is left
        try:
            if _is_address(host):
                return super()._new_conn()
            try:
                addresses = _Lookup.resolve(host, self.port, self.timeout)
            except socket.gaierror as exc:
                raise NameResolutionError(self.host, self, exc) from None
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {self.host}: {exc}") from None
            if addresses is None:
                return super()._new_conn()
            error: Exception = NewConnectionError(self, f"{host} has no address")
            for address in addresses:  # each in turn, as urllib3 would
                self._dns_host = address  # no second (slow) lookup: urllib3's takes the IP
                try:
                    return super()._new_conn()
                except (ConnectTimeoutError, NewConnectionError) as exc:
                    error = exc
                finally:
                    self._dns_host = host
                left = call.ends - time.monotonic()
                if call.fired or left <= 0:
                    break
                self.timeout = min(connect, left)
            raise error
        finally:
            self.timeout = connect


class _HTTPConnection(_Watched):
    pass


class _HTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection

    def _put_conn(self, conn: Any) -> None:
        WATCHDOG.disown(conn)  # before another call can take it
        super()._put_conn(conn)


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        WATCHDOG.disown(conn)
        super()._put_conn(conn)


POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}
