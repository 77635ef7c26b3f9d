"""Export jobs for tickets: the access checks and audit around :mod:`vms.evidence.export`.

* :func:`start` checks the caller and the ticket (:func:`vms.access.tickets.export_check`:
  requester or a manager; an approved *export* ticket inside its access
  window), builds the :class:`~vms.evidence.export.ExportRequest` from the ticket and
  queues :func:`vms.evidence.export.export_package` on the appliance's job runner.
  The start (or its refusal) is audited as ``export.start``.
* The job, when the package is sealed, moves the ticket to ``exported``
  through :func:`vms.access.tickets.mark_exported` (audited ``ticket.exported`` with
  the package id, size and manifest hash).  If that is refused (the access
  window ended meanwhile) the package is deleted again and the job fails.
  A failed or cancelled job is audited as ``export.failed`` / ``export.cancel``
  with its one-line reason; the exporter leaves no partial package.
* :func:`status` / :func:`jobs_of_ticket` show progress (percent, frames done,
  state, error, package id) to the ticket's requester and to managers.
* :func:`packages_of_ticket` lists a ticket's packages (sidecars) with their links.

One :class:`~vms.evidence.jobs.JobRunner` (one worker: exports queue) per appliance,
made on first use (:func:`runner`) and shut down by :func:`shutdown` (the API
app's lifespan).  Jobs live in memory; a restart forgets them.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from vms.access import policy, tickets
from vms.access.audit import Actor, audited
from vms.core.counters import EXPORT_JOBS
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.doorlog import lookup
from vms.evidence import delivery, doorlog_csv
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.jobs import JobRunner, JobState, JobStatus
from vms.evidence.packages import PackageInfo
from vms.evidence.redact import RedactionOptions

RECIPIENT_NAMES = {"internal": "internal (staff of the appliance's owner)", "police": "police", "ssp": "SSP",
                   "data_subject": "the data subject"}


@dataclass(frozen=True)
class _Meta:
    ticket_id: int
    requester_id: int  # the ticket's requester
    started_by: int  # user id
    actor: Actor


@dataclass(frozen=True)
class ExportJob:
    """A job as the API shows it (no footage, no keys)."""

    job_id: str
    ticket_id: int
    started_by: str
    state: str  # queued | running | succeeded | failed | cancelled
    percent: float
    frames_done: int
    frames_total: int
    message: str
    error: str | None
    package_id: str | None
    created_us: int
    started_us: int | None
    finished_us: int | None


@dataclass(frozen=True)
class PackageView:
    info: PackageInfo
    deliveries: tuple[delivery.DeliveryView, ...]

    @property
    def live_links(self) -> int:
        return sum(d.state == "live" for d in self.deliveries)


class ExportJobs:
    """An appliance's export jobs: the runner (one worker) and what each job is for.  Built with the
    :class:`~vms.appliance.Appliance` and held by it (``app.export_jobs``)."""

    def __init__(self, app):
        self.meta: dict[str, _Meta] = {}
        self.lock = threading.Lock()
        self.runner = JobRunner(workers=1, clock=app.clock, on_finish=lambda st: _finished(app, self, st))


def _jobs(app) -> ExportJobs:
    return app.export_jobs


def runner(app) -> JobRunner:
    """The appliance's job runner."""
    return _jobs(app).runner


def shutdown(app) -> None:
    """Cancel running exports and stop the runner (they leave no partial package); a later export on the
    same appliance gets a fresh runner."""
    old, app.export_jobs = app.export_jobs, ExportJobs(app)
    old.runner.shutdown(cancel=True, wait=True)


def _audit(app, actor: Actor, action: str, ticket_id: int, *, obj: str = "", outcome: str = "ok",
           detail: str = "") -> None:
    with audited(app.engine, app.clock, actor, action, obj=obj or f"ticket:{ticket_id}", ticket_id=ticket_id) as (_s, e):
        e.outcome, e.detail = outcome[:500], detail[:2000]


def build_request(app, view: tickets.TicketView, *, redaction: RedactionOptions, recipient: str | None,
                  doorlog: doorlog_csv.DoorlogExtract | None = None) -> ExportRequest:
    """The manifest's facts, from the ticket (``recipient`` names the receiving body; default: the ticket's kind)."""
    if recipient is not None:
        recipient = delivery.check_recipient(recipient)
    return ExportRequest(
        ticket_id=str(view.id), description=view.description, legal_basis=view.legal_basis,
        requester=view.requester, approver=view.decided_by or "?",
        recipient=recipient or RECIPIENT_NAMES.get(view.recipient, view.recipient), cameras=view.cameras,
        start_us=view.start_us, end_us=view.end_us, redaction=redaction,
        expires_us=delivery.undelivered_expiry(app, app.clock.now_us()), doorlog=doorlog,
    )


def doorlog_extract(app, principal, view: tickets.TicketView) -> doorlog_csv.DoorlogExtract | None:
    """The passages at the ticket's doors in its window (one audited lookup), for the package's CSV."""
    if not view.doors:
        return None
    found = lookup.at_doors(app, principal, view.id)
    return doorlog_csv.DoorlogExtract(view.doors, view.start_us, view.end_us, tuple(found))


