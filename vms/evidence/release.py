"""A request of access's export is delivered only after a manager has reviewed and approved it.

The export for a data subject hides everyone else automatically (vms/evidence/subject.py), and automatic
detection can miss someone; so before a delivery link can be made for it (vms/evidence/delivery.py), a
manager who did not file the request watches the package on the appliance and approves that package
(:func:`release`; ``POST /api/packages/{id}/release``).  Only the approved package of the request can be
delivered; approving a newer export replaces the approval.  Both the approval and refused attempts are
audited (``package.release``).

The review happens on the appliance, before any link exists: :func:`preview_clips` names the package's video
files and :func:`open_preview` streams one of them (``GET /api/packages/{id}/clips/{n}``), decrypting only
the chunks asked for.  The same rule as the approval decides who may (:func:`policy.release_refusal`: a
manager who did not file the request; a package of a request of access, redacted).  Every preview that
starts at the clip's first byte is audited (``package.preview``, refusals too); the further range requests
a browser makes while seeking in the same clip are checked the same way and not audited one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import access_requests as store
from storage.sql import tickets as ticket_store
from vms.access import policy
from vms.access.audit import audited
from vms.access.tickets import check_text
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence.export import package_store


def _ticket_id(info) -> int:
    try:
        return int(info.ticket_id)
    except ValueError:
        raise DomainError(Kind.PRECONDITION, f"package {info.package_id} was not made from a ticket of this "
                                             "appliance; it is no request of access's export",
                                             key=N_("request.err.not_ours"), params={"package": info.package_id}) from None


def _reviewable(s: Session, app, principal, package_id: str, entry):
    """The package, if ``principal`` may review and approve it (else a DomainError, audited by the caller)."""
    policy.enforce(policy.role_refusal(principal.role, policy.Action.PACKAGE_RELEASE))
    info = package_store(app).info(package_id)
    ticket_id = _ticket_id(info)
    entry.ticket_id = ticket_id
    request, t = store.get(s, ticket_id), ticket_store.ticket(s, ticket_id)
    if request is None or t is None:
        raise DomainError(Kind.PRECONDITION, f"ticket {ticket_id} is no request of access: its packages need no "
                                             "approval before delivery",
                                             key=N_("request.err.not_request"), params={"id": ticket_id})
    policy.enforce(policy.release_refusal(principal.role, principal.user_id, t.requester_id))
    if not info.redacted:
        raise DomainError(Kind.PRECONDITION, "this package shows everyone as recorded; a data subject gets an "
                                             "export that keeps only them visible (mark them in one frame)",
                                             key=N_("request.err.not_redacted"))
    return info


def release(app, principal, package_id: str, *, reason: str) -> None:
    """A manager other than the requester approves ``package_id`` for delivery to the data subject."""
    with audited(app.engine, app.clock, principal.actor, "package.release", obj=f"package:{package_id}") as (s, entry):
        policy.enforce(policy.role_refusal(principal.role, policy.Action.PACKAGE_RELEASE))
        reason = check_text("reason", reason)
        _reviewable(s, app, principal, package_id, entry)
        store.release(s, entry.ticket_id, package_id, principal.user_id, app.clock.now_us())
        entry.detail = f"reason={reason[:200]!r}"


@dataclass(frozen=True)
class PreviewClip:
    """One video file of a package under review: ``size_bytes`` in all; ``chunks`` gives ``first..last``."""

    name: str
    size_bytes: int
    first: int
    last: int
    chunks: Iterator[bytes]


def preview_clips(app, principal, package_id: str) -> list[str]:
    """The video files of a package ``principal`` may review, in the package's order (not audited: names only)."""
    with Session(app.engine) as s:
        _reviewable(s, app, principal, package_id, _Unrecorded())
    return [m.name for m in package_store(app).members(package_id)]


def _member(s: Session, app, principal, package_id: str, n: int, entry):
    _reviewable(s, app, principal, package_id, entry)
    members = package_store(app).members(package_id)
    if not 0 <= n < len(members):
        raise DomainError(Kind.NOT_FOUND, f"package {package_id} has {len(members)} video file(s); there is no "
                                          f"number {n} (counting from 0)",
                                          key=N_("request.err.no_clip"), params={"id": package_id, "files": len(members), "n": n})
    entry.detail = f"clip={members[n].name}"
    return members[n]


def open_preview(app, principal, package_id: str, n: int, byte_range: tuple[int, int | None] | None = None
                 ) -> PreviewClip:
    """Clip ``n`` (0-based) of a package under review, whole or ``byte_range`` (first, and last or None for the
    end; clamped to the clip); a range starting past the clip's end is refused (invalid input)."""
    first, last = (0, None) if byte_range is None else byte_range
    if first == 0:
        with audited(app.engine, app.clock, principal.actor, "package.preview", obj=f"package:{package_id}") as (
                s, entry):
            clip = _member(s, app, principal, package_id, n, entry)
    else:  # a browser seeking inside a clip it has started: checked the same way, not audited again
        with Session(app.engine) as s:
            clip = _member(s, app, principal, package_id, n, _Unrecorded())
    last = clip.size_bytes - 1 if last is None else min(last, clip.size_bytes - 1)
    if not 0 <= first <= last:
        raise DomainError(Kind.INVALID, f"bytes {first}-{last} are outside {clip.name} ({clip.size_bytes} bytes)")
    chunks = package_store(app).read_range(package_id, clip.offset + first, clip.offset + last)
    return PreviewClip(clip.name, clip.size_bytes, first, last, chunks)


class _Unrecorded:
    """Stands in for an audit entry where nothing is written (listing a package's file names)."""

    ticket_id: int | None = None
    detail: str = ""


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
                                          f"(POST /api/packages/{package_id}/release)", key=N_("refused.not_released"))
