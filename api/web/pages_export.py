"""Exports, delivery links and the recipient's page.

On a ticket's page (export tickets; the requester or a manager): start an
export (optionally redacted; for a request of access, the export for the data
subject with the box drawn around them on a frame: :func:`subject_of_form`,
/static/subject.js), follow its progress bar (``/static/web.js``
polls the API's ``GET /api/exports/{job}``), cancel it; see the packages.
Managers also create delivery links (the link and a generated passcode are
shown once, on the page answering the form, never in a redirect or a URL
that a log could keep), copy and revoke them, and delete a package.
``/exports`` lists every package on the appliance for managers.

The recipient (no account) opens ``/d/{token}``: the API's delivery route
calls :func:`delivery_page` (``app.state.delivery_page``) when a browser asks,
which shows what the link gives, asks for the passcode if one was set, and
offers the download (a form posting back to the same address, where the API
streams the ZIP) and how to verify the package (verify.html in the package,
Windows, macOS and Linux tools).  After a download the page shows when it
was downloaded and how many downloads are left, and keeps the instructions.

The domain decides everything (vms.evidence.export_jobs, vms.evidence.delivery): the same calls
as api/routes/exports.py and api/routes/deliveries.py, with their audit entries.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse

from api import deps
from api.web.i18n import error_text as i18n_error_text
from api.web.i18n import translator
from api.web.pages_tickets import ticket_number, ticket_page
from api.web.render import error_text, lang_of, render
from api.web.session import DeliveryManager, Exporter, FormDep, PackageReviewer, PageRefused, status_of
from vms.access.auth import LockedOut
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.numbers import decimal, id_number
from vms.evidence import delivery, export_jobs, release
from vms.evidence.export import package_store
from vms.evidence.redact import RedactionOptions
from vms.evidence.subject import Subject

router = APIRouter(include_in_schema=False)
JOB = re.compile(r"^[0-9a-f]{16}$")
PACKAGE = re.compile(r"^[0-9a-f]{32}$")


def _refuse_id(request: Request, text: str):
    raise PageRefused(404, translator(lang_of(request))("export.bad_id").format(text=text[:64]))


def _job_id(request: Request, job_id: Annotated[str, Path(max_length=64)]) -> str:
    return job_id if JOB.match(job_id) else _refuse_id(request, job_id)


def _package_id(request: Request, package_id: Annotated[str, Path(max_length=64)]) -> str:
    return package_id if PACKAGE.match(package_id) else _refuse_id(request, package_id)


def _delivery_id(request: Request, delivery_id: Annotated[str, Path(max_length=20)]) -> int:
    if (number := id_number(delivery_id)) is None:
        _refuse_id(request, delivery_id)
    return number


JobId = Annotated[str, Depends(_job_id)]
PackageId = Annotated[str, Depends(_package_id)]
DeliveryId = Annotated[int, Depends(_delivery_id)]
TicketId = Annotated[int, Depends(ticket_number)]


def _ticket(request: Request, principal, ticket_id: int, **kw):
    return ticket_page(request, principal, ticket_id, **kw)


BOX = ("x", "y", "width", "height")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def subject_of_form(request: Request, form) -> Subject | None:
    """The data subject marked on the ticket page (``subject_camera``, ``subject_at``: the frame's time as
    RFC 3339, ``subject_x`` .. ``subject_height``: the box in fractions of the frame); None without a camera.
    Anything else than a box inside the frame with a size is refused (422) saying which field and why."""
    camera = form.get("subject_camera").strip()
    if not camera:
        return None
    t = translator(lang_of(request))
    text = form.get("subject_at").strip()
    try:
        at = datetime.fromisoformat(text)
        if at.tzinfo is None:
            raise ValueError(text)
    except ValueError:
        raise DomainError(Kind.INVALID, f"subject_at {text[:40]!r}: show a frame and mark the person on it (the "
                                        "frame's time, RFC 3339 with a time zone)", key=N_("subject.no_frame")) from None
    box = {}
    for name in BOX:
        raw = form.get(f"subject_{name}").strip()
        try:
            box[name] = float(raw.replace(",", "."))
        except ValueError:
            box[name] = math.nan
        if not (math.isfinite(box[name]) and 0 <= box[name] <= 1):
            raise DomainError(Kind.INVALID, f"subject_{name} {raw[:20]!r}: a fraction of the frame, 0 to 1",
                              key=N_("subject.bad_number"), params={"field": t(f"subject.{name}"), "text": raw[:20]})
    if box["width"] * box["height"] == 0:
        raise DomainError(Kind.INVALID, "the box has no size: draw a rectangle around the person",
                          key=N_("subject.empty"))
    if box["x"] + box["width"] > 1 + 1e-9 or box["y"] + box["height"] > 1 + 1e-9:
        raise DomainError(Kind.INVALID, "the box reaches outside the frame (x + width and y + height at most 1)",
                          key=N_("subject.outside"))
    return Subject(camera, (at - EPOCH) // timedelta(microseconds=1), **box)


@router.post("/tickets/{ticket_id}/export")
def start_export(request: Request, principal: Exporter, ticket_id: TicketId, form: FormDep):
    app = request.app.state.appliance
    name = form.get("recipient_name").strip() or None
    try:
        subject = subject_of_form(request, form)
        redaction = RedactionOptions(faces=form.get("faces") == "on", moving=form.get("moving") == "on",
                                     subject=subject)
        export_jobs.start(app, principal, ticket_id, redaction=redaction, recipient=name)
    except DomainError as exc:
        return _ticket(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    return RedirectResponse(f"/tickets/{ticket_id}?done=export_started#export", status_code=303)


@router.post("/exports/{job_id}/cancel")
def cancel_export(request: Request, principal: Exporter, job_id: JobId):
    app = request.app.state.appliance
    try:
        job = export_jobs.cancel(app, principal, job_id)
    except DomainError as exc:
        raise PageRefused(status_of(exc), exc) from None
    return RedirectResponse(f"/tickets/{job.ticket_id}?done=export_cancelled#export", status_code=303)


def _int_field(form, name: str) -> int | None:
    text = form.get(name).strip()
    if not text:
        return None
    if (number := decimal(text, max_digits=6)) is None:
        raise DomainError(Kind.INVALID, f"{name}: a whole number", key=N_("input.whole_number"), params={"field": name})
    return number


def _package_ticket(app, package_id: str) -> int:
    try:
        info = package_store(app).info(package_id)
    except DomainError as exc:
        raise PageRefused(status_of(exc), exc) from None
    if (ticket_id := decimal(info.ticket_id)) is None:
        raise PageRefused(404, f"package {package_id} belongs to no ticket of this appliance")
    return ticket_id


@router.post("/packages/{package_id}/links")
def create_link(request: Request, principal: DeliveryManager, package_id: PackageId, form: FormDep):
    app = request.app.state.appliance
    ticket_id = _package_ticket(app, package_id)
    mode = form.get("passcode_mode")
    try:
        new = delivery.create_link(
            app, principal, package_id, recipient=form.get("recipient"),
            expires_h=_int_field(form, "expires_hours"), max_downloads=_int_field(form, "max_downloads"),
            passcode=form.get("passcode") if mode == "typed" else None, generate_passcode=mode == "generate")
    except DomainError as exc:
        return _ticket(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    url = deps.link_base(request) + new.path
    link = {"url": url, "passcode": new.passcode, "typed_passcode": mode == "typed", "delivery": new.delivery}
    response = _ticket(request, principal, ticket_id, new_link=link)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/packages/{package_id}/release")
def release_package(request: Request, principal: PackageReviewer, package_id: PackageId, form: FormDep):
    """A manager approves a request of access's export for delivery, after reviewing it."""
    app = request.app.state.appliance
    ticket_id = _package_ticket(app, package_id)
    try:
        release.release(app, principal, package_id, reason=form.get("reason"))
    except DomainError as exc:
        return _ticket(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    return RedirectResponse(f"/tickets/{ticket_id}?done=released#export", status_code=303)


@router.post("/links/{delivery_id}/revoke")
def revoke_link(request: Request, principal: DeliveryManager, delivery_id: DeliveryId):
    app = request.app.state.appliance
    try:
        view = delivery.revoke_link(app, principal, delivery_id)
    except DomainError as exc:
        raise PageRefused(status_of(exc), exc) from None
    return RedirectResponse(f"/tickets/{view.ticket_id}?done=link_revoked#export", status_code=303)


@router.post("/packages/{package_id}/delete")
def delete_package(request: Request, principal: DeliveryManager, package_id: PackageId):
    app = request.app.state.appliance
    ticket_id = _package_ticket(app, package_id)
    try:
        delivery.delete_package(app, principal, package_id)
    except DomainError as exc:
        return _ticket(request, principal, ticket_id, error=error_text(request, exc), status=status_of(exc))
    return RedirectResponse(f"/tickets/{ticket_id}?done=package_deleted#export", status_code=303)


@router.get("/exports")
def exports_page(request: Request, principal: DeliveryManager):
    app = request.app.state.appliance
    infos = sorted(package_store(app).list(), key=lambda i: i.created_us, reverse=True)
    links = delivery.links_of_packages(app, [i.package_id for i in infos])
    rows = [{"info": i, "links": links.get(i.package_id, []),
             "live": sum(d.state == "live" for d in links.get(i.package_id, []))} for i in infos]
    return render(request, "exports.html", {"packages": rows})


# ---------------------------------------------------------------- the recipient


LINK_STATUS = {Kind.INVALID: 422, Kind.NOT_FOUND: 404, Kind.FORBIDDEN: 403, Kind.UNAUTHENTICATED: 401,
               Kind.CONFLICT: 409, Kind.PRECONDITION: 409}


def delivery_page(request: Request, *, token: str, info, error: DomainError | None):
    """The recipient's page (``app.state.delivery_page``; called by api/routes/deliveries.py).

    It keeps what the recipient needs across a refusal and after a download: beside a wrong or missing passcode
    the link's facts and the download form stay; once the link has been used (``info.downloads``) the page says
    when it was last downloaded and how many downloads are left, and the instructions for checking the package
    stay, also after the last download; an error is shown only on the answer it belongs to (a later GET has
    none, and /static/delivery.js removes it when the form is sent again)."""
    lang = request.query_params.get("lang")
    if error is None:
        status = 200
    elif isinstance(error, LockedOut):
        status = 429
    elif isinstance(error, delivery.LinkGone):
        status = 410
    else:
        status = LINK_STATUS.get(error.kind, 400)
    passcode_wrong = status in (401, 403)
    if info is not None and not (error is None or passcode_wrong or info.downloads > 0):
        info = None  # a dead link nobody downloaded from: nothing to keep
    used_up = info is not None and info.state == "exhausted"
    page_lang = lang if lang in ("da", "en") else lang_of(request)
    message = "" if error is None or used_up else i18n_error_text(translator(page_lang), error)
    if passcode_wrong:  # the recipient's own mistake, in the page's language
        message = translator(page_lang)("dl.passcode_needed" if status == 401 else "dl.passcode_wrong")
    ctx = {"info": info, "error": message, "status": status,
           "recipient_page": True, "passcode_wrong": passcode_wrong, "used_up": used_up,
           "can_download": info is not None and info.state == "live" and (error is None or passcode_wrong)}
    if lang in ("da", "en"):
        ctx["lang"], ctx["t"] = lang, translator(lang)
    response = render(request, "delivery.html", ctx, status=status)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
