"""Who is looking at a page: the session cookie (and CSRF) of api/deps.py, as redirects.

Pages use the same check as the JSON API (:func:`api.deps.any_principal`:
session cookie, and for POST the session's CSRF token in the ``csrf_token``
form field), but a caller who is not signed in is sent to the sign-in page
instead of getting a 401, and a refusal is a page with the reason, not
problem+json.  A user still holding a one-time password is sent to the
change-password page.

``FormDep`` gives a POST's form fields (parsed once; the CSRF check has read
them already) to synchronous handlers, which FastAPI runs in its thread pool.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from api import deps
from api.problems import STATUS
from api.schemas import text_problem
from api.web.render import error_text, render
from vms.access import policy
from vms.access.auth import Principal
from vms.core.errors import DomainError, Kind

PASSWORD_PATHS = ("/password", "/signout")


class SignInRequired(Exception):
    def __init__(self, next_url: str):
        self.next_url = next_url


class MustChangePassword(Exception):
    pass


class PageRefused(Exception):
    """Render the message page with this status and text (a domain error's in the reader's language)."""

    def __init__(self, status: int, message: str | DomainError):
        self.status, self.message = status, message


def status_of(exc: DomainError) -> int:
    """The HTTP status the API gives this domain error (pages use the same)."""
    return STATUS.get(exc.kind, 400)


def safe_next(url: str | None) -> str:
    """Only a path on this site (no scheme, no host, no '//' or backslash tricks)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or any(ord(c) < 32 for c in url):
        return "/"
    return url[:500]


async def page_principal(request: Request) -> Principal:
    try:
        principal = await deps.any_principal(request)
    except DomainError as exc:
        if exc.kind == Kind.UNAUTHENTICATED:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(here if request.method == "GET" else "/") from None
        raise PageRefused(status_of(exc) if exc.kind == Kind.INVALID else 403, exc) from None
    if principal.must_change_password and request.url.path not in PASSWORD_PATHS:
        raise MustChangePassword()
    return principal


def allow(action: policy.Action):
    """A page dependency admitting the roles the policy allows ``action`` (a page saying why for others)."""

    async def check(request: Request, principal: Annotated[Principal, Depends(page_principal)]) -> Principal:
        refusal = policy.role_refusal(principal.role, action)
        if refusal is not None:
            raise PageRefused(403, refusal.error())
        return principal

    check.action = action
    return check


class Form:
    """A POST's text fields (file uploads are ignored).  A field with control characters or text that is not
    valid Unicode is refused (422) before any page sees it: the JSON API's schemas refuse the same, and
    PostgreSQL cannot even compare a text with NUL in it."""

    def __init__(self, data):
        self._data = data
        for key, value in data.multi_items():
            if isinstance(value, str) and (bad := text_problem(value)):
                raise PageRefused(422, f"form field {key[:40]!r}: {bad}")

    def get(self, key: str, default: str = "") -> str:
        value = self._data.get(key)
        return value if isinstance(value, str) else default

    def getlist(self, key: str) -> list[str]:
        return [v for v in self._data.getlist(key) if isinstance(v, str)]


async def form_fields(request: Request) -> Form:
    try:
        return Form(await deps.read_form(request))
    except DomainError as exc:  # the form could not be read: a page saying so
        raise PageRefused(status_of(exc), exc) from None


def install_handlers(api) -> None:
    @api.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired):
        target = "/signin" if exc.next_url in ("", "/") else f"/signin?next={quote(exc.next_url, safe='')}"
        return RedirectResponse(target, status_code=303)

    @api.exception_handler(MustChangePassword)
    async def _password(request: Request, exc: MustChangePassword):
        return RedirectResponse("/password", status_code=303)

    @api.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused):
        text = error_text(request, exc.message) if isinstance(exc.message, DomainError) else exc.message
        return render(request, "message.html", {"message": text, "status": exc.status}, status=exc.status)


page_principal.action = policy.Action.ACCOUNT  # one's own account pages (password, sign-out)
User = Annotated[Principal, Depends(page_principal)]
FormDep = Annotated[Form, Depends(form_fields)]
TicketFiler = Annotated[Principal, Depends(allow(policy.Action.TICKET_FILE))]
TicketReader = Annotated[Principal, Depends(allow(policy.Action.TICKET_READ))]
TicketDecider = Annotated[Principal, Depends(allow(policy.Action.TICKET_DECIDE))]
TicketCloser = Annotated[Principal, Depends(allow(policy.Action.TICKET_CLOSE))]
Exporter = Annotated[Principal, Depends(allow(policy.Action.EXPORT))]
DeliveryManager = Annotated[Principal, Depends(allow(policy.Action.DELIVERY_MANAGE))]
PackageReviewer = Annotated[Principal, Depends(allow(policy.Action.PACKAGE_RELEASE))]
AuditReader = Annotated[Principal, Depends(allow(policy.Action.AUDIT_READ))]
Administrator = Annotated[Principal, Depends(allow(policy.Action.ADMINISTER))]
CameraReader = Annotated[Principal, Depends(allow(policy.Action.CAMERAS_LIST))]
