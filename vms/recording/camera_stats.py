"""What the recorder knows about one camera while it runs (saved to the index every few seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CameraStats:
    online: bool = False
    packets: int = 0
    bytes_received: int = 0
    reconnects: int = 0
    last_packet_us: int | None = None
    gap_since_us: int | None = None
    last_error: str | None = None
    skipped_before_keyframe: int = 0
    segments: int = 0
    disk_full_events: int = 0
    fps: float = 0.0
    bitrate_bps: float = 0.0
    stream_problem: str | None = None  # why frame order cannot be kept (alarm and doctor finding)
    _window: list = field(default_factory=lambda: [0.0, 0, 0])  # monotonic start, packets, bytes