def start(app, principal, ticket_id: int, *, redaction: RedactionOptions | None = None,
          recipient: str | None = None) -> ExportJob:
    """Queue an export of the ticket's footage; refusals say why and are audited."""
    redaction = redaction or RedactionOptions()
    try:
        view = tickets.export_check(app, principal, ticket_id)
        subject = redaction.subject
        if subject is not None and (subject.camera_id not in view.cameras
                                    or not view.start_us <= subject.at_us < view.end_us):
            raise DomainError(Kind.INVALID, "redaction.subject: mark the data subject on one of the ticket's cameras "
                                            "at a moment inside its window", key=N_("subject.outside_ticket"))
        request = build_request(app, view, redaction=redaction, recipient=recipient,
                                doorlog=doorlog_extract(app, principal, view))
    except DomainError as exc:
        _audit(app, principal.actor, "export.start", ticket_id, outcome=f"refused: {exc.message}")
        raise
    jobs = _jobs(app)
    actor = principal.actor
    meta = _Meta(ticket_id, view.requester_id, principal.user_id, actor)

    def work(progress):
        info = export_package(app, request, progress)
        try:
            tickets.mark_exported(app, actor, ticket_id, detail=(
                f"package={info.package_id} size_bytes={info.size_bytes} manifest_sha256={info.manifest_sha256} "
                f"redaction={redaction.summary()[:200]}"))
        except BaseException:
            package_store(app).delete(info.package_id)
            raise
        return info

    with jobs.lock:  # the job may finish before submit returns: its meta must exist first
        job_id = secrets.token_hex(8)
        jobs.meta[job_id] = meta
        jobs.runner.submit("export", work, job_id=job_id)
    _audit(app, actor, "export.start", ticket_id, detail=(
        f"job={job_id} cameras={','.join(view.cameras)} window={view.start_us}..{view.end_us} "
        f"redaction={redaction.summary()[:200]}"))
    return _public(jobs, jobs.runner.status(job_id))


_OUTCOMES = {JobState.SUCCEEDED: "done", JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}


def _finished(app, jobs: ExportJobs, st: JobStatus) -> None:
    EXPORT_JOBS.inc(outcome=_OUTCOMES.get(st.state, "failed"))
    with jobs.lock:
        meta = jobs.meta.get(st.job_id)
    if meta is None or st.state == JobState.SUCCEEDED:
        return  # success is audited by mark_exported, inside the job
    action = "export.cancel" if st.state == JobState.CANCELLED else "export.failed"
    _audit(app, meta.actor, action, meta.ticket_id, outcome=f"failed: {st.error}", detail=f"job={st.job_id}")


def _public(jobs: ExportJobs, st: JobStatus) -> ExportJob:
    meta = jobs.meta[st.job_id]
    package_id = st.result.package_id if st.state == JobState.SUCCEEDED and st.result is not None else None
    return ExportJob(st.job_id, meta.ticket_id, meta.actor.name, st.state.value, st.percent, st.frames_done,
                     st.frames_total, st.message, st.error, package_id, st.created_us, st.started_us, st.finished_us)


def _may_see(principal, meta: _Meta) -> bool:
    return policy.export_job_visible(principal.role, principal.user_id, meta.requester_id, meta.started_by)


def status(app, principal, job_id: str) -> ExportJob:
    jobs = _jobs(app)
    with jobs.lock:
        meta = jobs.meta.get(job_id)
    if meta is None or not _may_see(principal, meta):
        raise DomainError(Kind.NOT_FOUND, f"export job {job_id[:40]} is unknown (or not yours; jobs are "
                                          "forgotten when the appliance restarts)",
                                          key=N_("export.err.unknown_job"), params={"id": job_id[:40]})
    return _public(jobs, jobs.runner.status(job_id))


def cancel(app, principal, job_id: str) -> ExportJob:
    """Stop a queued or running export (whoever may see it); it leaves no package."""
    status(app, principal, job_id)  # may the caller see it?
    jobs = _jobs(app)
    jobs.runner.cancel(job_id)
    return _public(jobs, jobs.runner.status(job_id))


def jobs_of_ticket(app, principal, ticket_id: int) -> list[ExportJob]:
    tickets.get(app, principal, ticket_id)  # may the caller read the ticket?
    jobs = _jobs(app)
    with jobs.lock:
        ids = [j for j, m in jobs.meta.items() if m.ticket_id == ticket_id and _may_see(principal, m)]
    return sorted((_public(jobs, jobs.runner.status(j)) for j in ids), key=lambda j: j.created_us)


def packages_of_ticket(app, principal, ticket_id: int) -> list[PackageView]:
    """The ticket's packages, oldest first, with their delivery links (no tokens)."""
    view = tickets.get(app, principal, ticket_id)
    policy.enforce(policy.role_refusal(principal.role, policy.Action.EXPORT))
    infos = [i for i in package_store(app).list() if i.ticket_id == str(view.id)]
    links = delivery.links_of_packages(app, [i.package_id for i in infos])
    return [PackageView(i, tuple(links[i.package_id])) for i in infos]
