"""Stored packets to an MP4 clip without re-encoding (PyAV), written as a stream.

The clip is a fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``,
one fragment per GOP, ``mfra`` index at the end).  FFmpeg writes that layout
front to back, so the bytes can go straight into the (encrypted) package while
they are produced: no clear clip on disk, and memory bounded by one GOP plus
:class:`StreamingSink`'s window, whatever the clip's length.

Timestamps: pts/dts stay in the stream's own time base (1/90000 as recorded),
shifted so that the clip's first packet has dts 0; MP4 time *t* is therefore the
first frame's wall-clock time plus *t* (to the camera's clock accuracy).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import av

from storage.format.packets import Packet, StreamInfo
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso
from vms.recording.bitstream import (
    has_parameter_sets,
    is_annexb,
    nal_length_size,
    parameter_sets_annexb,
    to_annexb,
)

MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"


def shown_us(p: Packet, tb: Fraction) -> int:
    """When a packet's frame is shown (wall clock): its decode-time stamp plus its composition offset."""
    return p.wall_us + (p.pts - p.dts) * tb.numerator * 1_000_000 // tb.denominator
IO_BUFFER_BYTES = 64 << 10


class StreamingSink:
    """A file object for FFmpeg's muxer that forwards bytes as they are written.

    The muxer patches box sizes by seeking back a little; the last
    ``window_bytes`` are held back so such patches land before the bytes are
    passed on.  A seek further back than the window raises ``OSError`` (the job
    fails; nothing wrong is ever emitted).  ``emit`` receives each committed
    piece in order exactly once.
    """

    def __init__(self, emit: Callable[[bytes], object], *, window_bytes: int = 256 << 10):
        self._emit = emit
        self._window = window_bytes
        self._chunks: list[bytes | bytearray] = []
        self._held = 0  # bytes in _chunks
        self._base = 0  # file offset of _chunks[0]
        self._pos = 0
        self.closed = False

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        end = self._base + self._held
        target = {0: offset, 1: self._pos + offset, 2: end + offset}[whence]
        if target < self._base or target > end:
            raise OSError(f"muxer seek to byte {target} is outside the writable window {self._base}..{end}")
        self._pos = target
        return target

    def write(self, data: bytes) -> int:
        n = len(data)
        end = self._base + self._held
        if self._pos == end:
            self._chunks.append(data)
            self._held += n
        else:
            self._patch(data)
        self._pos += n
        while len(self._chunks) > 1 and self._held - len(self._chunks[0]) >= self._window:
            first = self._chunks.pop(0)
            self._held -= len(first)
            self._base += len(first)
            self._emit(first)
        return n

    def _patch(self, data: bytes) -> None:
        """Overwrite held bytes at the current position (growing at the end if needed)."""
        pos = self._pos - self._base  # offset into the held bytes
        src = memoryview(data)
        offset = 0
        for i, chunk in enumerate(self._chunks):
            if not src:
                return
            end = offset + len(chunk)
            if pos < end:
                at = pos - offset
                take = min(len(chunk) - at, len(src))
                if not isinstance(chunk, bytearray):
                    chunk = self._chunks[i] = bytearray(chunk)
                chunk[at : at + take] = src[:take]
                src, pos = src[take:], pos + take
            offset = end
        if src:
            self._chunks.append(bytes(src))
            self._held += len(src)

    def finish(self) -> int:
        """Emit everything still held; returns the total size."""
        for chunk in self._chunks:
            self._emit(chunk)
        self._base += self._held
        self._chunks, self._held = [], 0
        self.closed = True
        return self._base


def open_mp4(sink: StreamingSink, *, creation_us: int) -> av.container.OutputContainer:
    out = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS}, buffer_size=IO_BUFFER_BYTES)
    out.metadata["creation_time"] = iso(creation_us)
    return out


class CopyClip:
    """One clip remuxed packet by packet (no decoding, no re-encoding).

    The caller passes packets of one continuous run (dts strictly increasing,
    one :class:`StreamInfo`) with each packet's duration in the stream's time
    base, then :meth:`close`.  Packets may be Annex-B or length-prefixed; they
    are normalised to Annex-B and the first one carries the parameter sets, so
    FFmpeg writes ``avcC``/``hvcC`` from them.
    """

    def __init__(self, sink: StreamingSink, stream: StreamInfo, *, creation_us: int):
        self.stream = stream
        self._out = open_mp4(sink, creation_us=creation_us)
        self._st = self._out.add_mux_stream(stream.codec, rate=stream.fps, width=stream.width, height=stream.height)
        self._st.time_base = stream.time_base
        self._params = parameter_sets_annexb(stream.codec, stream.extradata)
        self._length_size = nal_length_size(stream.codec, stream.extradata)
        self._annexb: bool | None = None
        self._t0 = 0

    def add(self, packet: Packet, duration: int) -> None:
        data = packet.data
        first = self._annexb is None
        if first:
            self._annexb = is_annexb(data)
            self._t0 = packet.dts
        if not self._annexb:
            data = to_annexb(data, self._length_size)
        if first and not has_parameter_sets(self.stream.codec, data):
            if not self._params:
                raise DomainError(
                    Kind.PRECONDITION,
                    "the stream has no parameter sets (SPS/PPS) in its segment header or first keyframe; "
                    "it cannot be written as MP4", key=N_("export.err.no_parameter_sets"),
                )
            data = self._params + data
        pkt = av.Packet(data)
        pkt.stream = self._st
        pkt.time_base = self.stream.time_base
        pkt.dts = packet.dts - self._t0
        pkt.pts = packet.pts - self._t0
        pkt.duration = duration
        pkt.is_keyframe = packet.keyframe
        self._out.mux_one(pkt)

    def close(self) -> None:
        """Write the trailer (the last fragment and the ``mfra`` index)."""
        self._out.close()

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:  # the job is failing already; keep its first error
            pass
