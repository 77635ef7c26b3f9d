"""The door log over HTTP: a controller's push, the administrator's import status, and a ticket's lookups.

* ``POST /api/doorlog/push`` -- a door controller sends one CSV file (the body) with its own token
  (``Authorization: Bearer ...``; not a user's, checked against ``[[doorlog.controllers]]``); the answer is the
  import's outcome, a rejected file a 422 naming its bad lines.  Audited like an inbox import.
* ``GET /api/doorlog/files`` -- recent files and what became of them (no identifiers).
* ``GET /api/tickets/{id}/doorlog`` -- who passed the ticket's doors in a span (query: door, start, end).
* ``POST /api/tickets/{id}/doorlog/identifier`` -- when one CPR or card number passed; a POST so the number is
  never in a URL (nor in any log of one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import deps
from api.schemas import Body, Instant, Line, from_us, to_us
from vms.access import policy
from vms.core.doorlog_config import DOOR_ID
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.doorlog import ingest, lookup

router = APIRouter(prefix="/api", tags=["doorlog"], dependencies=[Depends(deps.signed_in)])
controllers = APIRouter(prefix="/api/doorlog", tags=["doorlog"])  # machine-to-machine: the controller's token
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
DoorId = Annotated[str, Field(pattern=DOOR_ID.pattern, description="door id")]
DoorLookup = Annotated[object, Depends(deps.require(policy.Action.DOORLOG_LOOKUP))]
DoorStatus = Annotated[object, Depends(deps.require(policy.Action.DOORLOG_STATUS))]


class ImportOutcome(BaseModel):
    file_id: int | None
    status: str
    rows: int
    added: int
    expired: int
    report: str


class DoorlogFilePublic(BaseModel):
    id: int
    name: str
    source: str
    received_at: datetime
    status: str
    rows: int
    added: int
    report: str


class Passage(BaseModel):
    at: datetime
    door: str
    identifier: str
    kind: str


class IdentifierQuery(Body):
    identifier: Line(40)
    doors: Annotated[list[DoorId], Field(max_length=64)] = []
    start: Instant | None = None
    end: Instant | None = None


def _passages(found) -> list[Passage]:
    return [Passage(at=from_us(p.at_us), door=p.door_id, identifier=p.identifier, kind=p.kind) for p in found]


@controllers.post("/push", response_model=ImportOutcome, summary="A door controller pushes one CSV export",
                  responses={401: {"description": "unknown controller token"},
                             413: {"description": "larger than [doorlog] max_file_bytes"},
                             422: {"description": "the file was rejected; the report names its bad lines"}})
async def push(request: Request, app: deps.ApplianceDep,
               name: Annotated[str, Query(max_length=200, pattern=r"^[^/\\\x00-\x1f]+$")] = "push.csv"):
    authz = request.headers.get("authorization", "")
    scheme, _, token = authz.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError(Kind.UNAUTHENTICATED, "Authorization must be 'Bearer <the controller's token>'",
                          key=N_("doorlog.err.bearer"))
    cfg = ingest.require_config(app)
    actor = await run_in_threadpool(ingest.controller_for, app, token.strip(), client=deps.client_address(request))
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > cfg.max_file_bytes:
            from api.problems import localized, problem
            big = DomainError(Kind.INVALID, f"more than [doorlog] max_file_bytes ({cfg.max_file_bytes}) bytes",
                              key=N_("doorlog.err.push_too_big"), params={"max": cfg.max_file_bytes})
            headers: dict = {}
            return problem(413, big.message, headers=headers, **localized(request, big, headers))
    result = await run_in_threadpool(lambda: ingest.import_file(app, bytes(data), name=name,
                                                                source=actor.name[:80], actor=actor))
    if result.status == "rejected":
        raise DomainError(Kind.INVALID, f"the file was rejected, nothing imported:\n{result.report}",
                          key=N_("doorlog.err.rejected"), params={"report": result.report})
    return ImportOutcome(file_id=result.file_id, status=result.status, rows=result.rows, added=result.added,
                         expired=result.expired, report=result.report)


@router.get("/doorlog/files", response_model=list[DoorlogFilePublic],
            summary="Recent door-log files and what became of them (administrator, auditor)")
def files(principal: DoorStatus, app: deps.ApplianceDep,
          limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DoorlogFilePublic]:
    return [DoorlogFilePublic(id=f.id, name=f.name, source=f.source, received_at=from_us(f.received_us),
                              status=f.status, rows=f.rows, added=f.added, report=f.report)
            for f in ingest.recent_files(app, limit)]


@router.get("/tickets/{ticket_id}/doorlog", response_model=list[Passage],
            summary="Who passed the ticket's doors in a span (inside the ticket; audited)")
def at_doors(ticket_id: TicketId, principal: DoorLookup, app: deps.ApplianceDep,
             door: Annotated[list[Annotated[str, Query(pattern=DOOR_ID.pattern)]] | None,
                             Query(max_length=64, description="door (repeatable); default: all the ticket's")] = None,
             start: Annotated[Instant | None, Query(description="default: the ticket's start")] = None,
             end: Annotated[Instant | None, Query(description="default: the ticket's end")] = None) -> list[Passage]:
    return _passages(lookup.at_doors(app, principal, ticket_id, doors=door,
                                     start_us=to_us(start) if start else None, end_us=to_us(end) if end else None))


@router.post("/tickets/{ticket_id}/doorlog/identifier", response_model=list[Passage],
             summary="When one CPR or card number passed the ticket's doors (only when the ticket allows it)")
def of_identifier(ticket_id: TicketId, body: IdentifierQuery, principal: DoorLookup,
                  app: deps.ApplianceDep) -> list[Passage]:
    return _passages(lookup.of_identifier(app, principal, ticket_id, body.identifier, doors=body.doors or None,
                                          start_us=to_us(body.start) if body.start else None,
                                          end_us=to_us(body.end) if body.end else None))
