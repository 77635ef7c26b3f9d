"""Value types shared by the segment format, the recorder and the exporter.

A :class:`Packet` is one compressed access unit exactly as the camera sent it
(never decoded).  A :class:`StreamInfo` describes the elementary stream that the
packets belong to; it is written into every segment header so a segment can be
remuxed on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

CODECS = ("h264", "hevc")


@dataclass(frozen=True, slots=True)
class Packet:
    """One encoded packet.

    ``wall_us``: wall-clock capture time, UTC microseconds since the Unix epoch.
    ``pts``/``dts``: stream timestamps in the stream's ``time_base``.
    ``duration``: packet duration in ``time_base`` units (0 when unknown).
    """

    data: bytes
    wall_us: int
    pts: int
    dts: int
    keyframe: bool
    duration: int = 0


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The elementary stream: codec name (``h264`` or ``hevc``), codec extradata
    (avcC/hvcC or Annex-B parameter sets), picture size, nominal frame rate and
    the time base of the packets' pts/dts."""

    codec: str
    width: int
    height: int
    fps: Fraction
    time_base: Fraction = Fraction(1, 90000)
    extradata: bytes = b""

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r} is not supported (allowed: {', '.join(CODECS)})")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"picture size {self.width}x{self.height} is not positive")
        if self.time_base <= 0 or self.fps <= 0:
            raise ValueError("time_base and fps must be positive")
