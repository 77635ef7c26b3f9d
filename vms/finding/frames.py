"""Keyframes of one camera inside a span, decrypted in memory, and decoding one of them with PyAV.

Only keyframes are ever decoded here (each decodes on its own), one codec context per call, one thread
per decoder (a search must not take the recorder's cores).  Nothing is written to disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from sqlalchemy.orm import Session

from storage.format.packets import Packet, StreamInfo
from storage.format.segment import SegmentError
from storage.keys.keyring import KeyShredded
from storage.sql import index
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

MAX_SEGMENT_US = 3_600_000_000


@dataclass(frozen=True)
class Keyframe:
    segment_id: int
    shown_us: int  # when the frame is shown (wall clock)
    stream: StreamInfo
    packet: Packet


def shown_us(p: Packet, stream: StreamInfo) -> int:
    tb = stream.time_base
    return p.wall_us + (p.pts - p.dts) * tb.numerator * 1_000_000 // tb.denominator


def keyframes(app, camera_id: str, start_us: int, end_us: int, *, read_from_us: int | None = None,
              ) -> Iterator[Keyframe]:
    """The keyframes shown in [start_us, end_us), in time order, decrypted in memory.  ``read_from_us``:
    skip segments that end before it (a thumbnail looks near one moment)."""
    with Session(app.engine) as s:
        refs = index.timeline(s, camera_id, read_from_us or start_us, end_us, max_segment_us=MAX_SEGMENT_US)
    for ref in refs:
        if ref.status != "sealed":
            continue
        try:
            reader = app.store.detached_reader(ref)
            stream = reader.header.stream
            for chunk in reader.chunks():
                for p in chunk:
                    if not p.keyframe:
                        continue
                    t = shown_us(p, stream)
                    if t >= end_us:
                        return
                    if t >= start_us:
                        yield Keyframe(ref.id, t, stream, p)
        except (FileNotFoundError, KeyShredded):
            continue  # deleted, or its hour key shredded since the index was read: the footage is gone
        except SegmentError as exc:
            raise DomainError(Kind.PRECONDITION, f"segment of camera {camera_id} cannot be read: {exc.reason}",
                              key=N_("player.err.unreadable"), params={"camera": camera_id}) from None


class Decoder:
    """Decodes single keyframes of one stream at a time (a new decoder when the stream changes).
    ``fast``: skip the loop filter (a search compares blocks; a thumbnail is looked at)."""

    def __init__(self, *, fast: bool = False) -> None:
        self.fast = fast
        self._stream: StreamInfo | None = None
        self._ctx = None

    def decode(self, kf: Keyframe) -> av.VideoFrame | None:
        if kf.stream != self._stream or self._ctx is None:
            self._stream, self._ctx = kf.stream, _context(kf.stream, self.fast)
        try:
            frames = self._ctx.decode(av.Packet(kf.packet.data))
            frames += self._ctx.decode(None)  # drain: a keyframe alone gives its picture now
            self._ctx.flush_buffers()
        except (av.error.FFmpegError, ValueError):
            self._ctx = None  # start afresh with the next keyframe
            return None
        return frames[-1] if frames else None


def _context(stream: StreamInfo, fast: bool):
    ctx = av.CodecContext.create(stream.codec, "r")
    if stream.extradata:
        ctx.extradata = stream.extradata
    ctx.thread_count = 1
    if fast:
        ctx.options = {"skip_loop_filter": "all"}
    return ctx


def gray(frame: av.VideoFrame, width: int) -> np.ndarray:
    """The frame's luma scaled to ``width`` pixels wide (height kept in proportion), as uint8."""
    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
    return frame.reformat(width=width, height=height, format="gray").to_ndarray()
