"""The audit trail for auditors: filtered pages, CSV export, chain verification.

There is no route that changes or deletes entries.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from api import deps
from api.schemas import AuditEntryPublic, AuditPage, Instant, VerifyPublic, from_us, to_us
from vms.access import audit, policy

router = APIRouter(prefix="/api/audit", tags=["audit"], dependencies=[Depends(deps.require(policy.Action.AUDIT_READ))])

Actor = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$",
                                    description="exact actor name")]
Action = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9._-]+$",
                                     description="exact action, or a prefix ending in '.' (e.g. 'ticket.')")]
TicketFilter = Annotated[int | None, Query(ge=1, le=2**62)]
Since = Annotated[Instant | None, Query(description="entries at or after this time")]
Until = Annotated[Instant | None, Query(description="entries before this time")]
CSV_COLUMNS = ("seq", "at", "actor", "role", "action", "object", "ticket_id", "client", "outcome", "detail",
               "prev_hash", "hash")


def _filters(actor, action, ticket_id, since, until) -> dict:
    return {"actor": actor, "action": action, "ticket_id": ticket_id,
            "since_us": to_us(since) if since else None, "until_us": to_us(until) if until else None}


def _public(r: audit.AuditRow) -> AuditEntryPublic:
    return AuditEntryPublic(seq=r.seq, at=from_us(r.at_us), actor=r.actor, role=r.role, action=r.action,
                            object=r.object, ticket_id=r.ticket_id, client=r.client, outcome=r.outcome,
                            detail=r.detail, prev_hash=r.prev_hash, hash=r.hash)


@router.get("", response_model=AuditPage, summary="Audit entries, oldest first, filtered; page with after_seq")
def entries(
    app: deps.ApplianceDep, actor: Actor = None, action: Action = None, ticket_id: TicketFilter = None,
    since: Since = None, until: Until = None, after_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditPage:
    rows = audit.search(app.engine, after_seq=after_seq, limit=limit, **_filters(actor, action, ticket_id, since, until))
    return AuditPage(items=[_public(r) for r in rows], next_after_seq=rows[-1].seq if len(rows) == limit else None)


def _cell(value) -> str:
    text = "" if value is None else str(value)
    # a spreadsheet must not run an entry as a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/export.csv", summary="Audit entries as CSV (same filters); the export itself is audited",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
def export_csv(
    principal: deps.AuditReader, app: deps.ApplianceDep, actor: Actor = None, action: Action = None,
    ticket_id: TicketFilter = None, since: Since = None, until: Until = None,
) -> StreamingResponse:
    filters = _filters(actor, action, ticket_id, since, until)
    with audit.audited(app.engine, app.clock, principal.actor, "audit.export") as (_, entry):
        entry.detail = " ".join(f"{k}={v}" for k, v in filters.items() if v is not None)[:2000]

    def rows():
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for r in audit.iter_search(app.engine, **filters):
            writer.writerow([_cell(v) for v in (r.seq, _iso(from_us(r.at_us)), r.actor, r.role, r.action, r.object,
                                                 r.ticket_id, r.client, r.outcome, r.detail, r.prev_hash, r.hash)])
            if buf.tell() > 64 << 10:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="audit.csv"'})


@router.get("/verify", response_model=VerifyPublic, summary="Verify the hash chain (as 'vms audit verify')")
def verify(app: deps.ApplianceDep) -> VerifyPublic:
    result = audit.verify_anchored(app)  # against the anchor outside the database, as the CLI does
    problem = result.problem or ("" if result.triggers_present else "the append-only triggers are missing")
    return VerifyPublic(ok=result.ok, entries=result.entries, bad_entry=result.bad_seq, problem=problem,
                        triggers_present=result.triggers_present)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
