"""Request dependencies: the appliance, the caller, roles and CSRF.

Secure by default: every router except the public one (sign-in, health)
depends on :func:`signed_in`, which accepts either

* ``Authorization: Bearer <token>`` (API clients; no CSRF check: browsers never
  send it on their own), or
* the ``vms_session`` cookie (browsers; HttpOnly, SameSite=Strict, Secure over
  HTTPS).  Unsafe methods (POST, PUT, PATCH, DELETE) must then also carry the
  session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form
  field (double protection on top of SameSite=Strict).

A user still holding a one-time password may only see ``/api/auth/me``, change
the password and sign out (:data:`AnyPrincipal`); everything else refuses
until the password is changed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from vms.access import auth, policy
from vms.access.auth import Principal
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

SESSION_COOKIE = "vms_session"
CSRF_COOKIE = "vms_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def appliance(request: Request):
    return request.app.state.appliance


async def _appliance(request: Request):
    """The dependency form of :func:`appliance` (async: a sync dependency would cost a worker-thread hop)."""
    return appliance(request)


def link_base(request: Request) -> str:
    """Where recipients open delivery links: ``delivery.public_url``, else the address this request came to."""
    configured = request.app.state.appliance.config.delivery.public_url
    return configured or str(request.base_url).rstrip("/")


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def read_form(request: Request):
    """The request's form fields.  A form the parser refuses (a field over 1 MB, more than 1000 fields, a broken
    multipart body) is invalid input saying so, not the parser's bare 400 (and on a page, a page)."""
    try:
        return await request.form()
    except HTTPException as exc:
        reason = str(exc.detail).rstrip(".")[:120]
        raise DomainError(Kind.INVALID, f"the form could not be read ({reason}); a field holds at most 1 MB "
                          "and a form at most 1000 fields", key=N_("invalid.form_unreadable")) from None


async def _csrf_presented(request: Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await read_form(request)
        value = form.get("csrf_token")
        return value if isinstance(value, str) else None
    return None


async def any_principal(request: Request) -> Principal:
    """The signed-in caller (one-time password holders included)."""
    app = appliance(request)
    client = client_address(request)
    authz = request.headers.get("authorization")
    if authz:
        scheme, _, token = authz.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise DomainError(Kind.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'",
                              key=N_("signin.err.bearer"))
        principal = await run_in_threadpool(auth.authenticate, app, token.strip(), client=client)
        if principal.kind != auth.TOKEN:
            raise DomainError(Kind.UNAUTHENTICATED, "a session secret cannot be used as a bearer token",
                              key=N_("signin.err.session_as_bearer"))
    else:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            raise DomainError(Kind.UNAUTHENTICATED, "sign in first (POST /api/auth/signin) or send a bearer token",
                              key=N_("signin.err.needed"))
        principal = await run_in_threadpool(auth.authenticate, app, secret, client=client)
        if principal.kind != auth.SESSION:
            raise DomainError(Kind.UNAUTHENTICATED, "an API token cannot be used as a session cookie",
                              key=N_("signin.err.token_as_cookie"))
        if request.method not in SAFE_METHODS and not auth.csrf_ok(secret, await _csrf_presented(request)):
            raise DomainError(Kind.FORBIDDEN, f"CSRF check failed: send the session's CSRF token in the {CSRF_HEADER} "
                                              "header (it is returned at sign-in and in the vms_csrf cookie)",
                                              key=N_("signin.err.csrf"))
    request.state.principal = principal
    return principal


async def signed_in(principal: Annotated[Principal, Depends(any_principal)]) -> Principal:
    """The signed-in caller, who has set their own password."""
    if principal.must_change_password:
        raise DomainError(Kind.FORBIDDEN, "change your one-time password first (POST /api/auth/password)",
                          key=N_("password.err.change_first"))
    return principal


def require(action: policy.Action):
    """A dependency admitting the roles the policy allows ``action`` (vms/access/policy.py); routes declare
    their action this way, and the role matrix tests read it back from ``check.action``."""

    async def check(principal: Annotated[Principal, Depends(signed_in)]) -> Principal:
        policy.enforce(policy.role_refusal(principal.role, action))
        return principal

    check.action = action
    return check


any_principal.action = policy.Action.ACCOUNT  # sign-out, who am I, password change: even before the first change
AnyPrincipal = Annotated[Principal, Depends(any_principal)]
CurrentUser = Annotated[Principal, Depends(require(policy.Action.ACCOUNT))]
Administrator = Annotated[Principal, Depends(require(policy.Action.ADMINISTER))]
AuditReader = Annotated[Principal, Depends(require(policy.Action.AUDIT_READ))]
TicketFiler = Annotated[Principal, Depends(require(policy.Action.TICKET_FILE))]
TicketReader = Annotated[Principal, Depends(require(policy.Action.TICKET_READ))]
TicketDecider = Annotated[Principal, Depends(require(policy.Action.TICKET_DECIDE))]
TicketCloser = Annotated[Principal, Depends(require(policy.Action.TICKET_CLOSE))]
FootageViewer = Annotated[Principal, Depends(require(policy.Action.FOOTAGE_VIEW))]
Exporter = Annotated[Principal, Depends(require(policy.Action.EXPORT))]
DeliveryManager = Annotated[Principal, Depends(require(policy.Action.DELIVERY_MANAGE))]
PackageReviewer = Annotated[Principal, Depends(require(policy.Action.PACKAGE_RELEASE))]
CameraReader = Annotated[Principal, Depends(require(policy.Action.CAMERAS_LIST))]
ApplianceDep = Annotated[object, Depends(_appliance)]
