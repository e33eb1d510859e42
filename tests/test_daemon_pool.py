"""The slow-work pool's threads hold nothing of a finished task while they wait for the next:
before, each idle thread kept its last job (message, closure, the Bot it ran for) alive,
possibly until the process exited."""

from __future__ import annotations

import gc
import threading
import weakref

from wxbot.dialog.daemon_pool import DaemonThreads


class Job:
    def __init__(self, done: threading.Event) -> None:
        self.done = done

    def __call__(self) -> None:
        self.done.set()


def test_an_idle_thread_keeps_no_reference_to_its_last_task() -> None:
    pool = DaemonThreads(2, "test-pool")
    done = threading.Event()
    job = Job(done)
    gone = weakref.ref(job)
    pool.submit(job)
    del job
    assert done.wait(5)
    for _ in range(200):  # the thread is between the task's end and its next wait
        gc.collect()
        if gone() is None:
            break
        threading.Event().wait(0.01)
    assert gone() is None
