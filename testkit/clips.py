"""Deterministic H.264/H.265 test clips made with PyAV (libx264 / libx265).

A clip looks like a camera's stream: moving synthetic content (so it is not
trivially compressible), a keyframe every ``gop`` frames, no B-frames unless
``bframes`` asks for them (x264/x265 with B-pyramid, as many encoders send), constant
frame rate.  :func:`make_clip` reads the file back with PyAV's demuxer and returns
what a test compares a capture against: the number of video packets, which of
them are keyframes, and their sizes.

Patterns:

* ``"gradient"``: drifting colour gradients, a moving white block and a frame
  counter bar (cheap to encode; a few hundred kbit/s at 640x360).
* ``"noise"``: the gradient plus deterministic pseudo-random texture that moves
  every frame, so a ``bitrate`` target (e.g. 4 Mbit/s at 1080p) is really spent.
* ``"ruler"``: a white bar on black that moves :data:`RULER_STEP` pixels right every
  frame; :func:`ruler_position` reads frame ``i``'s bar back as ``i`` from a decoded
  picture, so frame order can be checked after recording and export.

One slice per frame (frame threads, not PyAV's default slice threads), as most
cameras send.  The same arguments give the same bytes (fixed seed; libx264/libx265 are
deterministic unless told otherwise).  Containers: ``.mp4`` (default),
``.mkv``; GStreamer's ``qtdemux``/``matroskademux`` read both.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ENCODERS = {"h264": "libx264", "hevc": "libx265"}
PATTERNS = ("gradient", "noise", "ruler")
RULER_STEP, RULER_WIDTH = 4, 8


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What is in a clip, read back from the file (not what was asked for)."""

    path: Path
    codec: str  # "h264" | "hevc"
    width: int
    height: int
    fps: Fraction
    packets: int
    keyframes: tuple[int, ...]  # indexes of the keyframe packets, in decode order
    sizes_bytes: tuple[int, ...]
    duration_s: float

    @property
    def bitrate_bps(self) -> float:
        return 8 * sum(self.sizes_bytes) / self.duration_s if self.duration_s else 0.0


def encoder_available(codec: str) -> bool:
    return ENCODERS.get(codec, "") in av.codecs_available


def make_h264_clip(path: Path, *, seconds: float, **kw) -> ClipInfo:
    return make_clip(path, seconds=seconds, codec="h264", **kw)


def make_hevc_clip(path: Path, *, seconds: float, **kw) -> ClipInfo:
    return make_clip(path, seconds=seconds, codec="hevc", **kw)


def make_clip(path: Path, *, seconds: float, codec: str = "h264", fps: int = 15, width: int = 640,
              height: int = 360, gop: int = 15, bitrate: int | None = None, pattern: str = "gradient",
              seed: int = 1, bframes: int = 0) -> ClipInfo:
    """Encode ``seconds`` of synthetic video into ``path`` and describe the result.

    ``bitrate`` (bits/s) asks the encoder for about that rate (ABR with a VBV of
    one second); ``None`` uses constant quality (CRF 23)."""
    if codec not in ENCODERS:
        raise ValueError(f"codec {codec!r}: expected one of {sorted(ENCODERS)}")
    if pattern not in PATTERNS:
        raise ValueError(f"pattern {pattern!r}: expected one of {PATTERNS}")
    if not encoder_available(codec):
        raise RuntimeError(f"PyAV has no {ENCODERS[codec]} encoder")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    with av.open(str(tmp), "w") as out:
        st = out.add_stream(ENCODERS[codec], rate=Fraction(fps, 1))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.codec_context.gop_size = gop
        st.codec_context.max_b_frames = bframes
        st.codec_context.thread_type = "FRAME"  # PyAV's default (SLICE) cuts every frame into slices
        st.codec_context.options = _encoder_options(codec, gop, bitrate, bframes)
        if bitrate:
            st.bit_rate = bitrate
        frames = _Frames(width, height, fps, pattern, seed)
        for i in range(int(round(seconds * fps))):
            frame = av.VideoFrame.from_ndarray(frames.render(i), format="yuv420p")
            frame.pts = i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    tmp.replace(path)
    return probe_clip(path)


def probe_clip(path: Path) -> ClipInfo:
    """Demux ``path`` with PyAV (no decoding) and describe its video stream."""
    keyframes, sizes = [], []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        codec = st.codec_context.name
        width, height, fps = st.codec_context.width, st.codec_context.height, st.average_rate
        last_pts = first_pts = None
        for pkt in c.demux(st):
            if pkt.size == 0:  # the demuxer's end-of-stream marker
                continue
            if pkt.is_keyframe:
                keyframes.append(len(sizes))
            sizes.append(pkt.size)
            first_pts = pkt.pts if first_pts is None else min(first_pts, pkt.pts)
            last_pts = pkt.pts if last_pts is None else max(last_pts, pkt.pts)
        duration_s = float((last_pts - first_pts) * st.time_base + 1 / fps) if sizes else 0.0
    return ClipInfo(Path(path), codec, width, height, Fraction(fps), len(sizes), tuple(keyframes),
                    tuple(sizes), duration_s)


