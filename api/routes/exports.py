"""Exports of approved export tickets: background jobs with progress, and the packages they make.

* ``POST /api/tickets/{id}/exports`` (the ticket's requester or a manager; an
  approved export ticket inside its access window) queues the export and
  answers 202 with the job and its ``status_url``.
* ``GET /api/exports/{job_id}`` polls it: state, percent, frames done, the
  error for people, and ``package_id`` once it succeeded.
  ``POST /api/exports/{job_id}/cancel`` stops it (no package is left).
* ``GET /api/tickets/{id}/exports`` and ``GET /api/tickets/{id}/packages`` list
  a ticket's jobs (since the last restart) and packages (with link counts).
* ``DELETE /api/packages/{package_id}`` (a manager) deletes a package now and
  revokes its links.
* ``GET /api/packages/{package_id}/clips/{n}`` lets a manager who did not file a request of access watch
  its export's video files before approving it (``POST /api/packages/{package_id}/release``); byte ranges
  for seeking (vms/evidence/release.py).

Domain: :mod:`vms.evidence.export_jobs` and :func:`vms.evidence.delivery.delete_package`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, Strict

from api import deps
from api.schemas import Body, CameraNamePublic, Decision, Flag, Instant, Line, camera_name, from_us, to_us
from vms.evidence import delivery, export_jobs, release
from vms.evidence.redact import RedactionOptions, Zone
from vms.evidence.subject import Subject
from vms.recording.names import CameraNames

router = APIRouter(prefix="/api", tags=["exports"], dependencies=[Depends(deps.signed_in)])
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="export job id")]
PackageId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="package id")]
Fraction01 = Annotated[float, Strict(), Field(ge=0, le=1)]


class ZoneIn(Body):
    """A privacy zone masked in every frame: a rectangle in fractions of the picture."""

    x: Fraction01
    y: Fraction01
    width: Annotated[float, Strict(), Field(gt=0, le=1)]
    height: Annotated[float, Strict(), Field(gt=0, le=1)]


class SubjectIn(Body):
    """The data subject of a request of access, marked in one frame: kept visible, everyone else hidden."""
    camera: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    at: Instant
    x: Fraction01
    y: Fraction01
    width: Annotated[float, Strict(), Field(gt=0, le=1)]
    height: Annotated[float, Strict(), Field(gt=0, le=1)]


class RedactionIn(Body):
    subject: SubjectIn | None = Field(None, description="a request of access: the person to keep visible (faces and "
                                                        "moving people around them are hidden)")
    faces: Flag = Field(False, description="blur faces (CenterFace detector on every frame)")
    moving: Flag = Field(False, description="blur moving objects and people (background subtraction)")
    zones: list[ZoneIn] = Field(default_factory=list, max_length=16, description="privacy zones to mask")


class ExportCreate(Body):
    redaction: RedactionIn | None = Field(None, description="omit for footage exactly as recorded (no re-encode)")
    recipient_name: Line(200) | None = Field(None, description="receiving body named in the manifest "
                                                                "(default: the ticket's recipient kind)")


class ExportJobPublic(BaseModel):
    job_id: str
    ticket_id: int
    started_by: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    percent: float
    frames_done: int
    frames_total: int
    message: str
    error: str | None = Field(description="why the job failed, for people")
    package_id: str | None = Field(description="the package, once the job succeeded")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_url: str


class PackagePublic(BaseModel):
    package_id: str
    ticket_id: str
    cameras: list[str]
    camera_names: list[CameraNamePublic]  # the same cameras as people read them
    created_at: datetime
    expires_at: datetime | None = Field(description="when the appliance deletes it (follows its delivery links)")
    size_bytes: int
    filename: str
    manifest_sha256: str
    key_fingerprint: str
    redacted: bool
    links_live: int
    links_total: int


def job_public(j: export_jobs.ExportJob) -> ExportJobPublic:
    return ExportJobPublic(
        job_id=j.job_id, ticket_id=j.ticket_id, started_by=j.started_by, state=j.state, percent=j.percent,
        frames_done=j.frames_done, frames_total=j.frames_total, message=j.message, error=j.error,
        package_id=j.package_id, created_at=from_us(j.created_us), started_at=from_us(j.started_us),
        finished_at=from_us(j.finished_us), status_url=f"/api/exports/{j.job_id}",
    )


def package_public(p: export_jobs.PackageView, names: CameraNames) -> PackagePublic:
    i = p.info
    return PackagePublic(
        package_id=i.package_id, ticket_id=i.ticket_id, cameras=list(i.cameras), created_at=from_us(i.created_us),
        camera_names=[camera_name(names[c]) for c in i.cameras],
        expires_at=from_us(i.expires_us), size_bytes=i.size_bytes, filename=i.filename,
        manifest_sha256=i.manifest_sha256, key_fingerprint=i.key_fingerprint, redacted=i.redacted,
        links_live=p.live_links, links_total=len(p.deliveries),
    )


def redaction_options(body: RedactionIn | None) -> RedactionOptions:
    if body is None:
        return RedactionOptions()
    zones = tuple(Zone(z.x, z.y, z.width, z.height) for z in body.zones)  # DomainError (422) if outside the picture
    subject = None if body.subject is None else Subject(body.subject.camera, to_us(body.subject.at), body.subject.x,
                                                        body.subject.y, body.subject.width, body.subject.height)
    return RedactionOptions(faces=body.faces, moving=body.moving, zones=zones, subject=subject)


@router.post("/tickets/{ticket_id}/exports", response_model=ExportJobPublic, status_code=202,
             summary="Export an approved export ticket's footage as a signed package (background job)",
             responses={403: {"description": "not the requester or a manager; a view-only ticket; window over"},
                        409: {"description": "the ticket is not approved (or is closed, expired)"}})
def start_export(ticket_id: TicketId, principal: deps.Exporter, app: deps.ApplianceDep, response: Response,
                 body: ExportCreate | None = None) -> ExportJobPublic:
    body = body or ExportCreate()
    job = export_jobs.start(app, principal, ticket_id, redaction=redaction_options(body.redaction),
                            recipient=body.recipient_name)
    response.headers["Location"] = f"/api/exports/{job.job_id}"
    return job_public(job)


@router.get("/exports/{job_id}", response_model=ExportJobPublic, summary="Progress of an export job")
def job_status(job_id: JobId, principal: deps.Exporter, app: deps.ApplianceDep) -> ExportJobPublic:
    return job_public(export_jobs.status(app, principal, job_id))


@router.post("/exports/{job_id}/cancel", response_model=ExportJobPublic,
             summary="Cancel an export job (it stops at its next progress report and leaves no package)")
def cancel_job(job_id: JobId, principal: deps.Exporter, app: deps.ApplianceDep) -> ExportJobPublic:
    return job_public(export_jobs.cancel(app, principal, job_id))


@router.get("/tickets/{ticket_id}/exports", response_model=list[ExportJobPublic],
            summary="A ticket's export jobs since the appliance started")
def ticket_jobs(ticket_id: TicketId, principal: deps.Exporter, app: deps.ApplianceDep) -> list[ExportJobPublic]:
    return [job_public(j) for j in export_jobs.jobs_of_ticket(app, principal, ticket_id)]


@router.get("/tickets/{ticket_id}/packages", response_model=list[PackagePublic],
            summary="A ticket's evidence packages (encrypted on the appliance until their delivery expires)")
def ticket_packages(ticket_id: TicketId, principal: deps.Exporter, app: deps.ApplianceDep) -> list[PackagePublic]:
    names = CameraNames(app.engine)
    return [package_public(p, names) for p in export_jobs.packages_of_ticket(app, principal, ticket_id)]


@router.delete("/packages/{package_id}", status_code=204, response_class=Response,
               summary="Delete a package now (a manager): its key is destroyed and its links revoked")
def delete_package(package_id: PackageId, principal: deps.DeliveryManager, app: deps.ApplianceDep) -> Response:
    delivery.delete_package(app, principal, package_id)
    return Response(status_code=204)


@router.post("/packages/{package_id}/release", status_code=204, response_class=Response,
             summary="Approve a request of access's export for delivery to the data subject (a manager other than "
                     "the requester, after reviewing it)")
def release_package(package_id: PackageId, body: Decision, principal: deps.PackageReviewer,
                    app: deps.ApplianceDep) -> Response:
    release.release(app, principal, package_id, reason=body.reason)
    return Response(status_code=204)


BYTES = re.compile(r"^bytes=(\d{1,15})-(\d{0,15})$")


@router.get("/packages/{package_id}/clips/{n}", response_class=Response,
            summary="Watch a video file of a request of access's export before approving it (a manager other than "
                    "the requester; audited)",
            responses={200: {"content": {"video/mp4": {}}, "description": "the clip (fragmented MP4)"},
                       206: {"description": "the byte range asked for (Range: bytes=first-last)"},
                       403: {"description": "not a manager, or the manager who filed the request"},
                       404: {"description": "no such package or clip"},
                       409: {"description": "no request of access's package, or exported as recorded"}})
def preview_clip(package_id: PackageId, n: Annotated[int, Path(ge=0, le=9999, description="clip number, from 0")],
                 principal: deps.PackageReviewer, app: deps.ApplianceDep,
                 range_: Annotated[str | None, Header(alias="Range", max_length=64)] = None) -> Response:
    match = BYTES.match(range_ or "")  # other forms of Range (suffix, several ranges) get the whole clip
    byte_range = (int(match[1]), int(match[2]) if match[2] else None) if match else None
    clip = release.open_preview(app, principal, package_id, n, byte_range)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes",
               "Content-Length": str(clip.last - clip.first + 1), "Content-Disposition": "inline"}
    if byte_range is None:
        return StreamingResponse(clip.chunks, media_type="video/mp4", headers=headers)
    headers["Content-Range"] = f"bytes {clip.first}-{clip.last}/{clip.size_bytes}"
    return StreamingResponse(clip.chunks, status_code=206, media_type="video/mp4", headers=headers)
