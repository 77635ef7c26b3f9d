"""Delivery links: managers make them, recipients without an account use them.

Managers (``/api``, signed in):

* ``POST /api/packages/{package_id}/deliveries``: a link for one recipient.
  The answer carries the link (``url``, with its token) and, when asked to
  generate one, the passcode: **the only time either is shown**.  Send the
  passcode by another channel than the link.
* ``GET /api/packages/{package_id}/deliveries``: the package's links (state,
  downloads, expiry; never tokens).
* ``POST /api/deliveries/{delivery_id}/revoke``.

Recipients (public, no account; the token in the path is the credential):

* ``GET /d/{token}``: what the link gives (file name, size, expiry, downloads
  left, whether a passcode is needed, the signing key's fingerprint).  It uses
  no download, so mail scanners that fetch links cannot use them up.
* ``POST /d/{token}``: the download (``passcode`` as JSON or form field when
  the link has one): the ZIP streamed from the encrypted package, decrypted
  chunk by chunk in memory.

Refusals are problem+json: 404 unknown link, 410 expired/revoked/used up, 401
passcode needed, 403 wrong passcode, 429 too many failed attempts (with
``Retry-After``).  These routes never put the token into a log line or a
problem's ``instance`` (it reads ``/d/{token}``); unexpected errors are logged
by class name only.  The web UI may render the recipient's pages: when the
request prefers HTML and ``app.state.delivery_page`` is set, it is called as
``delivery_page(request, token=..., info=LinkInfo|None, error=DomainError|None)``
and its response is returned instead of JSON; beside a refusal ``info`` is the link's facts
(:func:`vms.evidence.download.link_facts`) when the token is known, so the page can keep them.  A download
sets the cookie ``vms_downloaded`` (the link's number and download count, path ``/d/``) by which the page
notices that its download started.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import deps
from api.problems import problem, validation_errors
from api.schemas import Body, Count, Flag, Line, from_us
from vms.access.auth import LockedOut
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence import delivery
from vms.evidence import download as downloads

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["deliveries"], dependencies=[Depends(deps.signed_in)])
PackageId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="package id")]
DeliveryId = Annotated[int, Path(ge=1, le=2**62, description="delivery link id")]
Token = Annotated[str, Path(max_length=200, description="the link's token (as sent to the recipient)")]
LINK_INSTANCE = "/d/{token}"
DOWNLOADED_COOKIE = "vms_downloaded"
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow",
            "X-Content-Type-Options": "nosniff"}


# ---------------------------------------------------------------- schemas


class DeliveryCreate(Body):
    recipient: Line(200) = Field(description="who receives the link, e.g. 'Politi Midt, case 4711 (J. Hansen)'")
    expires_hours: Annotated[Count, Field(ge=1, le=720)] | None = Field(None, description="default 72")
    max_downloads: Annotated[Count, Field(ge=1, le=100)] | None = Field(None, description="default 3")
    passcode: Annotated[str, Field(min_length=8, max_length=256)] | None = Field(
        None, description="a passcode the recipient must enter (send it separately from the link)")
    generate_passcode: Flag = Field(False, description="let the appliance generate the passcode (shown once)")


class DeliveryPublic(BaseModel):
    id: int
    ticket_id: int
    package_id: str
    recipient: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    max_downloads: int
    downloads: int
    downloads_left: int
    revoked_at: datetime | None
    passcode_required: bool
    state: str = Field(description="live, expired, revoked or exhausted")


class DeliveryCreated(BaseModel):
    delivery: DeliveryPublic
    url: str = Field(description="the link to send to the recipient; shown only now")
    token: str = Field(description="the token inside the link; shown only now, the appliance keeps only its hash")
    passcode: str | None = Field(description="the generated passcode (send it separately); shown only now")


class LinkInfoPublic(BaseModel):
    recipient: str
    filename: str
    size_bytes: int
    created_at: datetime
    expires_at: datetime
    downloads_left: int
    passcode_required: bool
    key_fingerprint: str = Field(description="compare with the fingerprint the sender gives you separately")
    manifest_sha256: str
    download: str = Field(description="how to download")


def delivery_public(d: delivery.DeliveryView) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id, ticket_id=d.ticket_id, package_id=d.package_id, recipient=d.recipient, created_by=d.created_by,
        created_at=from_us(d.created_us), expires_at=from_us(d.expires_us), max_downloads=d.max_downloads,
        downloads=d.downloads, downloads_left=d.downloads_left, revoked_at=from_us(d.revoked_us),
        passcode_required=d.passcode_required, state=d.state,
    )


def link_info_public(i: downloads.LinkInfo) -> LinkInfoPublic:
    how = ("POST to this address with the passcode (JSON {\"passcode\": ...} or form field 'passcode')"
           if i.passcode_required else "POST to this address (an empty body)")
    return LinkInfoPublic(
        recipient=i.recipient, filename=i.filename, size_bytes=i.size_bytes, created_at=from_us(i.created_us),
        expires_at=from_us(i.expires_us), downloads_left=i.downloads_left, passcode_required=i.passcode_required,
        key_fingerprint=i.key_fingerprint, manifest_sha256=i.manifest_sha256, download=how,
    )


# ---------------------------------------------------------------- managers


@router.post("/packages/{package_id}/deliveries", response_model=DeliveryCreated, status_code=201,
             summary="Make a delivery link for one recipient (a manager); the link is shown only in this answer",
             responses={404: {"description": "no such package"},
                        409: {"description": "the ticket is not exported, or is closed or expired"}})
def create_delivery(package_id: PackageId, body: DeliveryCreate, request: Request, principal: deps.DeliveryManager,
                    app: deps.ApplianceDep) -> DeliveryCreated:
    new = delivery.create_link(app, principal, package_id, recipient=body.recipient, expires_h=body.expires_hours,
                               max_downloads=body.max_downloads, passcode=body.passcode,
                               generate_passcode=body.generate_passcode)
    url = deps.link_base(request) + new.path
    return DeliveryCreated(delivery=delivery_public(new.delivery), url=url, token=new.token, passcode=new.passcode)


@router.get("/packages/{package_id}/deliveries", response_model=list[DeliveryPublic],
            summary="A package's delivery links (a manager; never their tokens)")
def list_deliveries(package_id: PackageId, principal: deps.DeliveryManager, app: deps.ApplianceDep) -> list[DeliveryPublic]:
    return [delivery_public(d) for d in delivery.list_links(app, principal, package_id)]


@router.post("/deliveries/{delivery_id}/revoke", response_model=DeliveryPublic,
             summary="Revoke a delivery link (a manager); the package is deleted after the grace period "
                     "once no link is live")
def revoke_delivery(delivery_id: DeliveryId, principal: deps.DeliveryManager, app: deps.ApplianceDep) -> DeliveryPublic:
    return delivery_public(delivery.revoke_link(app, principal, delivery_id))


# ---------------------------------------------------------------- recipients


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and getattr(request.app.state, "delivery_page", None) is not None


def _link_problem(request: Request, exc: DomainError) -> Response:
    if _wants_html(request):
        token = request.path_params.get("token", "")
        info = None if isinstance(exc, LockedOut) else downloads.link_facts(request.app.state.appliance, token)
        return request.app.state.delivery_page(request, token=token, info=info, error=exc)
    if isinstance(exc, LockedOut):
        return problem(429, exc.message, kind="too-many-attempts", instance=LINK_INSTANCE,
                       headers={"Retry-After": str(exc.retry_after_s), **NO_STORE})
    if isinstance(exc, delivery.LinkGone):
        return problem(410, exc.message, kind="link-gone", instance=LINK_INSTANCE, headers=NO_STORE)
    status = {Kind.INVALID: 422, Kind.NOT_FOUND: 404, Kind.FORBIDDEN: 403, Kind.UNAUTHENTICATED: 401,
              Kind.CONFLICT: 409, Kind.PRECONDITION: 409}[exc.kind]
    kind = "passcode-required" if status == 401 else exc.kind.value
    return problem(status, exc.message, kind=kind, instance=LINK_INSTANCE, headers=NO_STORE)


class LinkRoute(APIRoute):
    """Answers every failure of a link route itself, without the token (not in logs, not in ``instance``)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                return _link_problem(request, exc)
            except RequestValidationError as exc:
                errors = validation_errors(exc)
                return problem(422, f"{errors[0]['field']}: {errors[0]['message']}" if errors else "invalid input",
                               kind=Kind.INVALID.value, instance=LINK_INSTANCE, errors=errors, headers=NO_STORE)
            except StarletteHTTPException as exc:  # e.g. a form body Starlette cannot parse (no multipart boundary)
                if exc.status_code >= 500:
                    raise
                return problem(exc.status_code, f"the request could not be read: {exc.detail}",
                               kind=Kind.INVALID.value, instance=LINK_INSTANCE, headers=NO_STORE)
            except Exception as exc:
                log.error("delivery link route failed: %s", exc.__class__.__name__)  # no path: it holds the token
                return problem(500, "the appliance failed to handle this request; the error is in its log",
                               instance=LINK_INSTANCE, headers=NO_STORE)

        return route


