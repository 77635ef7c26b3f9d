"""The export part of a ticket's page: jobs, packages and whether an export may start.

Built for api/web/pages_tickets.py's ticket page; the forms it shows post to api/web/pages_export.py.
(Its own module so that the two page modules do not import each other.)
"""

from __future__ import annotations

from fastapi import Request

from api.web.render import error_text
from vms.access import policy
from vms.core.errors import DomainError
from vms.evidence import delivery, export_jobs, release


def ticket_sections(request: Request, principal, view) -> dict:
    """The export part of a ticket's page (empty for view tickets and for roles without it)."""
    app = request.app.state.appliance
    scope = policy.TicketScope(view.id, view.state, view.requester_id, view.cameras, view.start_us, view.end_us,
                               view.access_until_us, view.action)
    refusal = policy.ticket_refusal(principal.role, principal.user_id, policy.Action.EXPORT, scope,
                                    now_us=app.clock.now_us())
    if view.action != "export" or (refusal is not None and refusal.key in ("refused.role", "refused.not_yours")):
        return {"exports": None}
    try:
        jobs = export_jobs.jobs_of_ticket(app, principal, view.id)
        packages = export_jobs.packages_of_ticket(app, principal, view.id)
    except DomainError as exc:
        return {"exports": {"error": error_text(request, exc), "jobs": [], "packages": []}}
    # which of its forms the section offers is the template's question to the policy (can('export', ticket) ...)
    return {"exports": {"jobs": list(reversed(jobs)), "packages": list(reversed(packages)),
                        "running": any(j.state in ("queued", "running") for j in jobs), "error": "",
                        "policy": delivery.policy(app), "released": release.released_package(app, view.id),
                        "previews": _previews(request, principal, view, packages)}}


def _previews(request: Request, principal, view, packages) -> dict:
    """A request of access's redacted packages as the reviewing manager watches them: package id -> its video
    files' names, or the reason they cannot be shown (a text).  Empty for anyone else."""
    if not view.received_us or policy.release_refusal(principal.role, principal.user_id, view.requester_id):
        return {}
    out = {}
    for p in packages:
        if p.info.redacted:
            try:
                out[p.info.package_id] = release.preview_clips(request.app.state.appliance, principal, p.info.package_id)
            except DomainError as exc:
                out[p.info.package_id] = error_text(request, exc)
    return out
