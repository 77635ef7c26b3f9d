"""Finding the incident inside an approved ticket: activity, keyframe thumbnails and region search.

* ``GET /api/tickets/{id}/cameras/{camera}/activity?start=&end=&step_s=`` -- one level per step (0..100, or
  null where nothing was recorded), from the activity records written while recording.
* ``GET /api/tickets/{id}/cameras/{camera}/thumbnail?at=`` -- JPEG (at most 320 px wide) of the keyframe
  shown nearest at or before ``at`` inside the window; ``X-Frame-Time`` says when it was shown.
* ``POST /api/tickets/{id}/cameras/{camera}/searches`` -- start a region search (202);
  ``GET /api/tickets/{id}/searches/{search_id}`` follows it, ``POST .../cancel`` stops it.

Everything is refused (403 problem) outside the ticket's cameras and window and after its access period,
for every role (:mod:`vms.finding.gate`, the access policy's play rule).  Each search is audited once;
activity and thumbnails are not audited per request.  Domain: :mod:`vms.finding`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field, Strict

from api import deps
from api.schemas import Body, Instant, from_us, to_us
from vms.finding.search import Region, Search

router = APIRouter(prefix="/api", tags=["finding"], dependencies=[Depends(deps.signed_in)])
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
CameraId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="camera id")]
SearchId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="search id")]
Fraction01 = Annotated[float, Strict(), Field(ge=0, le=1)]


class ActivityPublic(BaseModel):
    camera_id: str
    start: datetime
    end: datetime
    step_s: int
    levels: list[int | None] = Field(description="one per step: 0 (still) .. 100, null where nothing is known")


class RegionIn(Body):
    """A rectangle as fractions of the picture: top-left corner x, y and size w, h."""

    x: Fraction01
    y: Fraction01
    w: Annotated[float, Strict(), Field(gt=0, le=1)]
    h: Annotated[float, Strict(), Field(gt=0, le=1)]


class SearchCreate(Body):
    region: RegionIn
    start: Instant | None = Field(None, description="default: the ticket's window start")
    end: Instant | None = Field(None, description="default: the ticket's window end")


class HitPublic(BaseModel):
    at: datetime = Field(description="when the first keyframe showing the change was shown")
    score: float = Field(description="share of the region's pixels that changed, 0..1")


class SearchPublic(BaseModel):
    id: str
    camera_id: str
    state: Literal["running", "done", "cancelled", "failed"]
    progress: float = Field(description="share of the span scanned, 0..1")
    start: datetime
    end: datetime
    region: dict[str, float]
    error: str | None = None
    hits: list[HitPublic]


def _search(s: Search) -> SearchPublic:
    r = s.region
    return SearchPublic(id=s.id, camera_id=s.camera_id, state=s.state, progress=round(s.progress, 4),
                        start=from_us(s.start_us), end=from_us(s.end_us),
                        region={"x": r.x, "y": r.y, "w": r.w, "h": r.h}, error=s.error or None,
                        hits=[HitPublic(at=from_us(h.at_us), score=h.score) for h in list(s.hits)])


def _us(t: datetime | None) -> int | None:
    return None if t is None else to_us(t)


@router.get("/tickets/{ticket_id}/cameras/{camera_id}/activity", response_model=ActivityPublic,
            summary="Activity levels of a camera inside an approved ticket's window")
def activity(
    ticket_id: TicketId, camera_id: CameraId, principal: deps.FootageViewer, app: deps.ApplianceDep,
    start: Annotated[Instant | None, Query(description="default: the window's start")] = None,
    end: Annotated[Instant | None, Query(description="default: the window's end")] = None,
    step_s: Annotated[int, Query(ge=1, le=86_400, description="seconds per level")] = 1,
) -> ActivityPublic:
    a, b, levels = app.finding.activity(principal, ticket_id, camera_id, _us(start), _us(end), step_s)
    return ActivityPublic(camera_id=camera_id, start=from_us(a), end=from_us(b), step_s=step_s, levels=levels)


@router.get("/tickets/{ticket_id}/cameras/{camera_id}/thumbnail", response_class=Response,
            summary="JPEG of the keyframe nearest at or before a moment inside an approved ticket's window",
            responses={200: {"content": {"image/jpeg": {}}, "description": "the thumbnail"},
                       403: {"description": "outside the ticket's cameras, window or access period"},
                       404: {"description": "no recording there"}})
def thumbnail(
    ticket_id: TicketId, camera_id: CameraId, principal: deps.FootageViewer, app: deps.ApplianceDep,
    at: Annotated[Instant, Query(description="the moment (RFC 3339 with time zone)")],
) -> Response:
    thumb = app.finding.thumbnail(principal, ticket_id, camera_id, to_us(at))
    headers = {"X-Frame-Time": from_us(thumb.shown_us).isoformat().replace("+00:00", "Z"),
               "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    return Response(thumb.jpeg, media_type="image/jpeg", headers=headers)


@router.post("/tickets/{ticket_id}/cameras/{camera_id}/searches", response_model=SearchPublic, status_code=202,
             summary="Start a region search over the camera's footage inside an approved ticket's window")
def start_search(ticket_id: TicketId, camera_id: CameraId, body: SearchCreate, principal: deps.FootageViewer,
                 app: deps.ApplianceDep, response: Response) -> SearchPublic:
    r = body.region
    s = app.finding.search(principal, ticket_id, camera_id, Region(r.x, r.y, r.w, r.h), _us(body.start),
                           _us(body.end))
    response.headers["Location"] = f"/api/tickets/{ticket_id}/searches/{s.id}"
    return _search(s)


@router.get("/tickets/{ticket_id}/searches/{search_id}", response_model=SearchPublic,
            summary="A region search's state, progress and hits (its starter only)")
def get_search(ticket_id: TicketId, search_id: SearchId, principal: deps.FootageViewer,
               app: deps.ApplianceDep) -> SearchPublic:
    return _search(app.finding.searches.get(principal, ticket_id, search_id))


@router.post("/tickets/{ticket_id}/searches/{search_id}/cancel", response_model=SearchPublic,
             summary="Cancel a region search")
def cancel_search(ticket_id: TicketId, search_id: SearchId, principal: deps.FootageViewer,
                  app: deps.ApplianceDep) -> SearchPublic:
    return _search(app.finding.searches.cancel(principal, ticket_id, search_id))
