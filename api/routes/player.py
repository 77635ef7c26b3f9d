"""The continuous player: start an audited play, then fetch fragments of it (vms/evidence/plays.py).

``POST /api/tickets/{id}/plays`` starts a play of one to four of the ticket's cameras (one
``footage.play`` audit entry); ``GET /api/tickets/{id}/cameras/{camera}/fragment?play=&at=&span_s=``
answers a self-contained fragmented MP4 of the footage around ``at`` (vms/evidence/fragments.py) for a
browser's Media Source Extensions buffer, with headers that place it on the wall clock.  Fragments are
authorised one by one and not audited one by one.  The body is streamed from its encrypted
:class:`~vms.evidence.playback.ClipBody`, which is shredded when the answer has been sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from api import deps
from api.schemas import Body, CameraId, Instant, Span, from_us, to_us
from vms.core.times import iso
from vms.evidence import fragments, plays

router = APIRouter(prefix="/api", tags=["player"], dependencies=[Depends(deps.signed_in)])
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
CameraPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="camera id")]
PLAY_ID = r"^[A-Za-z0-9_-]{16,64}$"


class PlayStart(Body):
    cameras: list[CameraId] = Field(min_length=1, max_length=plays.MAX_CAMERAS,
                                    description=f"1 to {plays.MAX_CAMERAS} of the ticket's cameras, side by side")
    at: Instant | None = Field(None, description="where the play starts (default: the window's start)")


class PlayPublic(BaseModel):
    id: str = Field(description="the play's id: pass it as ?play= with every fragment")
    ticket_id: int
    cameras: list[str]
    window: Span
    at: datetime
    fragment_url: str = Field(description="per camera: replace {camera}; add play, at and span_s")
    idle_s: int = Field(description="the play ends after this long without a fragment")


@router.post("/tickets/{ticket_id}/plays", status_code=201, response_model=PlayPublic,
             summary="Start an audited play of 1-4 cameras in the continuous player",
             responses={403: {"description": "outside the ticket's cameras, window or access period"}})
def start_play(ticket_id: TicketId, body: PlayStart, principal: deps.FootageViewer,
               app: deps.ApplianceDep) -> PlayPublic:
    at_us = to_us(body.at) if body.at is not None else None
    play, scope = plays.start(app, principal, ticket_id, list(body.cameras), at_us)
    return PlayPublic(id=play.id, ticket_id=ticket_id, cameras=list(play.cameras),
                      window=Span(start=from_us(scope.start_us), end=from_us(scope.end_us)),
                      at=from_us(scope.start_us if at_us is None else at_us),
                      fragment_url=f"/api/tickets/{ticket_id}/cameras/{{camera}}/fragment", idle_s=plays.IDLE_S)


@router.get("/tickets/{ticket_id}/cameras/{camera_id}/fragment", response_class=Response,
            summary="A fragment of a play: fragmented MP4 of the footage around a moment",
            responses={200: {"content": {"video/mp4": {}}, "description": "the fragment (ftyp, moov, moof+mdat ...)"},
                       403: {"description": "outside the ticket's cameras, window or access period"},
                       404: {"description": "no footage at or after the moment, or the play has ended"}})
def fragment(
    ticket_id: TicketId, camera_id: CameraPath, principal: deps.FootageViewer, app: deps.ApplianceDep,
    play: Annotated[str, Query(pattern=PLAY_ID, description="the play's id (POST .../plays)")],
    at: Annotated[Instant, Query(description="the moment (RFC 3339 with time zone) inside the ticket's window")],
    span_s: Annotated[float, Query(ge=fragments.MIN_SPAN_S, le=fragments.MAX_SPAN_S,
                                   description="seconds of footage wanted (the fragment ends on the next keyframe)")] = 4,
) -> Response:
    frag = plays.fragment(app, principal, ticket_id, play, camera_id, to_us(at), span_s)
    headers = {
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Length": str(frag.size),
        "X-Fragment-Base": iso(frag.base_us), "X-Fragment-First": iso(frag.first_us),
        "X-Fragment-End": iso(frag.end_us), "X-Fragment-Codecs": frag.codecs,
        "X-Fragment-Fps": f"{frag.fps:.3f}",
    }
    if frag.next_us is not None:
        headers["X-Fragment-Next"] = iso(frag.next_us)
    return StreamingResponse(_shredded_after(frag), media_type=frag.content_type, headers=headers,
                             background=BackgroundTask(frag.body.discard))


def _shredded_after(frag: fragments.Fragment) -> Iterator[bytes]:
    """The fragment's bytes; its encrypted file is shredded when they are sent or the client went away."""
    chunks = frag.body.chunks()  # opened here, before the first byte
    try:
        yield from chunks
    finally:
        frag.body.discard()
