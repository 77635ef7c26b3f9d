"""Queries for incident tickets, their cameras and their holds.

State changes are conditional updates (``WHERE state = <expected>``) so two
people acting on one ticket at once cannot both succeed; the caller checks the
returned flag.  Functions never commit.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Row, and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from storage.sql.models import Camera, Hold, Ticket, TicketCamera

OPEN_STATES = ("approved", "exported", "delivered")
# A ticket's columns, read as plain rows (attribute access as on the model, without building ORM objects).
# Table columns, not the ORM attributes: a cached statement's result map is then matched by identity; with the
# ORM's annotated copies SQLAlchemy compares them with ``==`` (building an expression per column per query).
_T = Ticket.__table__.c
TICKET_COLUMNS = (_T.id, _T.state, _T.requester_id, _T.action, _T.recipient, _T.description, _T.purpose,
                  _T.legal_basis, _T.start_us, _T.end_us, _T.created_us, _T.updated_us, _T.decided_by, _T.decided_us,
                  _T.decision_reason, _T.access_until_us, _T.closed_us)
_SELECT_TICKETS = select(*TICKET_COLUMNS)
_INSERT_TICKET = Ticket.__table__.insert().returning(_T.id)  # built once: coercing 17 columns costs more than the query on SQLite


def insert_ticket(s: Session, *, requester_id: int, action: str, recipient: str, description: str, purpose: str,
                  legal_basis: str, start_us: int, end_us: int, cameras: Sequence[str], now_us: int) -> int:
    conn = s.connection()
    ticket_id = conn.execute(_INSERT_TICKET, {
        "state": "requested", "requester_id": requester_id, "action": action, "recipient": recipient,
        "description": description, "purpose": purpose, "legal_basis": legal_basis, "start_us": start_us,
        "end_us": end_us, "created_us": now_us, "updated_us": now_us,
    }).scalar_one()
    if cameras:  # a ticket may cover only doors of the door log
        conn.execute(TicketCamera.__table__.insert(), [{"ticket_id": ticket_id, "camera_id": c} for c in cameras])
    return int(ticket_id)


def ticket(s: Session, ticket_id: int) -> Ticket | None:
    return s.get(Ticket, ticket_id)


def ticket_cameras(s: Session, ticket_id: int) -> list[str]:
    return list(s.scalars(select(TicketCamera.camera_id).where(TicketCamera.ticket_id == ticket_id).order_by(TicketCamera.camera_id)))


def known_cameras(s: Session, ids: Sequence[str]) -> set[str]:
    c = Camera.__table__.c
    return set(s.connection().execute(select(c.id).where(c.id.in_(list(ids)))).scalars())


def list_tickets(s: Session, *, states: Sequence[str] | None = None, requester_id: int | None = None,
                 camera_id: str | None = None, limit: int, offset: int) -> tuple[list[Row], int, dict[int, list[str]]]:
    """Tickets matching the filters, newest first (rows of :data:`TICKET_COLUMNS`), how many match in all,
    and each listed ticket's cameras (in order)."""
    tc = TicketCamera.__table__.c
    conds = []
    if states:
        conds.append(_T.state.in_(list(states)))
    if requester_id is not None:
        conds.append(_T.requester_id == requester_id)
    if camera_id is not None:
        conds.append(_T.id.in_(select(tc.ticket_id).where(tc.camera_id == camera_id)))
    where = and_(true(), *conds)
    conn = s.connection()
    page = _SELECT_TICKETS.where(where).order_by(_T.id.desc()).limit(limit).offset(offset)
    rows = conn.execute(page).all()
    total = conn.execute(select(func.count()).select_from(Ticket).where(where)).scalar() or 0
    cameras: dict[int, list[str]] = {row[0]: [] for row in rows}
    if rows:  # the page's cameras in one query, by the ids read (a re-selected page could differ meanwhile)
        found = conn.execute(select(tc.ticket_id, tc.camera_id)
                             .where(tc.ticket_id.in_(list(cameras))).order_by(tc.camera_id))
        for ticket_id, camera in found:
            cameras[ticket_id].append(camera)
    return rows, int(total), cameras


def move(s: Session, ticket_id: int, *, from_state: str, to_state: str, now_us: int, **values) -> bool:
    """Change state if the ticket is still in ``from_state``; False otherwise."""
    result = s.execute(
        update(Ticket).where(Ticket.id == ticket_id, Ticket.state == from_state)
        .values(state=to_state, updated_us=now_us, **values)
    )
    return result.rowcount > 0


def due_for_expiry(s: Session, now_us: int, *, limit: int = 500) -> list[Row]:
    """Open tickets whose access window has ended: rows of (id, state, access_until_us)."""
    return list(s.connection().execute(
        select(_T.id, _T.state, _T.access_until_us)
        .where(_T.state.in_(OPEN_STATES), _T.access_until_us <= now_us)
        .order_by(_T.access_until_us).limit(limit)
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