public = APIRouter(tags=["delivery (recipients)"], route_class=LinkRoute)


async def _passcode(request: Request) -> str | None:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    value = None
    if ctype == "application/json":
        try:
            doc = await request.json()
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep to parse
            raise DomainError(Kind.INVALID, "body: not valid JSON; send {\"passcode\": \"...\"}",
                              key=N_("dl.err.body")) from None
        if doc is not None:
            if not isinstance(doc, dict) or set(doc) - {"passcode"}:
                raise DomainError(Kind.INVALID, "body: a JSON object with only the field 'passcode'",
                                  key=N_("dl.err.body"))
            value = doc.get("passcode")
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        value = (await request.form()).get("passcode")
    elif ctype or await request.body():
        raise DomainError(Kind.INVALID, "body: send the passcode as JSON or as the form field 'passcode'",
                          key=N_("dl.err.body"))
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise DomainError(Kind.INVALID, "passcode: a text of at most 256 characters", key=N_("dl.err.passcode"))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DomainError(Kind.INVALID, "passcode: not valid Unicode text", key=N_("dl.err.passcode")) from None
    return value


@public.get("/d/{token}", response_model=LinkInfoPublic, summary="What a delivery link gives (uses no download)",
            responses={404: {"description": "unknown link"}, 410: {"description": "expired, revoked or used up"},
                       429: {"description": "too many failed attempts from this address"}})
