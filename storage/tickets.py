"""Queries for incident tickets, their cameras and their holds.

State changes are conditional updates (``WHERE state = <expected>``) so two
people acting on one ticket at once cannot both succeed; the caller checks the
returned flag.  Functions never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from storage.models import Camera, Hold, Ticket, TicketCamera

OPEN_STATES = ("approved", "exported", "delivered")


def insert_ticket(s: Session, *, requester_id: int, action: str, recipient: str, description: str, purpose: str,
                  legal_basis: str, start_us: int, end_us: int, cameras: Sequence[str], now_us: int) -> int:
    row = Ticket(state="requested", requester_id=requester_id, action=action, recipient=recipient,
                 description=description, purpose=purpose, legal_basis=legal_basis, start_us=start_us,
                 end_us=end_us, created_us=now_us, updated_us=now_us)
    s.add(row)
    s.flush()
    s.add_all([TicketCamera(ticket_id=row.id, camera_id=c) for c in cameras])
    s.flush()
    return row.id


def ticket(s: Session, ticket_id: int) -> Ticket | None:
    return s.get(Ticket, ticket_id)


def ticket_cameras(s: Session, ticket_id: int) -> list[str]:
    return list(s.scalars(select(TicketCamera.camera_id).where(TicketCamera.ticket_id == ticket_id).order_by(TicketCamera.camera_id)))


def cameras_of(s: Session, ticket_ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {i: [] for i in ticket_ids}
    if ticket_ids:
        rows = s.execute(select(TicketCamera.ticket_id, TicketCamera.camera_id)
                         .where(TicketCamera.ticket_id.in_(list(ticket_ids))).order_by(TicketCamera.camera_id))
        for tid, cam in rows:
            out[tid].append(cam)
    return out


def known_cameras(s: Session, ids: Sequence[str]) -> set[str]:
    return set(s.scalars(select(Camera.id).where(Camera.id.in_(list(ids)))))


def list_tickets(s: Session, *, states: Sequence[str] | None = None, requester_id: int | None = None,
                 camera_id: str | None = None, limit: int, offset: int) -> tuple[list[Ticket], int]:
    """Tickets matching the filters, newest first, and how many match in all."""
    conds = []
    if states:
        conds.append(Ticket.state.in_(list(states)))
    if requester_id is not None:
        conds.append(Ticket.requester_id == requester_id)
    if camera_id is not None:
        conds.append(Ticket.id.in_(select(TicketCamera.ticket_id).where(TicketCamera.camera_id == camera_id)))
    where = and_(true(), *conds)
    rows = list(s.scalars(select(Ticket).where(where).order_by(Ticket.id.desc()).limit(limit).offset(offset)))
    total = s.scalar(select(func.count()).select_from(Ticket).where(where)) or 0
    return rows, int(total)


def move(s: Session, ticket_id: int, *, from_state: str, to_state: str, now_us: int, **values) -> bool:
    """Change state if the ticket is still in ``from_state``; False otherwise."""
    result = s.execute(
        update(Ticket).where(Ticket.id == ticket_id, Ticket.state == from_state)
        .values(state=to_state, updated_us=now_us, **values)
    )
    return result.rowcount > 0


def due_for_expiry(s: Session, now_us: int, *, limit: int = 500) -> list[Ticket]:
    """Open tickets whose access window has ended."""
    return list(s.scalars(
        select(Ticket).where(Ticket.state.in_(OPEN_STATES), Ticket.access_until_us <= now_us)
        .order_by(Ticket.access_until_us).limit(limit)
    ))


# ---------------------------------------------------------------- holds of tickets


def holds_of(s: Session, ticket_id: int) -> list[Hold]:
    return list(s.scalars(select(Hold).where(Hold.ticket_id == ticket_id).order_by(Hold.camera_id)))


def release_holds_of(s: Session, ticket_id: int, *, at_us: int) -> int:
    """End the ticket's holds at ``at_us`` (holds already ending earlier keep their time)."""
    result = s.execute(
        update(Hold).where(Hold.ticket_id == ticket_id, or_(Hold.released_us.is_(None), Hold.released_us > at_us))
        .values(released_us=at_us)
    )
    return result.rowcount
