"""Incident tickets: file, read, decide (four-eyes), close; their holds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from api import deps
from api.schemas import (
    Decision,
    HoldPublic,
    QueryFlag,
    TicketCreate,
    TicketPage,
    TicketPublic,
    camera_name,
    from_us,
    to_us,
)
from vms.access import requests, tickets
from vms.access.tickets import TicketView
from vms.recording.names import CameraNames

router = APIRouter(prefix="/api/tickets", tags=["tickets"], dependencies=[Depends(deps.signed_in)])
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
State = Annotated[str, Query(pattern="^(" + "|".join(tickets.STATES) + ")$")]
NEXT_STATES = {state: sorted(s for s in targets if s != state) for state, targets in tickets.TRANSITIONS.items()}


def public(t: TicketView, names: CameraNames, zone: str = "UTC") -> TicketPublic:
    return TicketPublic(
        id=t.id, state=t.state, requester=t.requester, action=t.action, recipient=t.recipient,
        description=t.description, purpose=t.purpose, legal_basis=t.legal_basis, start=from_us(t.start_us),
        end=from_us(t.end_us), cameras=list(t.cameras), created_at=from_us(t.created_us),
        camera_names=[camera_name(names[c]) for c in t.cameras],
        updated_at=from_us(t.updated_us), decided_by=t.decided_by, decided_at=from_us(t.decided_us),
        decision_reason=t.decision_reason, access_until=from_us(t.access_until_us), closed_at=from_us(t.closed_us),
        next_states=NEXT_STATES[t.state], doors=list(t.doors), door_id_lookup=t.door_id_lookup,
        received_at=from_us(t.received_us),
        deadline=from_us(requests.deadline_us(t.received_us, zone)) if t.received_us is not None else None,
    )


# The busiest routes are async and do their blocking work in one worker-thread call, which also builds the
# response model; FastAPI then serialises it on the event loop (a sync route would validate it in a second
# worker-thread hop).


@router.get("", response_model=TicketPage, summary="Tickets I may read, newest first (operators: their own)")
async def list_tickets(
    principal: deps.TicketReader, app: deps.ApplianceDep,
    state: Annotated[list[State] | None, Query(max_length=7, description="filter by state (repeatable)")] = None,
    camera: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = None,
    mine: Annotated[QueryFlag, Query(description="only the tickets I filed (true or false)")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> TicketPage:
    def page() -> TicketPage:
        names = CameraNames(app.engine)
        rows, total = tickets.list_tickets(app, principal, states=state, camera_id=camera, mine=mine, limit=limit,
                                           offset=offset)
        nxt = offset + len(rows) if offset + len(rows) < total else None
        return TicketPage(items=[public(t, names, app.config.timezone) for t in rows], total=total, limit=limit, offset=offset, next_offset=nxt)
    return await run_in_threadpool(page)


@router.post("", response_model=TicketPublic, status_code=201, summary="File a ticket (operator or manager)")
async def file_ticket(body: TicketCreate, principal: deps.TicketFiler, app: deps.ApplianceDep) -> TicketPublic:
    def file() -> TicketPublic:
        return public(tickets.file_ticket(
            app, principal, cameras=body.cameras, start_us=to_us(body.start), end_us=to_us(body.end),
            description=body.description, purpose=body.purpose, legal_basis=body.legal_basis, action=body.action,
            recipient=body.recipient, doors=body.doors, door_id_lookup=body.door_id_lookup,
            received_us=to_us(body.received) if body.received is not None else None,
        ), CameraNames(app.engine), app.config.timezone)
    return await run_in_threadpool(file)


@router.get("/{ticket_id}", response_model=TicketPublic, summary="One ticket")
async def get_ticket(ticket_id: TicketId, principal: deps.TicketReader, app: deps.ApplianceDep) -> TicketPublic:
    return await run_in_threadpool(lambda: public(tickets.get(app, principal, ticket_id), CameraNames(app.engine), app.config.timezone))


@router.post("/{ticket_id}/approve", response_model=TicketPublic,
             summary="Approve (a manager other than the requester): opens the access window, places the holds",
             responses={403: {"description": "not a manager, or the requester (four-eyes)"},
                        409: {"description": "the ticket cannot be approved in its state"}})
def approve(ticket_id: TicketId, body: Decision, principal: deps.TicketDecider, app: deps.ApplianceDep) -> TicketPublic:
    return public(tickets.decide(app, principal, ticket_id, approve=True, reason=body.reason), CameraNames(app.engine), app.config.timezone)


@router.post("/{ticket_id}/deny", response_model=TicketPublic, summary="Deny (a manager other than the requester)")
def deny(ticket_id: TicketId, body: Decision, principal: deps.TicketDecider, app: deps.ApplianceDep) -> TicketPublic:
    return public(tickets.decide(app, principal, ticket_id, approve=False, reason=body.reason), CameraNames(app.engine), app.config.timezone)


@router.post("/{ticket_id}/close", response_model=TicketPublic,
             summary="Close or withdraw (requester or a manager): holds end after the grace period")
def close(ticket_id: TicketId, body: Decision, principal: deps.TicketCloser, app: deps.ApplianceDep) -> TicketPublic:
    return public(tickets.close(app, principal, ticket_id, reason=body.reason), CameraNames(app.engine), app.config.timezone)


@router.get("/{ticket_id}/holds", response_model=list[HoldPublic], summary="Legal holds placed by the ticket")
def holds(ticket_id: TicketId, principal: deps.TicketReader, app: deps.ApplianceDep) -> list[HoldPublic]:
    return [HoldPublic(camera=h.camera_id, start=from_us(h.start_us), end=from_us(h.end_us),
                       placed_at=from_us(h.created_us), released_at=from_us(h.released_us))
            for h in tickets.holds(app, principal, ticket_id)]
