"""A message's age by WeChat's clock, which is not ours.

WeChat retries a message with the same CreateTime, so ``now - CreateTime`` tells which of its
three deliveries this is (about 0, 5 and 10 s old), even while the database is down. But
CreateTime is stamped by WeChat's clock and ``now`` read from ours (the database server's, see
wxbot.database_clock.DatabaseClock): a few seconds between them and the first delivery looks
like the last (slow work answered 「还在处理中」 at once, a blip apologised for while WeChat had
retries left), or the last like an earlier one (withheld on WeChat's last try: lost).

The offset is learned from the deliveries themselves. Most are first deliveries, which
arrive within about a second of their CreateTime; every message has one and at most two
retries, so a low percentile of the recent ages is a first delivery's
age. Outside a dead band around the normal value that says how far WeChat's clock is from
ours, and ages are corrected by it. Too few recent samples: no correction (as before).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW = 600.0  # seconds (monotonic) of deliveries that vote on the offset
MAX_SAMPLES = 256
MIN_SAMPLES = 10  # fewer recent deliveries tell nothing: no correction
PERCENTILE = 0.1  # of recent ages: a first delivery's, however many retries came along
FIRST_DELIVERY_AGE = 0.5  # a first delivery's usual age: CreateTime is whole seconds + network
DEAD_BAND = 1.0  # a low percentile this close to the usual age is no offset
PLAUSIBLE = 300.0  # ages beyond this (either way) are no delivery of ours to learn from
# An estimate is a sort of the samples: once a second, or after this many new samples
RECOMPUTE_EVERY, RECOMPUTE_AFTER = 1.0, 16
TELL_CHANGE = 2.0  # seconds the offset moves before it is logged again (no flapping lines)


class WeChatClock:
    """This process's estimate of ``our clock - WeChat's clock``, from recent deliveries."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._samples: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)  # (mono, age)
        self._lock = threading.Lock()
        self._offset = 0.0
        self._next_estimate = float("-inf")
        self._new_samples = 0  # since the last estimate
        self._told = 0.0  # the offset last logged

    def age(self, create_time: float, now: float) -> float:
        """The age of a delivery stamped ``create_time`` by WeChat, read at ``now`` by our
        clock, in WeChat's time; never negative."""
        seen = now - create_time
        if abs(seen) <= PLAUSIBLE:
            with self._lock:
                self._samples.append((self.monotonic(), seen))
                self._new_samples += 1
        return max(0.0, seen - self.offset())

    def offset(self) -> float:
        """How far our clock is ahead of WeChat's (negative: behind); 0 when unknown."""
        mono = self.monotonic()
        if mono < self._next_estimate and self._new_samples < RECOMPUTE_AFTER:
            return self._offset
        self._next_estimate = mono + RECOMPUTE_EVERY
        with self._lock:
            self._new_samples = 0
            while self._samples and self._samples[0][0] < mono - WINDOW:
                self._samples.popleft()
            ages = sorted(age for _, age in self._samples)
        offset = 0.0
        if len(ages) >= MIN_SAMPLES:
            off = ages[int(len(ages) * PERCENTILE)] - FIRST_DELIVERY_AGE
            offset = off if abs(off) > DEAD_BAND else 0.0
        if abs(offset - self._told) >= TELL_CHANGE:
            self._told = offset
            _tell(offset)
        self._offset = offset
        return offset


def _tell(offset: float) -> None:
    if not offset:
        log.info("WeChat's clock (CreateTime of recent messages) agrees with ours again")
        return
    log.warning(
        "WeChat's clock is about %.0f s %s ours (CreateTime of recent messages): deliveries "
        "are placed by WeChat's clock; check NTP on the database server",
        abs(offset),
        "behind" if offset > 0 else "ahead of",
    )
