"""May this user see this footage now?  Pure decisions, no I/O.

Footage (listing spans and playing) is open only to operators and managers,
only inside an approved (or exported/delivered) ticket, only for that ticket's
cameras and window, only while its access window lasts, and only to the
ticket's requester or a manager.  Administrators and auditors never see
footage.  Each refusal says why, in words the user can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

from vms.core.times import iso

FOOTAGE_ROLES = ("operator", "manager")
OPEN_STATES = ("approved", "exported", "delivered")


@dataclass(frozen=True)
class TicketScope:
    """What of a ticket the decision needs."""

    id: int
    state: str
    requester_id: int
    cameras: tuple[str, ...]
    start_us: int
    end_us: int
    access_until_us: int | None


def footage_refusal(role: str, user_id: int, ticket: TicketScope, *, now_us: int) -> str | None:
    """Why the user may not see any footage of the ticket now (None: they may)."""
    if role not in FOOTAGE_ROLES:
        return f"the {role} role never sees footage"
    if role == "operator" and user_id != ticket.requester_id:
        return f"ticket {ticket.id} was filed by someone else; only its requester or a manager may see its footage"
    if ticket.state not in OPEN_STATES:
        return f"ticket {ticket.id} is {ticket.state}; footage is available only once a manager has approved it"
    if ticket.access_until_us is None or now_us >= ticket.access_until_us:
        return f"the access window of ticket {ticket.id} has ended"
    return None


def play_refusal(role: str, user_id: int, ticket: TicketScope, camera_id: str, start_us: int, end_us: int, *,
                 now_us: int) -> str | None:
    """Why the user may not play ``camera_id`` in [start_us, end_us) under the ticket now."""
    problem = footage_refusal(role, user_id, ticket, now_us=now_us)
    if problem:
        return problem
    if camera_id not in ticket.cameras:
        return f"camera {camera_id!r} is not one of ticket {ticket.id}'s cameras ({', '.join(ticket.cameras)})"
    if end_us <= start_us:
        return "the requested span is empty or reversed"
    if start_us < ticket.start_us or end_us > ticket.end_us:
        return (f"the requested span {iso(start_us)} .. {iso(end_us)} lies outside ticket {ticket.id}'s window "
                f"{iso(ticket.start_us)} .. {iso(ticket.end_us)}")
    return None

