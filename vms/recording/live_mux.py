"""Live packets to fragmented MP4 for Media Source Extensions, one fragment per frame (PyAV, no re-encode).

:class:`LiveMuxer` turns the packets a viewer receives into bytes a browser's ``SourceBuffer`` takes: the
first call gives the initialisation segment (``ftyp`` + ``moov``) as soon as the first packet is muxed,
then each packet gives the previous frame's ``moof`` + ``mdat`` (FFmpeg closes a fragment when the next
packet arrives, one frame of delay).  The bytes may be appended in any pieces (MSE parses across
appends).  Timestamps start at 0 for the viewer's first packet; a packet whose decode time does not move
forward (the camera reconnected) ends the muxer: the caller starts a new one, with a new initialisation
segment, and tells the browser to begin again.

:func:`mse_codec` gives the ``codecs`` parameter of the MIME type from the stream's parameter sets
(``avc1.PPCCLL`` for H.264, ``hvc1.…`` for H.265).
"""

from __future__ import annotations

import av

from storage.format.packets import Packet, StreamInfo
from vms.recording.bitstream import (
    has_parameter_sets,
    is_annexb,
    nal_length_size,
    nal_type,
    parameter_sets_annexb,
    split_annexb,
    to_annexb,
)

MOVFLAGS = "frag_every_frame+empty_moov+default_base_moof+omit_tfhd_offset"


class _Collect:
    """A write-only file object (no ``seek``: FFmpeg treats the output as a stream)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class StreamRestart(Exception):
    """The packets' decode times went back (a new connection): start a new muxer."""


class LiveMuxer:
    def __init__(self, stream: StreamInfo):
        self.stream = stream
        self._sink = _Collect()
        self._out = av.open(self._sink, "w", format="mp4", buffer_size=4096,
                            options={"movflags": MOVFLAGS, "flush_packets": "1"})
        self._st = self._out.add_mux_stream(stream.codec, rate=stream.fps, width=stream.width,
                                            height=stream.height)
        self._st.time_base = stream.time_base
        self._params = parameter_sets_annexb(stream.codec, stream.extradata)
        self._length_size = nal_length_size(stream.codec, stream.extradata)
        self._frame = max(1, round(stream.time_base.denominator / (stream.fps * stream.time_base.numerator)))
        self._t0: int | None = None
        self._last_dts: int | None = None

    def add(self, packet: Packet) -> bytes:
        """Mux one packet; returns the bytes ready for the browser (possibly none yet)."""
        data = packet.data
        if not is_annexb(data):
            data = to_annexb(data, self._length_size)
        if self._t0 is None:
            if not packet.keyframe:
                return b""  # a viewer starts at a keyframe
            if not has_parameter_sets(self.stream.codec, data):
                data = self._params + data
            self._t0 = packet.dts
        elif self._last_dts is not None and packet.dts <= self._last_dts:
            raise StreamRestart()
        self._last_dts = packet.dts
        pkt = av.Packet(data)
        pkt.stream = self._st
        pkt.time_base = self.stream.time_base
        pkt.dts = packet.dts - self._t0
        pkt.pts = max(packet.pts, packet.dts) - self._t0
        pkt.duration = packet.duration or self._frame
        pkt.is_keyframe = packet.keyframe
        self._out.mux_one(pkt)
        return self._sink.take()

    @property
    def started(self) -> bool:
        return self._t0 is not None

    def close(self) -> None:
        """Drop the muxer (no trailer: the browser has everything it needs)."""
        try:
            self._out.close()
        except Exception:  # closing a stream-muxer without its trailer is best effort; nothing more is sent
            pass


def mse_codec(stream: StreamInfo) -> str:
    """The RFC 6381 codec string for ``MediaSource.isTypeSupported`` (from the SPS)."""
    nals = split_annexb(parameter_sets_annexb(stream.codec, stream.extradata))
    if stream.codec == "h264":
        for nal in nals:
            if nal_type("h264", nal) == 7 and len(nal) >= 4:
                return f"avc1.{nal[1]:02X}{nal[2]:02X}{nal[3]:02X}"
        return "avc1.640028"
    for nal in nals:  # H.265: general profile/tier/level from the SPS's profile_tier_level
        if nal_type("hevc", nal) == 33 and len(nal) >= 15:
            ptl = nal[3:].replace(b"\x00\x00\x03", b"\x00\x00")  # emulation prevention bytes out
            space, tier, profile = ptl[0] >> 6, (ptl[0] >> 5) & 1, ptl[0] & 0x1F
            compat = int.from_bytes(ptl[1:5], "big")
            compat_rev = int(f"{compat:032b}"[::-1], 2)
            level = ptl[11]
            prefix = "ABC"[space - 1] if space else ""
            return f"hvc1.{prefix}{profile}.{compat_rev:X}.{'H' if tier else 'L'}{level}.B0"
    return "hvc1.1.6.L93.B0"
