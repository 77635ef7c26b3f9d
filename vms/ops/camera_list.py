"""The camera overview staff read: every camera's name, place, node, retention and whether it records now.

:func:`camera_list` reads the index (cameras of every node, their recorder state and their newest closed
gap) in one short read transaction.  It never touches footage and never returns a camera's source (which
may carry credentials): what it returns may be shown to every signed-in role the policy allows
(``cameras.list``).  A camera counts as recording when its recorder saved its state lately (within
:data:`vms.ops.overview.STALE_INTERVALS` save intervals) and was receiving packets then.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import index
from vms.ops.overview import STALE_INTERVALS


@dataclass(frozen=True)
class CameraStatus:
    id: str
    name: str  # the display name (the id where none is set)
    place: str
    node_id: str
    retain_days: int
    removed: bool
    enabled: bool
    recording: bool
    offline_since_us: int | None  # the open gap's start
    last_gap_start_us: int | None
    last_gap_end_us: int | None
    last_gap_reason: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.place})" if self.place else self.name


def camera_list(app) -> list[CameraStatus]:
    now = app.clock.now_us()
    stale_us = int(STALE_INTERVALS * app.config.recorder.state_interval_s * 1_000_000)
    out = []
    with Session(app.engine) as s:
        states = {st.camera_id: st for st in index.camera_states(s)}
        last_gaps = index.last_closed_gaps(s)
        for cam in index.cameras(s):
            st, gap = states.get(cam.id), last_gaps.get(cam.id)
            fresh = st is not None and now - st.updated_us <= stale_us
            recording = bool(fresh and st.online and cam.enabled and cam.removed_us is None)
            offline_since = None if recording or st is None else st.gap_since_us
            out.append(CameraStatus(
                id=cam.id, name=cam.name or cam.id, place=cam.place or "", node_id=cam.node_id,
                retain_days=cam.retain_days, removed=cam.removed_us is not None, enabled=cam.enabled,
                recording=recording, offline_since_us=offline_since,
                last_gap_start_us=gap.start_us if gap else None, last_gap_end_us=gap.end_us if gap else None,
                last_gap_reason=gap.reason if gap else None,
            ))
    return out
