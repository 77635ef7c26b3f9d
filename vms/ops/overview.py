"""Read-only views the auditor's and administrator's pages need, built from
storage/ and vms/ functions (no SQL here; one short read transaction each).

* :func:`camera_overview`: per camera its live recorder state, gaps since local
  midnight, storage use and retention; and the free space of the storage root.
* :func:`deletions`: the janitor's deletion records (what, when, how much;
  never footage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql import retention_queries as rq
from vms.retention.janitor import statvfs_usage

#: a state not refreshed for this many save intervals is shown as stale
STALE_INTERVALS = 5


@dataclass(frozen=True)
class CameraRow:
    camera_id: str
    configured: bool
    removed_us: int | None
    retain_days: int
    online: bool
    stale: bool  # the recorder has not saved this camera's state lately
    state_at_us: int | None
    fps: float | None
    bitrate_bps: float | None
    last_packet_us: int | None
    reconnects: int | None
    last_error: str | None
    gap_since_us: int | None
    gaps_today: int
    segments: int
    size_bytes: int


@dataclass(frozen=True)
class Overview:
    cameras: list[CameraRow]
    total_bytes: int | None  # of the file system holding the storage root (None: not created yet)
    free_bytes: int | None
    storage_path: str
    used_bytes: int


def local_midnight_us(now_us: int, tz) -> int:
    now = datetime.fromtimestamp(now_us / 1e6, tz)
    midnight = datetime.combine(now.date(), time(0), tz)
    return int(midnight.timestamp() * 1_000_000)


def _disk(path: Path) -> tuple[int | None, int | None]:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the root is created by the recorder; report the disk it will be on
    try:
        return statvfs_usage(probe)
    except OSError:
        return None, None


def camera_overview(app, tz) -> Overview:
    now = app.clock.now_us()
    stale_us = int(STALE_INTERVALS * app.config.recorder.state_interval_s * 1_000_000)
    configured = {c.id for c in app.config.cameras}
    midnight = local_midnight_us(now, tz)
    rows = []
    with Session(app.engine) as s:
        states = {st.camera_id: st for st in index.camera_states(s)}
        usage = {c: (n, b) for c, n, b, _m in rq.usage_by_camera(s)}
        for cam in index.cameras(s):
            st = states.get(cam.id)
            n, b = usage.get(cam.id, (0, 0))
            gaps_today = len(index.gaps(s, cam.id, midnight, now + 1))
            rows.append(CameraRow(
                camera_id=cam.id, configured=cam.id in configured, removed_us=cam.removed_us,
                retain_days=cam.retain_days, online=bool(st and st.online),
                stale=st is None or now - st.updated_us > stale_us,
                state_at_us=st.updated_us if st else None, fps=st.fps if st else None,
                bitrate_bps=st.bitrate_bps if st else None, last_packet_us=st.last_packet_us if st else None,
                reconnects=st.reconnects if st else None, last_error=st.last_error if st else None,
                gap_since_us=st.gap_since_us if st else None, gaps_today=gaps_today, segments=n, size_bytes=b,
            ))
    total, free = _disk(app.config.storage_path)
    return Overview(rows, total, free, str(app.config.storage_path), sum(r.size_bytes for r in rows))


def deletions(app, *, since_us: int = 0, camera_id: str | None = None, limit: int = 500) -> list[rq.DeletionRow]:
    with Session(app.engine) as s:
        return rq.deletion_records(s, since_us=since_us, camera_id=camera_id, limit=limit)


def deletion_window_us(now_us: int, days: int) -> int:
    return now_us - int(timedelta(days=days).total_seconds() * 1_000_000)
