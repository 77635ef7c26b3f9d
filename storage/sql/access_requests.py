"""Queries of data-subject access requests (the ``access_requests`` table; rules in vms/access/requests.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.sql.models import AccessRequest, Ticket


def add(s: Session, ticket_id: int, received_us: int) -> None:
    s.add(AccessRequest(ticket_id=ticket_id, received_us=received_us))
    s.flush()


def get(s: Session, ticket_id: int) -> AccessRequest | None:
    return s.get(AccessRequest, ticket_id)


def received(s: Session, ticket_ids: Sequence[int]) -> dict[int, int]:
    """``{ticket_id: received_us}`` of those tickets that are access requests."""
    if not ticket_ids:
        return {}
    rows = s.execute(select(AccessRequest.ticket_id, AccessRequest.received_us)
                     .where(AccessRequest.ticket_id.in_(list(ticket_ids))))
    return dict(rows.all())


def release(s: Session, ticket_id: int, package_id: str, user_id: int, now_us: int) -> None:
    """Record that ``package_id`` was approved for delivery (a later approval of a new export replaces it)."""
    s.execute(update(AccessRequest).where(AccessRequest.ticket_id == ticket_id)
              .values(released_package=package_id, released_by=user_id, released_us=now_us))


OPEN_STATES = ("requested", "approved", "exported", "delivered")


def open_requests(s: Session) -> list[tuple[int, int, int]]:
    """``(ticket_id, requester_id, received_us)`` of every request of access not yet closed, denied or expired."""
    rows = s.execute(select(AccessRequest.ticket_id, Ticket.requester_id, AccessRequest.received_us)
                     .join(Ticket, Ticket.id == AccessRequest.ticket_id).where(Ticket.state.in_(OPEN_STATES)))
    return [tuple(r) for r in rows.all()]
