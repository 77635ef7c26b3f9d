"""The data subject, followed through a clip: everyone else is hidden, the subject stays visible.

For a request of access (vms/access/requests.py) the operator marks the person in one frame with a box
(:class:`Subject`: the camera, the moment, the box in fractions of the picture).  The export then makes
two passes over that camera's footage (:func:`vms.evidence.export._export_camera`):

1. :func:`track` decodes every frame once and detects people: faces (the CenterFace model the redaction
   uses) and moving shapes (MOG2 background subtraction).  From the marked frame it follows the subject
   forwards and backwards, detection to detection: in the next frame the anchor is the detection of the same
   kind nearest the previous one (its centre within one anchor size), and the subject's box moves with it,
   keeping the box the operator drew around the anchor.  A face inside the marked box is the preferred
   anchor (faces of two people rarely merge; moving shapes do); a subject not found for
   :data:`LOST_FRAMES` frames is lost from then on (every frame after is hidden completely where people
   are: the export errs towards hiding).
2. The ordinary redaction (faces and moving objects pixelated, vms/evidence/redact.py) runs on every frame,
   and the subject's box is then put back from the unredacted picture: everyone else is hidden, including
   people standing still whose faces the detector finds, and the subject is seen as recorded.

Nothing is stored between the passes but boxes keyed by the frame's wall-clock time.  The limits are
those of the detectors: a person standing still with their face turned away is not found (and not
hidden), and when another person walks through the subject's box they are seen there; the manager reviews
the result before it is delivered (vms/evidence/release.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from storage.format.packets import Packet, StreamInfo
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence.redact import FACE_MARGIN, Box, FaceDetector, MotionDetector, enlarge
from vms.evidence.remux import shown_us
from vms.recording.bitstream import (
    has_parameter_sets,
    is_annexb,
    nal_length_size,
    parameter_sets_annexb,
    to_annexb,
)

LOST_FRAMES = 15  # one second at 15 fps without a detection of the subject: lost
KEEP_MARGIN = 0.15  # the kept box grows by this much (the subject's outline moves between detections)


@dataclass(frozen=True)
class Subject:
    """The person a request of access is about, marked by the operator in one frame."""

    camera_id: str
    at_us: int
    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        vals = (self.x, self.y, self.width, self.height)
        if not (0 <= self.x < 1 and 0 <= self.y < 1 and 0 < self.width <= 1 and 0 < self.height <= 1
                and self.x + self.width <= 1 + 1e-9 and self.y + self.height <= 1 + 1e-9):
            raise DomainError(Kind.INVALID, f"subject box {vals}: x, y, width, height are fractions of the picture "
                                            "(0 <= x, y < 1; 0 < width, height; x + width <= 1; y + height <= 1)",
                                            key=N_("export.err.subject_box"))

    def pixels(self, width: int, height: int) -> Box:
        return (int(self.x * width), int(self.y * height), min(width, int(np.ceil((self.x + self.width) * width))),
                min(height, int(np.ceil((self.y + self.height) * height))))

    def manifest(self) -> dict:
        return {"camera": self.camera_id, "marked_at_us": self.at_us,
                "box": {"x": self.x, "y": self.y, "width": self.width, "height": self.height}}


def _centre(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _inside(point: tuple[float, float], b: Box) -> bool:
    return b[0] <= point[0] <= b[2] and b[1] <= point[1] <= b[3]


@dataclass
class _Frame:
    at_us: int
    faces: list[Box]
    moving: list[Box]


def _detect(frames: Iterable[tuple[int, np.ndarray]], faces: FaceDetector) -> tuple[list[_Frame], tuple[int, int]]:
    motion = MotionDetector()
    out, size = [], (0, 0)
    for at_us, img in frames:
        h, w = img.shape[:2]
        size = (w, h)
        found = [enlarge(b, FACE_MARGIN, w, h) for b, _ in faces.detect(img)]
        moving = motion.detect(img) or []
        out.append(_Frame(at_us, found, moving))
    return out, size


def _follow(frames: list[_Frame], start: int, box: Box, kind: str, anchor: Box, step: int) -> dict[int, Box]:
    """The subject's box in frames start+step, start+2*step, ... while the anchor is found."""
    kept: dict[int, Box] = {}
    offset = (box[0] - anchor[0], box[1] - anchor[1], box[2] - anchor[2], box[3] - anchor[3])
    lost, i = 0, start + step
    while 0 <= i < len(frames) and lost <= LOST_FRAMES:
        candidates = getattr(frames[i], kind)
        cx, cy = _centre(anchor)
        reach = max(anchor[2] - anchor[0], anchor[3] - anchor[1])
        best = min(candidates, key=lambda b: (_centre(b)[0] - cx) ** 2 + (_centre(b)[1] - cy) ** 2, default=None)
        if best is not None and abs(_centre(best)[0] - cx) <= reach and abs(_centre(best)[1] - cy) <= reach:
            anchor, lost = best, 0
        else:
            lost += 1
        if lost <= LOST_FRAMES:
            kept[frames[i].at_us] = (anchor[0] + offset[0], anchor[1] + offset[1], anchor[2] + offset[2],
                                     anchor[3] + offset[3])
        i += step
    return kept


