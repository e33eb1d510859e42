"""A TCP proxy on 127.0.0.1 that can cut the line: every open connection dropped, new ones
refused (the listening socket is closed), for a while. Placed between servers and MariaDB
it plays a database blip (a failover, a network partition, a restart)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CuttableProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self.port = self._listen(0)
        self.cuts = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _listen(self, port: int) -> int:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return listener.getsockname()[1]

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: a cut, or stop()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for ``seconds`` (blocks meanwhile)."""
        self.cuts += 1
        self._close_listener()
        with self._lock:
            victims = list(self._open)
        for sock in victims:
            self._close(sock)
        time.sleep(seconds)
        for _ in range(50):  # the old socket may take a moment to let go of the port
            if self._stopped.is_set():
                return
            try:
                self._listen(self.port)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"could not listen on {self.port} again")

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        with self._lock:
            victims = list(self._open)
        for sock in victims:
            self._close(sock)
