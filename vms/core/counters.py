"""In-process event counters, counted where the events happen and rendered by ``/metrics``.

The domain counts (``counters.SIGNIN_FAILURES.inc()`` in vms/access/auth.py, ``EXPORT_JOBS`` in
vms/evidence/export_jobs.py); vms/ops/metrics.py renders :data:`REGISTRY` in the Prometheus text format at
scrape time.  Counters live in the process that counts, so scrape the process that does the work
(``vms serve`` runs everything in one).  Thread-safe.
"""

from __future__ import annotations

import threading


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()):
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name}: labels {sorted(labels)} given, {sorted(self.labelnames)} expected")
        return tuple(str(labels[n]) for n in self.labelnames)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def samples(self) -> list[tuple[tuple[tuple[str, str], ...], float]]:
        with self._lock:
            return [(tuple(zip(self.labelnames, k, strict=True)), v) for k, v in sorted(self._values.items())]


class Counter(_Metric):
    """A number that only goes up (events counted since the process started)."""

    kind = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot go down")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount


class Gauge(_Metric):
    """A number that goes up and down (e.g. export jobs running now)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.inc(-amount, **labels)


class Registry:
    """Named in-process metrics; asking twice for one name returns the same metric."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _get(self, cls, name: str, help_text: str, labelnames: tuple[str, ...]):
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = cls(name, help_text, labelnames)
            elif type(metric) is not cls or metric.labelnames != tuple(labelnames):
                raise ValueError(f"metric {name} already exists as a {metric.kind} with labels {metric.labelnames}")
            return metric

    def counter(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()) -> Counter:
        return self._get(Counter, name, help_text, labelnames)

    def gauge(self, name: str, help_text: str, labelnames: tuple[str, ...] = ()) -> Gauge:
        return self._get(Gauge, name, help_text, labelnames)

    def metrics(self) -> list[_Metric]:
        with self._lock:
            return sorted(self._metrics.values(), key=lambda m: m.name)


REGISTRY = Registry()
EXPORT_JOBS = REGISTRY.counter(
    "vms_export_jobs_total", "Export jobs finished since the process started, by outcome (done, failed, cancelled)",
    ("outcome",))
EXPORT_JOBS_RUNNING = REGISTRY.gauge("vms_export_jobs_running", "Export jobs queued or running now")
SIGNIN_FAILURES = REGISTRY.counter(
    "vms_signin_failures_total", "Failed sign-in attempts since the process started (bad password, locked, disabled)")
