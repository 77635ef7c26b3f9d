"""One small helper for the services' timers: run a function every N seconds on a daemon thread.

A failed round is logged (class name only: messages may name files or people) and
the next round runs as planned; :meth:`Periodic.stop` wakes the thread at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval_s: float, fn: Callable[[], object], *, run_first: bool = False):
        self.name, self.interval_s, self._fn, self._run_first = name, interval_s, fn, run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        if self._run_first:
            self._round()
        while not self._stop.wait(self.interval_s):
            self._round()

    def _round(self) -> None:
        try:
            self._fn()
        except Exception as exc:  # keep the timer alive; the next round retries
            log.warning("%s: round failed (%s)", self.name, exc.__class__.__name__)
