"""Background jobs (vms/jobs.py): progress, success, failure messages, cancellation."""

from __future__ import annotations

import threading

import pytest

from storage.format.blobs import BlobError
from vms.core.errors import DomainError, Kind
from vms.evidence.jobs import JobRunner, JobState, describe_failure, job_progress_percent


@pytest.fixture
def runner():
    r = JobRunner(workers=1)
    yield r
    r.shutdown()


def test_progress_then_result(runner):
    gate, seen = threading.Event(), threading.Event()

    def work(progress):
        progress.update(5, 10, "halfway")
        seen.set()
        gate.wait(5)
        return "done"

    job = runner.submit("export", work)
    assert seen.wait(5)
    mid = runner.status(job)
    assert (mid.state, mid.frames_done, mid.frames_total, mid.percent, mid.message) == \
        (JobState.RUNNING, 5, 10, 50.0, "halfway")
    gate.set()
    final = runner.wait(job, 5)
    assert (final.state, final.result, final.percent, final.error) == (JobState.SUCCEEDED, "done", 100.0, None)
    assert (final.frames_done, final.frames_total) == (5, 5)  # at 100 %: what was done, not the first estimate
    assert final.finished_us >= final.started_us >= final.created_us


def test_failure_says_why_without_internals(runner):
    def domain(_):
        raise DomainError(Kind.NOT_FOUND, "camera 'x' is unknown to this appliance")

    def internal(_):
        raise ValueError("secret detail that must not reach the API")

    assert runner.wait(runner.submit("export", domain), 5).error == "camera 'x' is unknown to this appliance"
    status = runner.wait(runner.submit("export", internal), 5)
    assert status.state == JobState.FAILED and "secret" not in status.error and "ValueError" in status.error
    assert "chunk 3" in describe_failure(BlobError("/x/p.vpkg", 3, "authentication failed"))


def test_cancel_stops_at_the_next_update(runner):
    started = threading.Event()
    finished = []

    def work(progress):
        started.set()
        for i in range(10_000):
            progress.update(i, 10_000)
            threading.Event().wait(0.001)
        finished.append(True)

    job = runner.submit("export", work)
    assert started.wait(5)
    runner.cancel(job)
    status = runner.wait(job, 5)
    assert status.state == JobState.CANCELLED and not finished


def test_on_finish_sees_the_final_state_and_unknown_jobs_are_not_found():
    seen = []
    r = JobRunner(on_finish=seen.append)
    try:
        r.wait(r.submit("export", lambda p: 42), 5)
    finally:
        r.shutdown()
    assert seen[0].state == JobState.SUCCEEDED and seen[0].result == 42
    with pytest.raises(DomainError) as exc:
        r.status("nope")
    assert exc.value.kind == Kind.NOT_FOUND


def test_percent_never_reaches_100_before_the_end():
    assert job_progress_percent(120, 100, finished=False) == 99.0
    assert job_progress_percent(0, 0, finished=False) == 0.0
    assert job_progress_percent(1, 3, finished=False) == 33.3
    assert job_progress_percent(0, 0, finished=True) == 100.0
