"""A test clip with a clearly visible face: the public-domain astronaut portrait
(``testkit/data/astronaut.png``) moving across a synthetic background, H.264 (libx264)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

ASTRONAUT = Path(__file__).resolve().parent / "data" / "astronaut.png"


def face_clip(path: Path, *, seconds: float = 3, width: int = 640, height: int = 360, fps: int = 15,
              face_px: int = 300, step_px: int = 4) -> Path:
    """The portrait, ``face_px`` square, sliding ``step_px`` to the right every frame."""
    portrait = cv2.resize(cv2.imread(str(ASTRONAUT)), (face_px, face_px), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(fps))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.codec_context.gop_size = fps
        st.codec_context.options = {"preset": "veryfast", "bf": "0", "crf": "20", "x264-params": "scenecut=0"}
        for i in range(int(seconds * fps)):
            bg = ((xx + yy + 2 * i) % 256).astype(np.uint8)
            img = np.dstack([bg // 2 + 40, bg // 3 + 60, 200 - bg // 4]).astype(np.uint8)
            x = 20 + (i * step_px) % max(1, width - face_px - 40)
            y = (height - face_px) // 2
            img[y : y + face_px, x : x + face_px] = portrait
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            frame.pts = i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a clip as BGR arrays (PyAV)."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


def two_people_clip(path: Path, *, seconds: float = 8, width: int = 800, height: int = 480, fps: int = 15,
                    face_px: int = 150) -> tuple[Path, list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]]:
    """Two people (the portrait, and a mirrored, warmer copy of it) walking across a still room in opposite
    directions, one above the other; returns the clip and, per frame, each one's box ``(x1, y1, x2, y2)``:
    ``[(first, second), ...]`` (for a data-subject export: keep the first, hide the second)."""
    portrait = cv2.resize(cv2.imread(str(ASTRONAUT)), (face_px, face_px), interpolation=cv2.INTER_AREA)
    other = cv2.flip(portrait, 1)
    other = np.clip(other.astype(np.int16) + np.array([-20, 0, 25], dtype=np.int16), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    room = np.dstack([(xx // 4 + 60) % 256, (yy // 3 + 80) % 256, np.full_like(xx, 140)]).astype(np.uint8)
    frames = int(seconds * fps)
    travel = width - face_px - 40
    boxes = []
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=Fraction(fps))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.codec_context.gop_size = fps
        st.codec_context.options = {"preset": "veryfast", "bf": "0", "crf": "20", "x264-params": "scenecut=0"}
        for i in range(frames):
            img = room.copy()
            xa = 20 + i * travel // max(1, frames - 1)
            xb = 20 + travel - i * travel // max(1, frames - 1)
            ya, yb = 20, height - face_px - 20
            img[ya : ya + face_px, xa : xa + face_px] = portrait
            img[yb : yb + face_px, xb : xb + face_px] = other
            boxes.append(((xa, ya, xa + face_px, ya + face_px), (xb, yb, xb + face_px, yb + face_px)))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            frame.pts = i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path, boxes