def link_info(token: Token, request: Request, app: deps.ApplianceDep) -> Response:
    info = downloads.link_info(app, token, client=deps.client_address(request))
    if _wants_html(request):
        return request.app.state.delivery_page(request, token=token, info=info, error=None)
    return JSONResponse(link_info_public(info).model_dump(mode="json"), headers=NO_STORE)


@public.post("/d/{token}", response_class=StreamingResponse, summary="Download the package (counts one download)",
             openapi_extra={"requestBody": {"required": False, "content": {
                 "application/json": {"schema": {"type": "object", "additionalProperties": False,
                                                 "properties": {"passcode": {"type": "string", "maxLength": 256}}}},
                 "application/x-www-form-urlencoded": {"schema": {
                     "type": "object", "properties": {"passcode": {"type": "string", "maxLength": 256}}}}}}},
             responses={200: {"content": {"application/zip": {}}, "description": "the evidence package (ZIP)"},
                        401: {"description": "this link needs its passcode"}, 403: {"description": "wrong passcode"},
                        404: {"description": "unknown link"}, 410: {"description": "expired, revoked or used up"},
                        429: {"description": "too many failed attempts"}})
async def download(token: Token, request: Request, app: deps.ApplianceDep) -> Response:
    passcode = await _passcode(request)
    got = await run_in_threadpool(downloads.open_download, app, token, passcode=passcode,
                                  client=deps.client_address(request))
    headers = {**NO_STORE, "Content-Length": str(got.info.size_bytes),
               "Content-Disposition": f'attachment; filename="{got.info.filename}"'}
    response = StreamingResponse(got.chunks, media_type="application/zip", headers=headers)
    # tells the recipient's page (static/delivery.js) that the download started, so that it shows the link's
    # new state; the link's number and count only (no token), for this site's /d/ pages
    response.set_cookie(DOWNLOADED_COOKIE, f"{got.info.delivery_id}.{got.info.downloads}", max_age=600, path="/d/",
                        secure=request.url.scheme == "https", httponly=False, samesite="strict")
    return response
