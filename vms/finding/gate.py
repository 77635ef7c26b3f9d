"""The gate every finding request passes: the ticket's cameras, its window and its access period.

The decision is the access policy's (:func:`vms.access.policy.play_refusal`, the rule playback follows):
operators and managers only, an approved (or exported/delivered) ticket whose access window lasts, one of
its cameras, a span inside its window.  Someone else's ticket "does not exist"
(:func:`vms.access.policy.no_such_ticket`).  A refusal is audited (its own transaction) and raised as a
permission error (403).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.sql import tickets as ticket_store
from vms.access import policy, tickets
from vms.access.audit import audited
from vms.core.errors import DomainError, Kind


def scope(app, principal, ticket_id: int) -> policy.TicketScope:
    """The ticket's scope, after expiring tickets whose access window has ended; someone else's ticket and a
    missing one get the same not-found answer."""
    tickets.expire_due(app)
    with Session(app.engine) as s:
        t = ticket_store.ticket(s, ticket_id)
        if t is None:
            policy.no_such_ticket(ticket_id).raise_()
        sc = tickets.scope_of(t, tuple(ticket_store.ticket_cameras(s, t.id)))
    refusal = policy.ticket_refusal(principal.role, principal.user_id, policy.Action.TICKET_READ, sc)
    if refusal is not None and refusal.kind == Kind.NOT_FOUND:
        refusal.raise_()
    return sc


def authorize(app, principal, ticket_id: int, camera_id: str, start_us: int, end_us: int, *,
              action: str) -> policy.TicketScope:
    """Raise FORBIDDEN (audited as ``action``) unless the principal may see ``camera_id`` in [start_us,
    end_us) under the ticket now; returns the ticket's scope."""
    sc = scope(app, principal, ticket_id)
    problem = policy.play_refusal(principal.role, principal.user_id, sc, camera_id, start_us, end_us,
                                  now_us=app.clock.now_us())
    if problem:
        with audited(app.engine, app.clock, principal.actor, action, obj=f"camera:{camera_id[:64]}",
                     ticket_id=ticket_id):
            raise DomainError(Kind.FORBIDDEN, problem.message, key=problem.key, params=problem.params)
    return sc


def still_open(app, principal, ticket_id: int, camera_id: str, start_us: int, end_us: int) -> str | None:
    """Why a running search may no longer read this span (None: it may): the same rule, without auditing."""
    try:
        sc = scope(app, principal, ticket_id)
    except DomainError as exc:
        return exc.message
    refusal = policy.play_refusal(principal.role, principal.user_id, sc, camera_id, start_us, end_us,
                                  now_us=app.clock.now_us())
    return refusal.message if refusal else None
