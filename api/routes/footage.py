"""Footage inside a ticket: what was recorded, and playback as fragmented MP4.

Playback answers HTTP Range requests (206) so a browser's ``<video>`` element
can scrub.  The clip is muxed once per (credential, ticket, camera, span) into
an encrypted body whose key lives only in this cache
(:class:`vms.evidence.playback.ClipBody`), so the range requests of one viewing
do not decrypt the footage again and each answer streams chunk by chunk: memory
per viewer stays bounded whatever the span's length.  Each mux is one audited
play, and every request, cached or not, is authorised again.  A clip leaving the
cache is crypto-shredded (key forgotten, file removed).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api import deps
from api.problems import problem
from api.schemas import CameraFootagePublic, CameraPublic, GapPublic, Instant, Span, from_us, to_us
from vms.evidence import playback
from vms.ops.camera_list import camera_list

router = APIRouter(prefix="/api", tags=["footage"], dependencies=[Depends(deps.signed_in)])
TicketId = Annotated[int, Path(ge=1, le=2**62, description="ticket id")]
CameraId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="camera id")]
RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")


class ClipCache:
    """A few recent clips in memory (bounded by count and bytes, with an age limit)."""

    def __init__(self, *, entries: int = 8, max_bytes: int = 256 << 20, max_age_s: float = 300.0):
        self.entries, self.max_bytes, self.max_age_s = entries, max_bytes, max_age_s
        self._items: OrderedDict[tuple, tuple[float, playback.Clip]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, now_s: float) -> playback.Clip | None:
        with self._lock:
            self._expire(now_s)
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[1]

    def drop(self, key: tuple) -> None:
        with self._lock:
            item = self._items.pop(key, None)
        if item is not None:
            item[1].body.discard()

    def put(self, key: tuple, clip: playback.Clip, now_s: float) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                old[1].body.discard()
            self._items[key] = (now_s, clip)
            self._expire(now_s)
            while len(self._items) > 1 and (len(self._items) > self.entries
                                            or sum(c.size for _, c in self._items.values()) > self.max_bytes):
                self._items.popitem(last=False)[1][1].body.discard()

    def clear(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), OrderedDict()
        for _, clip in items:
            clip.body.discard()

    def _expire(self, now_s: float) -> None:
        for key in [k for k, (t, _) in self._items.items() if now_s - t > self.max_age_s]:
            self._items.pop(key)[1].body.discard()


@router.get("/cameras", response_model=list[CameraPublic],
            summary="Cameras: ids a ticket may name, their name, place, retention and whether they record now")
def cameras(principal: deps.CameraReader, app: deps.ApplianceDep) -> list[CameraPublic]:
    return [CameraPublic(
        id=c.id, name=c.name, place=c.place, node_id=c.node_id, retain_days=c.retain_days, removed=c.removed,
        enabled=c.enabled, recording=c.recording, offline_since=from_us(c.offline_since_us),
        last_gap_start=from_us(c.last_gap_start_us), last_gap_end=from_us(c.last_gap_end_us),
        last_gap_reason=c.last_gap_reason,
    ) for c in camera_list(app)]


@router.get("/tickets/{ticket_id}/footage", response_model=list[CameraFootagePublic],
            summary="Recorded spans, gaps and missing parts per camera inside an approved ticket")
def footage(ticket_id: TicketId, principal: deps.FootageViewer, app: deps.ApplianceDep) -> list[CameraFootagePublic]:
    out = []
    for cam in playback.footage(app, principal, ticket_id):
        out.append(CameraFootagePublic(
            camera=cam.camera_id,
            recorded=[Span(start=from_us(a), end=from_us(b)) for a, b in cam.recorded],
            gaps=[GapPublic(start=from_us(a), end=from_us(b), reason=r) for a, b, r in cam.gaps],
            missing=[Span(start=from_us(a), end=from_us(b)) for a, b in cam.missing],
            play_url=f"/api/tickets/{ticket_id}/cameras/{cam.camera_id}/play",
        ))
    return out


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """(first, last) inclusive, None for the whole body, or an error message."""
    if not header:
        return None
    m = RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return "Range: only one 'bytes=first-last' range is supported"
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        return (max(0, size - n), size - 1) if n else "Range: an empty suffix range"
    a = int(first)
    b = min(int(last), size - 1) if last else size - 1
    if a >= size or b < a:
        return f"Range: bytes {a}-{last} lie outside the clip's {size} bytes"
    return a, b


@router.get("/tickets/{ticket_id}/cameras/{camera_id}/play", summary="Play a span as fragmented MP4 (Range supported)",
            response_class=Response,
            responses={200: {"content": {"video/mp4": {}}, "description": "the clip"},
                       206: {"content": {"video/mp4": {}}, "description": "part of the clip"},
                       403: {"description": "outside the ticket's cameras, window or access window"}})
def play(
    ticket_id: TicketId, camera_id: CameraId, request: Request, principal: deps.FootageViewer, app: deps.ApplianceDep,
    start: Annotated[Instant, Query(description="span start (RFC 3339 with time zone)")],
    end: Annotated[Instant, Query(description="span end (exclusive)")],
) -> Response:
    start_us, end_us = to_us(start), to_us(end)
    if end_us <= start_us:  # invalid input, whatever the ticket says
        return problem(422, f"the requested span is empty or reversed: end {_iso(end)} is not after start "
                       f"{_iso(start)}", instance=request.url.path)
    cache: ClipCache = request.app.state.clip_cache
    key = (principal.credential_id, ticket_id, camera_id, start_us, end_us)
    now_s = app.clock.monotonic_s()
    clip = cache.get(key, now_s)
    if clip is not None:
        playback.authorize_play(app, principal, ticket_id, camera_id, start_us, end_us)
        if not playback.still_readable(app, clip):  # expired or shredded since: never serve it from memory
            cache.drop(key)
            clip = None
    fresh = clip is None
    if fresh:
        clip = playback.play(app, principal, ticket_id, camera_id, start_us, end_us)
    size = clip.size
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if clip.first_us is not None:
        headers["X-Footage-First"] = _iso(from_us(clip.first_us))
        headers["X-Footage-Last"] = _iso(from_us(clip.last_us))
    rng = _byte_range(request.headers.get("range"), size)
    if isinstance(rng, str):
        if fresh:
            cache.put(key, clip, now_s)
        return problem(416, rng, instance=request.url.path, headers={"Content-Range": f"bytes */{size}"})
    a, b = (0, size - 1) if rng is None else rng
    try:
        body = clip.body.chunks(a, b)  # opens the file: from here on an eviction cannot cut the answer short
    except FileNotFoundError:  # evicted by another viewer between the lookup and here: play it again
        clip, fresh = playback.play(app, principal, ticket_id, camera_id, start_us, end_us), True
        body = clip.body.chunks(a, b)
    if fresh:
        cache.put(key, clip, now_s)
    headers["Content-Length"] = str(b - a + 1)
    if rng is None:
        return StreamingResponse(body, media_type=clip.content_type, headers=headers)
    headers["Content-Range"] = f"bytes {a}-{b}/{size}"
    return StreamingResponse(body, status_code=206, media_type=clip.content_type, headers=headers)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
