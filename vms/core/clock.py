"""Time sources.  Logic takes a :class:`Clock`, never calls ``datetime.now()``.

All times are UTC microseconds since the Unix epoch.  ``monotonic_s`` is for
measuring intervals; it does not jump when the wall clock is stepped.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def now_us(self) -> int:
        return time.time_ns() // 1000

    def monotonic_s(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock(Clock):
    """A clock the tests move.  ``sleep`` advances it instead of waiting."""

    def __init__(self, now_us: int = 1_767_225_600_000_000):  # 2026-01-01T00:00:00Z
        self._now_us = now_us
        self._mono = 0.0
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            return self._now_us

    def monotonic_s(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now_us += int(seconds * 1_000_000)
            self._mono += seconds

    def set(self, now_us: int) -> None:
        """Step the wall clock (as NTP might); the monotonic clock does not move."""
        with self._lock:
            self._now_us = now_us

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
