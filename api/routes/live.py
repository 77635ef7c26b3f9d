"""Live view over HTTP: the recorder's packets as one long fragmented-MP4 response.

``GET /api/cameras/{camera_id}/live`` answers ``video/mp4`` with the codec in ``X-Live-Codecs`` and then
streams an initialisation segment and one fragment per frame for as long as the viewer stays (the
browser reads it with ``fetch`` and appends it to a Media Source Extensions buffer; api/static/live.js).
The response ends when the camera reconnects with a new stream or sends nothing for
:data:`QUIET_S` seconds; the page then asks again.  Start and end of each session are audited
(``live.start``, ``live.end`` with the seconds watched); ``GET /api/live/viewers`` tells administrators
who is watching now.  Only cameras with ``live_view = true`` are served, only to operators and managers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api import deps
from api.schemas import Instant, from_us
from vms.access import audit, policy
from vms.access.auth import Principal
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.recording.live import Packet, StreamInfo
from vms.recording.live_mux import LiveMuxer, StreamRestart, mse_codec

router = APIRouter(prefix="/api", tags=["live"], dependencies=[Depends(deps.signed_in)])
log = logging.getLogger(__name__)
CameraId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="camera id")]
LiveViewer = Annotated[Principal, Depends(deps.require(policy.Action.LIVE_VIEW))]
FIRST_PICTURE_S = 5.0  # how long a new viewer waits for the camera's stream before being told it has none
QUIET_S = 5.0          # no packet for this long: the response ends (the page says so and asks again)


class ViewerPublic(BaseModel):
    camera_id: str
    user: str
    since: Instant


def _audit(app, principal: Principal, action: str, camera_id: str, *, outcome: str = "ok",
           detail: str = "") -> None:
    with Session(app.engine) as s, s.begin():
        audit.record(s, principal.actor, action, now_us=app.clock.now_us(), obj=f"camera:{camera_id}",
                     outcome=outcome, detail=detail)


def live_refusal(app, camera_id: str) -> DomainError | None:
    cam = app.config.camera(camera_id)
    if cam is None or not cam.enabled:
        return DomainError(Kind.NOT_FOUND, f"camera {camera_id!r} does not exist or is disabled",
                           key=N_("live.err.unknown"), params={"camera": camera_id[:64]})
    if not cam.live_view:
        return DomainError(Kind.FORBIDDEN, f"live view is off for camera {camera_id!r}; an administrator turns it "
                                           "on (live_view = true) where the site's signage and privacy policy "
                                           "allow it", key=N_("live.err.off"), params={"camera": camera_id[:64]})
    return None


async def _next_stream(viewer, timeout_s: float) -> StreamInfo | None:
    """The first queue item that says which stream follows (packets before it are for nobody yet)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return None
        try:
            item = await asyncio.wait_for(viewer.queue.get(), left)
        except TimeoutError:
            return None
        if isinstance(item, StreamInfo):
            return item
        viewer.taken()


@router.get("/cameras/{camera_id}/live", response_class=StreamingResponse,
            summary="Watch a camera live: fragmented MP4 streamed for as long as the viewer stays (audited)",
            responses={200: {"content": {"video/mp4": {}}}})
async def live(camera_id: CameraId, request: Request, principal: LiveViewer, app: deps.ApplianceDep):
    refusal = live_refusal(app, camera_id)
    if refusal is not None:
        await run_in_threadpool(_audit, app, principal, "live.start", camera_id,
                                outcome=f"refused: {refusal.message}")
        raise refusal
    hub = app.live
    viewer = hub.watch(camera_id, principal.name, app.clock.now_us(), asyncio.get_running_loop())
    stream = await _next_stream(viewer, FIRST_PICTURE_S)
    if stream is None:
        hub.leave(viewer)
        raise DomainError(Kind.PRECONDITION, f"camera {camera_id!r} sends no pictures to this node now (it is "
                                            "offline, or another node records it); try again shortly",
                                            key=N_("live.err.no_pictures"), params={"camera": camera_id[:64]})
    await run_in_threadpool(_audit, app, principal, "live.start", camera_id)
    started = app.clock.monotonic_s()

    async def body():
        muxer = LiveMuxer(stream)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(viewer.queue.get(), QUIET_S)
                except TimeoutError:
                    return
                if not isinstance(item, Packet):
                    return  # a new stream: this response ends, the page asks again
                viewer.taken()
                try:
                    data = muxer.add(item)
                except StreamRestart:
                    return
                if data:
                    yield data
        finally:
            hub.leave(viewer)
            muxer.close()
            seconds = app.clock.monotonic_s() - started
            try:  # in the finally of a cancelled response: written here, synchronously (one short transaction)
                _audit(app, principal, "live.end", camera_id, detail=f"watched {seconds:.0f} s")
            except Exception as exc:  # the viewer has gone either way; the start entry stands
                log.error("live view of camera %s: could not audit its end (%s)", camera_id,
                          exc.__class__.__name__)

    headers = {"Cache-Control": "no-store", "X-Live-Codecs": mse_codec(stream), "X-Content-Type-Options": "nosniff"}
    return StreamingResponse(body(), media_type="video/mp4", headers=headers)


@router.get("/live/viewers", response_model=list[ViewerPublic],
            summary="Who is watching which camera live now (administrators)")
async def viewers(principal: deps.Administrator, app: deps.ApplianceDep) -> list[ViewerPublic]:
    return [ViewerPublic(camera_id=v.camera_id, user=v.user, since=from_us(v.started_us))
            for v in app.live.watching()]
