"""The janitor's space keeping: per-camera quotas and the disk watermark.

Part of :class:`vms.retention.janitor.Janitor` (it expects ``app``, ``root``, ``node``, ``clock``, ``_quota``,
``_quota_counted_at``, ``_quota_last_id``, ``_space``, ``_wake``, ``disk_usage``, ``alarm``, ``clear_alarm``,
``_pages`` and ``_evict`` from it).  What to delete is the planner's decision (oldest unheld first); this part
says how many bytes must go.
"""

from __future__ import annotations

import heapq
import logging

from sqlalchemy.orm import Session

from storage.sql import retention_queries as rq
from vms.retention import rules as retention
from vms.retention.state import SweepResult

log = logging.getLogger("vms.retention.janitor")  # the janitor's messages, one logger

QUOTA_RECOUNT_S = 3600.0


class SpaceKeeping:

    def _quota_pass(self, holds, now: int, res: SweepResult, touched: set[tuple[int, int]]) -> None:
        limited = [c for c in self.app.config.cameras if c.quota_bytes]
        if not limited:
            return
        self._refresh_quota()
        for cam in limited:
            over = self._quota.get(cam.id, 0) - cam.quota_bytes
            if over > 0:
                self._evict(self._pages(cam.id), holds, "quota", now, res, touched, need_bytes=over)
                if self._quota.get(cam.id, 0) > cam.quota_bytes:
                    self.alarm("space", f"camera {cam.id}: held footage alone exceeds its quota of "
                               f"{cam.quota_bytes} bytes", once=f"quota:{cam.id}")
                else:
                    self.clear_alarm(f"quota:{cam.id}")

    def _refresh_quota(self) -> None:
        """Per-camera bytes: a full count at first use and hourly (it reads every
        row), in between only rows above the last id seen (docs/design/janitor.md)."""
        mono = self.clock.monotonic_s()
        with Session(self.app.engine) as s:
            if self._quota is None or mono - self._quota_counted_at >= QUOTA_RECOUNT_S:
                rows = rq.usage_by_camera(s, self.node)
                self._quota = {c: b for c, _n, b, _m in rows}
                self._quota_last_id = max((m for *_x, m in rows), default=0)
                self._quota_counted_at = mono
                return
            for camera_id, b, m in rq.usage_after(s, self.node, self._quota_last_id):
                self._quota[camera_id] = self._quota.get(camera_id, 0) + b
                self._quota_last_id = max(self._quota_last_id, m)

    def _watermark_pass(self, cameras: list[str], holds, now: int, res: SweepResult, touched: set[tuple[int, int]]) -> None:
        jc = self.app.config.janitor
        self._space.clear()
        if not self.root.is_dir():
            return  # nothing recorded yet (the recorder creates the root)
        for _round in range(3):
            total, free = self.disk_usage(self.root)
            res.free_bytes = free
            res.floor_bytes = retention.free_space_floor(total, jc.min_free_bytes, jc.min_free_percent)
            need = retention.bytes_to_free(total, free, jc.min_free_bytes, jc.min_free_percent)
            if need == 0:
                self.clear_alarm("space")
                return
            if self.drop_archived_copies(now, need_bytes=need):  # archived footage leaves the disk first
                continue
            merged = heapq.merge(*(self._pages(c, limit=200) for c in cameras), key=lambda r: (r.start_us, r.id))
            if self._evict(merged, holds, "space", now, res, touched, need_bytes=need) == 0:
                break
        total, free = self.disk_usage(self.root)
        if retention.bytes_to_free(total, free, jc.min_free_bytes, jc.min_free_percent):
            self.alarm("space", f"free space {free} bytes is below the floor of {res.floor_bytes} bytes and no "
                       "unheld footage is left to evict: legal holds exceed the space", once="space")

    def request_space(self, camera_id: str) -> None:
        """The recorder ran out of disk: sweep now (never blocks the caller)."""
        log.info("camera %s asked for space; sweeping now", camera_id)
        self._space.set()
        self._wake.set()