def ruler_position(gray) -> int:
    """The frame index shown by a ``"ruler"`` frame (a decoded luma/gray picture as a 2-D array)."""
    columns = np.asarray(gray, dtype=np.float32).mean(axis=0)
    bright = np.flatnonzero(columns > 128)
    if not bright.size:
        raise ValueError("no ruler bar in this picture")
    return int(round(bright[0] / RULER_STEP))


def _encoder_options(codec: str, gop: int, bitrate: int | None, bframes: int = 0) -> dict[str, str]:
    if codec == "h264":
        pyramid = ":b-pyramid=normal" if bframes > 1 else ""
        opts = {"preset": "veryfast", "bf": str(bframes), "keyint": str(gop), "min-keyint": str(gop),
                "sc_threshold": "0", "x264-params": f"scenecut=0:open-gop=0{pyramid}"}
        if bitrate:
            opts["x264-params"] += f":vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}"
        else:
            opts["crf"] = "23"
        return opts
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:open-gop=0:log-level=error"
    if bitrate:
        params += f":vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}"
    else:
        params += ":crf=28"
    return {"preset": "ultrafast", "x265-params": params}


class _Frames:
    """Renders frame ``i`` as a yuv420p array (planes stacked, as PyAV expects)."""

    def __init__(self, width: int, height: int, fps: int, pattern: str, seed: int):
        if width % 2 or height % 2:
            raise ValueError(f"{width}x{height}: width and height must be even for yuv420p")
        self.w, self.h, self.fps, self.pattern = width, height, fps, pattern
        self._xx = np.arange(width, dtype=np.uint16)[None, :]
        self._yy = np.arange(height, dtype=np.uint16)[:, None]
        rng = np.random.default_rng(seed)
        # a texture twice the picture's size; each frame shows a different window of it
        self._noise = rng.integers(0, 96, size=(2 * height, 2 * width), dtype=np.uint8) if pattern == "noise" else None

    def render(self, i: int) -> np.ndarray:
        w, h = self.w, self.h
        if self.pattern == "ruler":
            x = RULER_STEP * i
            if x + RULER_WIDTH > w:
                raise ValueError(f"frame {i}: a ruler clip of width {w} holds {(w - RULER_WIDTH) // RULER_STEP + 1} frames")
            y = np.zeros((h, w), np.uint8)
            y[:, x : x + RULER_WIDTH] = 235
            chroma = np.full((h // 2) * (w // 2) * 2, 128, np.uint8)
            return np.concatenate([y.ravel(), chroma]).reshape(h * 3 // 2, w)
        y = ((self._xx + 3 * i) + (self._yy + 2 * i)) % 256
        y = y.astype(np.uint8)
        if self._noise is not None:
            oy, ox = (i * 7) % h, (i * 13) % w
            y = y // 2 + self._noise[oy : oy + h, ox : ox + w]
        side = max(8, min(w, h) // 4) & ~1
        bx = (i * max(2, w // 60)) % max(1, w - side)
        y[h // 3 : h // 3 + side, bx : bx + side] = 235
        bar = max(2, h // 30)
        y[h - bar :, :] = 16
        y[h - bar :, : max(1, w * (i % self.fps + 1) // self.fps)] = 235
        u = np.full((h // 2, w // 2), (64 + 2 * i) % 256, np.uint8)
        v = np.full((h // 2, w // 2), (192 - i) % 256, np.uint8)
        return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(h * 3 // 2, w)


def vcl_payloads(data: bytes, codec: str, *, annexb: bool) -> list[bytes]:
    """The coded slices of one access unit, without start codes or length prefixes,
    parameter sets, SEI or delimiters: what must survive a copy bit for bit.
    ``annexb=False`` reads 4-byte length prefixes (MP4 as PyAV demuxes it)."""
    nals = _split_annexb(data) if annexb else _split_lengths(data)
    if codec == "h264":
        return [n for n in nals if 1 <= n[0] & 0x1F <= 5]
    return [n for n in nals if (n[0] >> 1) & 0x3F < 32]


def clip_vcl_payloads(path: Path) -> list[list[bytes]]:
    """:func:`vcl_payloads` of every packet of a clip file, in order."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        codec = st.codec_context.name
        return [vcl_payloads(bytes(p), codec, annexb=False) for p in c.demux(st) if p.size]


def _split_lengths(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i + 4 <= len(data):
        n = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 4 + n])
        i += 4 + n
    return out


def _split_annexb(data: bytes) -> list[bytes]:
    parts = data.split(b"\x00\x00\x01")
    # a 4-byte start code leaves a trailing zero on the previous unit; NAL units end non-zero
    return [p.rstrip(b"\x00") for p in parts[1:] if p.rstrip(b"\x00")]
