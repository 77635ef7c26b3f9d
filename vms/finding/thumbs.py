"""Keyframe thumbnails inside a ticket's window: decoded on demand, JPEG at most 320 px wide, cached in
memory only.

:func:`thumbnail` answers the keyframe shown nearest at or before the asked moment and inside the ticket's
window (the segment holding the moment first, then up to :data:`LOOK_BACK_US` before it across a gap);
when the window holds none there (the moment lies before the window's first keyframe) the first keyframe
after it inside the window.  :class:`ThumbCache` keeps recent answers (bounded by count); an entry is used
only while its segment is still readable (not deleted, its key not shredded) and its frame lies inside the
asking ticket's window.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
from sqlalchemy.orm import Session

from storage.sql import index
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.finding import gate
from vms.finding.frames import Decoder, Keyframe, keyframes

MAX_WIDTH = 320
JPEG_QUALITY = 80
LOOK_BACK_US = 120_000_000
CACHE_ENTRIES = 512  # about 10 kB each at 320 px


@dataclass(frozen=True)
class Thumb:
    jpeg: bytes
    shown_us: int
    segment_id: int


class ThumbCache:
    def __init__(self, entries: int = CACHE_ENTRIES):
        self.entries = entries
        self._items: OrderedDict[tuple, Thumb] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Thumb | None:
        with self._lock:
            t = self._items.get(key)
            if t is not None:
                self._items.move_to_end(key)
            return t

    def put(self, key: tuple, thumb: Thumb) -> None:
        with self._lock:
            self._items[key] = thumb
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def thumbnail(app, principal, ticket_id: int, camera_id: str, at_us: int, cache: ThumbCache) -> Thumb:
    """The thumbnail for ``at_us`` (checked by the gate: inside the ticket's cameras and window, access open)."""
    sc = gate.authorize(app, principal, ticket_id, camera_id, at_us, at_us + 1, action="footage.thumbnail")
    lo, hi = sc.start_us, sc.end_us
    key = (camera_id, at_us)
    hit = cache.get(key)
    if hit is not None and lo <= hit.shown_us < hi and _readable(app, hit.segment_id):
        return hit
    kf = _nearest(app, camera_id, at_us, lo, hi)
    if kf is None:
        raise DomainError(Kind.NOT_FOUND, f"camera {camera_id} has no recording at or near the requested moment "
                                          "inside the ticket's window",
                                          key=N_("player.err.no_recording_near"), params={"camera": camera_id})
    done = cache.get((camera_id, kf.segment_id, kf.shown_us))
    if done is None:
        done = Thumb(_jpeg(kf), kf.shown_us, kf.segment_id)
        cache.put((camera_id, kf.segment_id, kf.shown_us), done)
    cache.put(key, done)
    return done


def _nearest(app, camera_id: str, at_us: int, lo: int, hi: int) -> Keyframe | None:
    for read_from in (at_us, max(lo, at_us - LOOK_BACK_US)):
        last = None
        for kf in keyframes(app, camera_id, lo, min(hi, at_us + 1), read_from_us=read_from):
            last = kf
        if last is not None:
            return last
    return next(keyframes(app, camera_id, at_us, hi), None)


def _readable(app, segment_id: int) -> bool:
    with Session(app.engine) as s:
        return segment_id in index.readable_segments(s, [segment_id])


def _jpeg(kf: Keyframe) -> bytes:
    frame = Decoder().decode(kf)
    if frame is None:
        raise DomainError(Kind.PRECONDITION, "the keyframe at that moment cannot be decoded",
                          key=N_("player.err.thumb"))
    width = min(MAX_WIDTH, frame.width)
    height = max(2, round(frame.height * width / frame.width))
    bgr = frame.reformat(width=width, height=height, format="bgr24").to_ndarray()
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise DomainError(Kind.PRECONDITION, "the thumbnail could not be encoded as JPEG", key=N_("player.err.thumb"))
    return buf.tobytes()
