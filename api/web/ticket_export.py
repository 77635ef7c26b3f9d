"""The export part of a ticket's page: jobs, packages and whether an export may start.

Built for api/web/pages_tickets.py's ticket page; the forms it shows post to api/web/pages_export.py.
(Its own module so that the two page modules do not import each other.)
"""

from __future__ import annotations

from fastapi import Request

from vms.core.errors import DomainError
from vms.evidence import delivery, export_jobs

EXPORT_STATES = ("approved", "exported", "delivered")


def ticket_sections(request: Request, principal, view) -> dict:
    """The export part of a ticket's page (empty for view tickets and for roles without it)."""
    may = principal.role == "manager" or (principal.role == "operator" and principal.user_id == view.requester_id)
    if view.action != "export" or not may:
        return {"exports": None}
    app = request.app.state.appliance
    try:
        jobs = export_jobs.jobs_of_ticket(app, principal, view.id)
        packages = export_jobs.packages_of_ticket(app, principal, view.id)
    except DomainError as exc:
        return {"exports": {"error": exc.message, "jobs": [], "packages": [], "can_start": False}}
    open_now = view.state in EXPORT_STATES and (view.access_until_us or 0) > app.clock.now_us()
    return {"exports": {"jobs": list(reversed(jobs)), "packages": list(reversed(packages)), "can_start": open_now,
                        "running": any(j.state in ("queued", "running") for j in jobs), "error": "",
                        "policy": delivery.policy(app)}}
