"""The janitor's upkeep around a sweep: shredding hour and day keys nothing needs, expiring quarantine, indexing
sealed files the index lacks, sealing abandoned ``.open`` files, and reconciling index and disk at start.

Part of :class:`vms.retention.janitor.Janitor` (it expects ``app``, ``root``, ``node``, ``clock``,
``_full_shred_day``, ``_scrub_pending``, ``_pending``, ``_open_seen``, ``stale_open_s``, ``alarm`` and
``_on_problem`` from it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from storage.format.segment import SegmentError
from storage.keys.keyring import KeyError_
from storage.sql import retention_queries as rq
from vms.retention import check, deletion, layout
from vms.retention import rules as retention
from vms.retention.state import SweepResult

log = logging.getLogger("vms.retention.janitor")  # the janitor's messages, one logger

#: a sealed file the index lacks is indexed only after this long (the recorder
#: indexes its own files right after sealing them)
INDEX_GRACE_S = 5.0


class Upkeep:

    def _shred(self, touched: set[tuple[int, int]], now: int, res: SweepResult) -> None:
        """Hour keys of the hours whose segments this sweep deleted, then day keys of their days, when no segment
        needs them any more; once a day (and on the first sweep) every key of this node is looked at."""
        before_day = retention.shred_before_day(now)
        ended_by = retention.shred_hours_ended_by_us(now)
        today = retention.utc_day(now)
        open_names: dict[tuple[str, str], list[str]] = {}  # (camera, day) -> names of .open files, per sweep
        with Session(self.app.engine) as s, s.begin():
            hours = rq.unneeded_hour_keys(s, touched, ended_by_us=ended_by)
            keys = rq.unneeded_day_keys(s, {key_id for key_id, _ in touched}, before_day=before_day)
            if self._full_shred_day != today:  # first sweep, and once a day: anything missed
                hours = sorted(set(hours) | set(rq.shreddable_hour_keys(s, self.node, ended_by_us=ended_by)))
                keys = sorted(set(keys) | set(rq.shreddable_day_keys(s, self.node, before_day=before_day)))
            for h in hours:
                day = retention.utc_day(h.start_us)
                stamp = f"{day.replace('-', '')}T{h.hour:02d}"
                if any(n.startswith(stamp) for n in self._open_names(open_names, h.camera_id, day)):
                    continue  # footage of that hour awaiting the recorder's crash recovery still needs the key
                if self.app.keys.shred_hour(s, h.key_id, h.hour, now_us=now):
                    res.shredded_hours.append((h.camera_id, f"{day}T{h.hour:02d}"))
            for k in keys:
                if self._open_names(open_names, k.camera_id, k.day):
                    continue  # footage awaiting the recorder's crash recovery still needs the key
                if self.app.keys.shred(s, k.key_id, now_us=now):
                    res.shredded.append((k.camera_id, k.day))
        self._full_shred_day = today
        if res.shredded or res.shredded_hours or self._scrub_pending:
            self._scrub_pending = not rq.scrub_shredded_keys(self.app.engine)

    def _open_names(self, cache: dict[tuple[str, str], list[str]], camera_id: str, day: str) -> list[str]:
        """Names of the ``.vseg.open`` files in one day directory (listed once per sweep)."""
        if (camera_id, day) not in cache:
            cache[camera_id, day] = [p.name for p in (self.root / camera_id / day).glob("*.vseg.open")]
        return cache[camera_id, day]

    def _expire_quarantine(self, now: int, res: SweepResult) -> None:
        limit = now - self.app.config.legal_max_retain_days * retention.DAY_US
        old = layout.quarantined_before(self.root, limit)
        if not old:
            return
        removed, size = 0, 0
        for path, nbytes in old:
            try:
                layout.remove_tree(path)
            except OSError as exc:
                self.alarm("deletion", f"quarantined {layout.shown(path.name)} cannot be removed "
                           f"({exc.__class__.__name__})", once=f"q:{path.name}")
                continue
            removed, size = removed + 1, size + nbytes
        if removed:
            with Session(self.app.engine) as s, s.begin():
                rq.add_deletion_records(s, [rq.DeletionRow(now, "-", limit, limit, removed, size, "quarantine")])
            res.deleted["quarantine"] = res.deleted.get("quarantine", 0) + removed
            res.deleted_bytes["quarantine"] = res.deleted_bytes.get("quarantine", 0) + size

    def _report_failures(self, res: SweepResult) -> None:
        if res.failed:
            log.warning("sweep: %d segment(s) could not be deleted; their rows stay 'deleting'", res.failed)

    # ------------------------------------------------------------ files found on disk

    def _quarantine(self, rel: str, why: str) -> None:
        try:
            layout.quarantine(self.root, rel, self.clock.now_us())
        except FileNotFoundError:
            return
        except OSError as exc:
            self.alarm("quarantine", f"{layout.shown(rel)} ({why}) cannot be quarantined: {exc.__class__.__name__}",
                       once=f"quarantine:{rel}")
            return
        self.alarm("quarantine", f"moved {layout.shown(rel)} to the quarantine folder: {why}")

    def _index_pending(self, *, force: bool) -> None:
        mono = self.clock.monotonic_s()
        for rel, seen in list(self._pending.items()):
            if not force and mono - seen < INDEX_GRACE_S:
                continue
            if not (self.root / rel).exists() and not (self.root / rel).is_symlink():
                del self._pending[rel]
                continue
            try:
                why = deletion.index_found_file(self.app, rel)
            except SQLAlchemyError as exc:  # the index is away: the file stays pending and is tried again
                log.warning("indexing %s failed (%s); retrying", layout.shown(rel), exc.__class__.__name__)
                continue
            del self._pending[rel]
            if why:
                self._quarantine(rel, why)

    def _recover_stale_open(self) -> None:
        """Seal and index open files nobody has written to for ``stale_open_s`` (file times are real time)."""
        if not self._open_seen:
            return
        wall_s = time.time()
        for rel in sorted(self._open_seen):
            path = self.root / rel
            try:
                st = path.lstat()
            except FileNotFoundError:
                self._open_seen.discard(rel)  # sealed or removed by its recorder meanwhile
                continue
            if wall_s - st.st_mtime < self.stale_open_s:
                continue
            self._open_seen.discard(rel)
            try:
                summary = self.app.store.recover_file(path)
            except (SegmentError, KeyError_, OSError) as exc:
                self.alarm("quarantine", f"abandoned open segment {layout.shown(rel)} cannot be recovered "
                           f"({exc.__class__.__name__}); left in place, see 'vms check'", once=f"open:{rel}")
                continue
            log.warning("recovered %s, left open by a recorder that is gone (not written for %.0f s): %s",
                        layout.shown(rel), wall_s - st.st_mtime,
                        f"{summary.packets} packets indexed" if summary else "it held no footage, removed")

    def reconcile(self) -> check.CheckReport:
        """Compare index and disk once (at start): strays are quarantined, sealed
        files the index lacks are queued for indexing, missing or changed files
        raise tamper alarms.  Reads every row and file name (O(stored))."""
        report = check.CheckReport()
        for _camera in self._reconcile_steps(report):
            pass
        return report

    def _reconcile_steps(self, report: check.CheckReport) -> Iterator[str]:
        """:meth:`reconcile` one camera at a time, so the service can sweep in between."""
        disk_cameras, strays = layout.top_level(self.root)
        for e in strays:
            self._on_problem(check.Problem("unknown", e.rel, "not part of the storage layout"))
        with Session(self.app.engine) as s:
            cameras = sorted(set(disk_cameras) | {c.camera_id for c in rq.camera_retention(s)})
        for camera in cameras:
            with self._sweep_lock:
                start = len(report.problems)
                opened = len(report.open_paths)
                check.check_camera(self.app, camera, report)
                for p in report.problems[start:]:
                    self._on_problem(p)
                self._open_seen.update(report.open_paths[opened:])
            yield camera

