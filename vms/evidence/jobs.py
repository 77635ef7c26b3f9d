"""Background jobs with progress (exports; anything long that a person waits for).

A job is a function ``work(progress) -> result`` run on a small thread pool.
It reports ``progress.update(frames_done, frames_total)`` and may be cancelled
(the next update raises :class:`JobCancelled`).  :meth:`JobRunner.status` is a
snapshot safe to hand to the API at any time.

Contracts:

* A failed job keeps a one-line ``error`` for people: a :class:`DomainError`'s
  message, a storage integrity error's message (they name files and chunks,
  never keys), otherwise only the exception's class name; the traceback goes to
  the log.  Cleaning up (e.g. removing a partial package) is the work
  function's business and has happened when the job is reported failed.
* ``on_finish(status)`` runs on the worker thread after the job's final state
  is set (the API writes its audit entry there, in its own transaction).
* Jobs live in memory: a restart forgets them (and the exporter leaves no
  partial package behind).  docs/design/export.md describes the table that
  will keep them.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from storage.format.blobs import BlobError
from storage.format.segment import SegmentError
from storage.keys.keyring import KeyError_
from vms.core.clock import Clock
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

log = logging.getLogger(__name__)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobCancelled(Exception):
    """Raised inside a job when it has been asked to stop."""


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    kind: str
    state: JobState
    frames_done: int = 0
    frames_total: int = 0
    percent: float = 0.0
    message: str = ""
    error: str | None = None
    result: Any = None
    created_us: int = 0
    started_us: int | None = None
    finished_us: int | None = None


def job_progress_percent(frames_done: int, frames_total: int, *, finished: bool) -> float:
    """0..100; never 100 before the job has finished (totals are estimates)."""
    if finished:
        return 100.0
    if frames_total <= 0:
        return 0.0
    return round(min(99.0, 100.0 * frames_done / frames_total), 1)


def describe_failure(exc: BaseException) -> str:
    """The one line a person sees for a failed job (no secrets, no footage)."""
    if isinstance(exc, DomainError):
        return exc.message
    if isinstance(exc, SegmentError | BlobError | KeyError_):
        return f"integrity or key error: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        return f"I/O error ({exc.__class__.__name__}: {exc.strerror or 'see the log'})"
    return f"internal error ({exc.__class__.__name__}); see the appliance log"


class Progress:
    """Handed to the work function; thread-safe."""

    def __init__(self, runner: JobRunner, job_id: str):
        self._runner, self.job_id = runner, job_id
        self.cancelled = threading.Event()

    def update(self, frames_done: int, frames_total: int | None = None, message: str | None = None) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()
        self._runner._update(self.job_id, frames_done, frames_total, message)

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()


class JobRunner:
    def __init__(
        self,
        *,
        workers: int = 1,
        clock: Clock | None = None,
        on_finish: Callable[[JobStatus], None] | None = None,
        new_id: Callable[[], str] = lambda: secrets.token_hex(8),
    ):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._clock = clock or Clock()
        self._on_finish = on_finish
        self._new_id = new_id
        self._lock = threading.Lock()
        self._jobs: dict[str, JobStatus] = {}
        self._progress: dict[str, Progress] = {}
        self._done: dict[str, threading.Event] = {}

    def submit(self, kind: str, work: Callable[[Progress], Any], *, job_id: str | None = None) -> str:
        job_id = job_id or self._new_id()
        with self._lock:
            if job_id in self._jobs:
                raise DomainError(Kind.CONFLICT, f"job {job_id} exists already")
            self._jobs[job_id] = JobStatus(job_id, kind, JobState.QUEUED, created_us=self._clock.now_us())
            self._progress[job_id] = Progress(self, job_id)
            self._done[job_id] = threading.Event()
        self._pool.submit(self._run, job_id, work)
        return job_id

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise DomainError(Kind.NOT_FOUND, f"job {job_id} is unknown (finished before a restart?)",
                                  key=N_("export.err.unknown_job"), params={"id": job_id[:40]}) from None

    def jobs(self) -> list[JobStatus]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_us)

    def cancel(self, job_id: str) -> JobStatus:
        """Ask a job to stop; a queued job never starts, a running one stops at its next update."""
        self.status(job_id)
        self._progress[job_id].cancelled.set()
        return self.status(job_id)

    def wait(self, job_id: str, timeout_s: float | None = None) -> JobStatus:
        self.status(job_id)
        self._done[job_id].wait(timeout_s)
        return self.status(job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's status (the API keeps what it needs)."""
        with self._lock:
            if self._jobs.get(job_id) and self._jobs[job_id].state in FINAL:
                del self._jobs[job_id], self._progress[job_id], self._done[job_id]

    def shutdown(self, *, cancel: bool = True, wait: bool = True) -> None:
        if cancel:
            for p in list(self._progress.values()):
                p.cancelled.set()
        self._pool.shutdown(wait=wait, cancel_futures=False)

    # -- worker side -----------------------------------------------------------------

    def _set(self, job_id: str, **changes) -> JobStatus:
        with self._lock:
            status = self._jobs[job_id] = replace(self._jobs[job_id], **changes)
            return status

    def _update(self, job_id: str, frames_done: int, frames_total: int | None, message: str | None) -> None:
        with self._lock:
            cur = self._jobs[job_id]
            total = cur.frames_total if frames_total is None else frames_total
            self._jobs[job_id] = replace(
                cur,
                frames_done=frames_done,
                frames_total=total,
                percent=job_progress_percent(frames_done, total, finished=False),
                message=cur.message if message is None else message,
            )

    def _run(self, job_id: str, work: Callable[[Progress], Any]) -> None:
        progress = self._progress[job_id]
        try:
            if progress.cancelled.is_set():
                raise JobCancelled()
            self._set(job_id, state=JobState.RUNNING, started_us=self._clock.now_us())
            result = work(progress)
        except JobCancelled:
            final = self._set(job_id, state=JobState.CANCELLED, error="cancelled", finished_us=self._clock.now_us())
        except BaseException as exc:  # a job must never take the worker thread down
            log.error("job %s failed: %s", job_id, describe_failure(exc), exc_info=not isinstance(exc, DomainError))
            final = self._set(job_id, state=JobState.FAILED, error=describe_failure(exc), finished_us=self._clock.now_us())
        else:
            cur = self.status(job_id)
            final = self._set(
                job_id, state=JobState.SUCCEEDED, result=result, percent=100.0,
                # the estimate came from whole segments; at the end the count is what was done
                frames_total=cur.frames_done or cur.frames_total, finished_us=self._clock.now_us(),
            )
        try:
            if self._on_finish is not None:
                self._on_finish(final)
        except Exception:
            log.exception("job %s: on_finish hook failed", job_id)
        finally:
            self._done[job_id].set()