def track(frames: Iterable[tuple[int, np.ndarray]], subject: Subject, faces: FaceDetector) -> dict[int, Box]:
    """``{frame wall-clock µs: box to keep visible}`` for the frames where the subject is followed."""
    detected, (w, h) = _detect(frames, faces)
    if not detected:
        return {}
    start = min(range(len(detected)), key=lambda i: abs(detected[i].at_us - subject.at_us))
    marked = subject.pixels(w, h)
    frame = detected[start]
    kind, anchor = "faces", None
    for k in ("faces", "moving"):
        inside = [b for b in getattr(frame, k) if _inside(_centre(b), marked)]
        if inside:
            kind, anchor = k, max(inside, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            break
    if anchor is None:  # nothing detected inside the box: keep the marked box where it is, in that frame only
        anchor = marked
    kept = {frame.at_us: marked}
    if anchor is not marked:
        kept |= _follow(detected, start, marked, kind, anchor, +1)
        kept |= _follow(detected, start, marked, kind, anchor, -1)
    return {t: enlarge(b, KEEP_MARGIN, w, h) for t, b in kept.items()}


def restore(img: np.ndarray, original: np.ndarray, box: Box | None) -> None:
    """Put the subject's box back from the unredacted picture (in place)."""
    if box is None:
        return
    h, w = img.shape[:2]
    x1, y1, x2, y2 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x2 > x1 and y2 > y1:
        img[y1:y2, x1:x2] = original[y1:y2, x1:x2]


def decoded(packets: Iterable[tuple[StreamInfo, Packet]], start_us: int, end_us: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(shown wall-clock µs, BGR picture)`` of every frame shown in [start_us, end_us), in the order shown
    (pass 1; a new decoder wherever the stream's parameters change)."""
    dec, current, shown, t0 = None, None, {}, 0
    for stream, p in packets:
        if stream != current:
            if dec is not None:
                yield from _frames(dec.decode(None), shown, t0, start_us, end_us)
            dec, current, shown, t0 = av.CodecContext.create(stream.codec, "r"), stream, {}, p.pts
            params, length_size = parameter_sets_annexb(stream.codec, stream.extradata), \
                nal_length_size(stream.codec, stream.extradata)
        data = p.data if is_annexb(p.data) else to_annexb(p.data, length_size)
        if p.keyframe and not has_parameter_sets(stream.codec, data):
            data = params + data
        shown[p.pts - t0] = shown_us(p, stream.time_base)
        pkt = av.Packet(data)
        pkt.pts, pkt.dts, pkt.time_base = p.pts - t0, p.dts - t0, stream.time_base
        try:
            yield from _frames(dec.decode(pkt), shown, t0, start_us, end_us)
        except av.error.InvalidDataError:
            raise DomainError(Kind.PRECONDITION, "stored footage cannot be decoded to find the data subject",
                              key=N_("export.err.subject_undecodable")) from None
    if dec is not None:
        yield from _frames(dec.decode(None), shown, t0, start_us, end_us)


def _frames(frames, shown: dict[int, int], t0: int, start_us: int, end_us: int):
    for f in frames:
        at = shown.pop(f.pts, None)
        if at is not None and start_us <= at < end_us:
            yield at, f.to_ndarray(format="bgr24")
