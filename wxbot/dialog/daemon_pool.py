"""A bounded pool of daemon threads: slow work a stopping worker need not wait for."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger("wxbot.dialog.slow")  # its tasks are the slow path's


class DaemonThreads:
    """A bounded pool of daemon threads for slow work.

    Not ThreadPoolExecutor: Python joins its threads at exit with no bound, so a call that
    never returned held a stopping worker until gunicorn's SIGKILL, which then lost the work
    without a word. Here ``SlowPath.close`` decides how long to wait and owns up to the rest;
    the threads die with the process.
    """

    def __init__(self, size: int, name: str) -> None:
        self._size, self._name = size, name
        self._tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # threads waiting for a task
        self._lock = threading.Lock()
        self._started = 0

    def submit(self, task: Callable[[], None]) -> None:
        self._tasks.put(task)
        if self._idle.acquire(blocking=False):
            return  # an idle thread takes it
        with self._lock:
            if self._started >= self._size:
                return  # queued for the next free thread
            self._started += 1
            name = f"{self._name}_{self._started}"
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def _serve(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                task()
            except BaseException:  # a task's bug must not cost the pool a thread
                log.exception("slow work crashed")
            # An idle thread must not keep its last task (the message, the bot it ran for)
            # alive until the next one arrives, maybe never.
            del task
            self._idle.release()
