"""Real footage written into an appliance's encrypted store, for export tests.

A clip file (made with PyAV/libx264, ``testkit/clips.py``) is read as a
camera would send it (``vms.recording.capture.Capture``, OpenCV raw packets, Annex-B) and
written through ``app.store.open_writer`` into segments that start on
keyframes, exactly as the recorder stores them.  Wall-clock stamps start at
``start_us`` and follow the stream's own timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.format.packets import Packet, StreamInfo
from vms.recording.capture import Capture


@dataclass(frozen=True)
class Stored:
    """What was written: every packet (in order) and the segment ids."""

    stream: StreamInfo
    packets: tuple[Packet, ...]
    segment_ids: tuple[int, ...]

    @property
    def first_us(self) -> int:
        return self.packets[0].wall_us

    @property
    def last_us(self) -> int:
        return self.packets[-1].wall_us


def read_clip(path: Path, start_us: int) -> tuple[StreamInfo, list[Packet]]:
    """All packets of a clip file, stamped from ``start_us`` on."""
    cap = Capture(str(path), realtime=False, wall_clock_us=lambda: start_us)
    info = cap.open()
    try:
        packets = list(cap)
    finally:
        cap.close()
    return info, packets


def shift(packets: list[Packet], *, wall_us: int = 0, ticks: int = 0) -> list[Packet]:
    return [Packet(p.data, p.wall_us + wall_us, p.pts + ticks, p.dts + ticks, p.keyframe, p.duration) for p in packets]


def store_packets(app, camera_id: str, stream: StreamInfo, packets: list[Packet], *,
                  segment_s: float = 2.0) -> tuple[int, ...]:
    """Write packets into segments of about ``segment_s`` seconds, each starting on a keyframe."""
    ids: list[int] = []
    writer = None
    seg_start = None
    for p in packets:
        if writer is None or (p.keyframe and p.wall_us - seg_start >= segment_s * 1e6):
            if writer is not None:
                ids.append(app.store.index_sealed(writer.close()))
            if not p.keyframe:
                raise ValueError("a segment must start on a keyframe")
            writer = app.store.open_writer(camera_id, stream, p.wall_us, now_us=p.wall_us)
            seg_start = p.wall_us
        writer.write(p)
    if writer is not None:
        ids.append(app.store.index_sealed(writer.close()))
    return tuple(ids)


def store_clip(app, camera_id: str, clip_path: Path, start_us: int, *, segment_s: float = 2.0) -> Stored:
    info, packets = read_clip(clip_path, start_us)
    ids = store_packets(app, camera_id, info, packets, segment_s=segment_s)
    return Stored(info, tuple(packets), ids)


def ensure_signing_key(app) -> None:
    """The Ed25519 signing key that ``vms init`` makes (the test appliance factory does not)."""
    from vms.cli.setup import write_signing_key

    if not app.config.signing_key_path.exists():
        write_signing_key(app.config.signing_key_path)
