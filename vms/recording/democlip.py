"""A generated H.264 clip for the simulated demo camera (PyAV + libx264).

Moving synthetic content (a drifting gradient, a moving block and a frame
counter bar), no B-frames, a keyframe every ``gop`` frames, like a camera.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, *, seconds: float = 60, fps: int = 15, width: int = 1280, height: int = 720,
              gop: int = 30, bitrate: int = 2_000_000, progress: bool = False) -> int:
    """Write an MP4 with one H.264 stream; returns the number of frames."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * fps)
    tmp = path.with_name(path.name + ".tmp")
    with av.open(str(tmp), "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=Fraction(fps, 1))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.bit_rate = bitrate
        st.codec_context.gop_size = gop
        st.codec_context.max_b_frames = 0
        st.codec_context.options = {"preset": "veryfast", "tune": "zerolatency", "bf": "0",
                                    "keyint": str(gop), "min-keyint": str(gop), "scenecut": "0"}
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(frames):
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (xx + i * 4) % 256
            img[..., 1] = (yy + i * 2) % 256
            img[..., 2] = 128
            bx = (i * 12) % max(1, width - 160)
            img[height // 3 : height // 3 + 160, bx : bx + 160] = (255, 255, 255)
            img[-24:, : int(width * (i % fps + 1) / fps)] = (0, 0, 0)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for pkt in st.encode(frame):
                out.mux(pkt)
            if progress and i % fps == 0:
                print(f"\r  generating demo clip: {100 * i // frames:3d}%", end="", file=sys.stderr, flush=True)
        for pkt in st.encode(None):
            out.mux(pkt)
    tmp.replace(path)
    if progress:
        print("\r  generating demo clip: 100%", file=sys.stderr)
    return frames
