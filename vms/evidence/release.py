"""A request of access's export is delivered only after a manager has reviewed and approved it.

The export for a data subject hides everyone else automatically (vms/evidence/subject.py), and automatic
detection can miss someone; so before a delivery link can be made for it (vms/evidence/delivery.py), a
manager who did not file the request downloads the package, watches it, and approves that package
(:func:`release`; ``POST /api/packages/{id}/release``).  Only the approved package of the request can be
delivered; approving a newer export replaces the approval.  Both the approval and refused attempts are
audited (``package.release``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.sql import access_requests as store
from storage.sql import tickets as ticket_store
from vms.access import policy
from vms.access.audit import audited
from vms.access.tickets import check_text
from vms.core.errors import DomainError, Kind
from vms.evidence.export import package_store


def _ticket_id(info) -> int:
    try:
        return int(info.ticket_id)
    except ValueError:
        raise DomainError(Kind.PRECONDITION, f"package {info.package_id} was not made from a ticket of this "
                                             "appliance; it is no request of access's export") from None


def release(app, principal, package_id: str, *, reason: str) -> None:
    """A manager other than the requester approves ``package_id`` for delivery to the data subject."""
    with audited(app.engine, app.clock, principal.actor, "package.release", obj=f"package:{package_id}") as (s, entry):
        policy.enforce(policy.role_refusal(principal.role, policy.Action.DELIVERY_MANAGE))
        reason = check_text("reason", reason)
        info = package_store(app).info(package_id)
        ticket_id = _ticket_id(info)
        entry.ticket_id = ticket_id
        request, t = store.get(s, ticket_id), ticket_store.ticket(s, ticket_id)
        if request is None or t is None:
            raise DomainError(Kind.PRECONDITION, f"ticket {ticket_id} is no request of access: its packages need no "
                                                 "approval before delivery")
        if t.requester_id == principal.user_id:
            raise DomainError(Kind.FORBIDDEN, "you filed this request of access; another manager reviews its export "
                                              "and approves it for delivery")
        if not info.redacted:
            raise DomainError(Kind.PRECONDITION, "this package shows everyone as recorded; a data subject gets an "
                                                 "export that keeps only them visible (mark them in one frame)")
        store.release(s, ticket_id, package_id, principal.user_id, app.clock.now_us())
        entry.detail = f"reason={reason[:200]!r}"


def released_package(app, ticket_id: int) -> str | None:
    """The package of a request of access a manager approved for delivery (None: none, or no request)."""
    with Session(app.engine) as s:
        request = store.get(s, ticket_id)
    return request.released_package if request is not None else None


def delivery_refusal(app, ticket_id: int, package_id: str) -> DomainError | None:
    """Why no link may be made for this package of a request of access yet (None: it may, or no request)."""
    with Session(app.engine) as s:
        request = store.get(s, ticket_id)
    if request is None or request.released_package == package_id:
        return None
    return DomainError(Kind.PRECONDITION, "a manager who did not file this request of access must review the export "
                                          "and approve it for the data subject before a link is made "
                                          f"(POST /api/packages/{package_id}/release)")
