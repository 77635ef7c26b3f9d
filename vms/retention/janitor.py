"""The janitor: retention as a guarantee (docs/design/janitor.md).

:meth:`Janitor.sweep` enforces, for this node's footage:

1. unfinished deletions (rows left in ``deleting`` by a killed sweep) are finished;
2. age: per camera in the index (configured, offline or removed), segments whose
   first frame is older than the camera's ``retain_days`` go (reason ``age``);
3. quota: a camera with ``quota_bytes`` keeps at most that many bytes, oldest
   unheld first (reason ``quota``);
4. watermark: below the free-space floor, the oldest unheld footage across
   cameras goes until free space is back above it (reason ``space``); when only
   held footage is left an alarm says so;
5. a day key is shredded once no segment needs it (held segments get their own
   key first, :meth:`storage.keys.keystore.KeyStore.keep_segment_key`);
6. quarantined items older than the legal maximum are deleted (``quarantine``).

Held segments are never deleted.  Deletions follow the protocol of
:func:`vms.retention.check.delete_segments` (mark + record, unlink, remove row), so a
sweep killed at any point loses nothing that should be kept and the next sweep
completes it.  The database briefly unavailable: the whole sweep is retried
(every step is idempotent); a file is never unlinked unless the commit that
marked its row succeeded.

:meth:`Janitor.start` runs sweeps on a timer in one thread and watches the
storage root with ``watchdog``: sealed files the index lacks are indexed after a
grace period, anything else is quarantined, and an indexed file that vanishes or
changes size raises a ``tamper`` alarm.  All database work happens in the
janitor thread; the watchdog thread only queues events.

Alarms leave through ``on_alarm(kind, message)``; kinds: ``tamper``,
``quarantine``, ``space``, ``deletion``, ``janitor``.  Messages name paths with
``ascii()`` and never contain footage or keys.
"""

from __future__ import annotations

import heapq
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.format.segment import SegmentError
from storage.keys.keyring import KeyError_
from storage.sql import retention_queries as rq
from storage.sql.db import DatabaseError, safe_url
from storage.sql.index import SegmentRef
from vms.core.clock import Clock
from vms.retention import check, deletion, layout, planner, state
from vms.retention import rules as retention
from vms.retention.watch import StorageWatch, start_observer

log = logging.getLogger(__name__)

#: a sealed file the index lacks is indexed only after this long (the recorder
#: indexes its own files right after sealing them)
INDEX_GRACE_S = 5.0
#: an open segment file not written for this long has no recorder behind it (a recorder seals a chunk at least
#: every second while packets arrive and closes the segment when its camera stops): the janitor recovers it,
#: so its footage is indexed and expires like any other instead of staying on disk for ever
STALE_OPEN_S = 600.0
QUOTA_RECOUNT_S = 3600.0
DB_ATTEMPTS = 3


def statvfs_usage(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path``; free as available
    to the service user (``f_bavail``), which is what the recorder can write."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def log_alarm(kind: str, message: str) -> None:
    log.warning("ALARM %s: %s", kind, message)


@dataclass
class SweepResult:
    at_us: int
    deleted: dict[str, int] = field(default_factory=dict)  # reason -> segments
    deleted_bytes: dict[str, int] = field(default_factory=dict)
    shredded: list[tuple[str, str]] = field(default_factory=list)  # (camera, day)
    held_kept: int = 0
    failed: int = 0
    free_bytes: int | None = None
    floor_bytes: int | None = None
    duration_s: float = 0.0

    @property
    def segments_deleted(self) -> int:
        return sum(self.deleted.values())

    def add(self, reason: str, done: deletion.Deleted) -> None:
        if done.segments:
            self.deleted[reason] = self.deleted.get(reason, 0) + done.segments
            self.deleted_bytes[reason] = self.deleted_bytes.get(reason, 0) + done.size_bytes
        self.failed += len(done.failed)

    def summary(self) -> dict:
        d = asdict(self)
        d["shredded"] = len(self.shredded)
        return d


class Janitor(StorageWatch):
    """``disk_usage(root) -> (total, free)`` is injectable because tests cannot fill
    a real disk: they pass a function that counts the files under the root against
    a pretend capacity, so deleting a file really frees space.  ``remove_file`` is
    injectable for fault tests (a process killed mid-deletion, a file that cannot
    be removed).  Defaults: ``os.statvfs`` and ``os.unlink``."""

    def __init__(self, app, *, clock: Clock | None = None, on_alarm: Callable[[str, str], None] | None = None,
                 disk_usage: Callable[[Path], tuple[int, int]] = statvfs_usage,
                 remove_file: Callable[[Path], None] = os.unlink, batch: int = 1000):
        self.app = app
        self.clock = clock or app.clock
        self.stale_open_s = STALE_OPEN_S
        self.on_alarm = on_alarm if on_alarm is not None else log_alarm
        self.disk_usage = disk_usage
        self.remove_file = remove_file
        self.batch = batch
        self.node = app.config.node_id
        self.root = Path(app.store.root)
        self._keys_kept: set[int] = set()
        self._alarmed: set[str] = set()
        self._full_shred_day: str | None = None
        self._scrub_pending = False
        self._quota: dict[str, int] | None = None
        self._quota_last_id = 0
        self._quota_counted_at = 0.0
        self._own_deletions: set[str] = set()  # paths we unlink: their events are no tamper
        self._pending: dict[str, float] = {}  # sealed files the index lacked: rel -> first seen
        self._open_seen: set[str] = set()  # .open files seen (events, reconciliation): checked for staleness
        self._events: queue.Queue[tuple[str, str, bool]] = queue.Queue()
        self._wake = threading.Event()
        self._space = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._sweep_lock = threading.Lock()

    # ------------------------------------------------------------ alarms

    def alarm(self, kind: str, message: str, *, once: str | None = None) -> None:
        """Raise an alarm; with ``once``, only until :meth:`clear_alarm` of that key."""
        if once is not None:
            if once in self._alarmed:
                return
            self._alarmed.add(once)
        try:
            self.on_alarm(kind, message)
        except Exception:  # an alarm sink must never stop retention
            log.exception("alarm sink failed for a %s alarm", kind)

    def clear_alarm(self, key: str) -> None:
        self._alarmed.discard(key)

    # ------------------------------------------------------------ the sweep

    def sweep(self) -> SweepResult:
        """One complete sweep; retried as a whole when the database is briefly away."""
        with self._sweep_lock:
            for attempt in range(DB_ATTEMPTS):
                try:
                    return self._sweep_once()
                except OperationalError as exc:
                    if attempt == DB_ATTEMPTS - 1:
                        raise DatabaseError(
                            f"database {safe_url(str(self.app.engine.url))} unavailable during a sweep "
                            f"({exc.orig.__class__.__name__}); nothing was deleted whose row was not marked first"
                        ) from None
                    log.warning("sweep: database unavailable (%s), retrying", exc.orig.__class__.__name__)
                    time.sleep(0.5 * 2**attempt)  # real time: a fake clock must not move for a retry
        raise AssertionError("unreachable")

    def _sweep_once(self) -> SweepResult:
        t0 = time.perf_counter()
        now = self.clock.now_us()
        res = SweepResult(now)
        self._index_pending(force=False)
        self._recover_stale_open()
        res.add("resumed", deletion.finish_deleting(self.app, now_us=now, remove_file=self.remove_file))
        with Session(self.app.engine) as s:
            holds = retention.HoldIndex(rq.active_hold_spans(s, now, retention.grace_us(self.app.config)))
            cameras = rq.camera_retention(s)
            due = rq.cameras_with_expired(s, self.node, now, retention.DAY_US)
        touched: set[int] = set()
        for camera_id, cutoff in planner.age_cutoffs(due, now):
            self._evict(self._pages(camera_id, max_start_us=cutoff), holds, "age", now, res, touched)
        self._quota_pass(holds, now, res, touched)
        self._watermark_pass([c.camera_id for c in cameras], holds, now, res, touched)
        self._shred(touched, now, res)
        self._expire_quarantine(now, res)
        self._report_failures(res)
        res.duration_s = time.perf_counter() - t0
        with Session(self.app.engine) as s, s.begin():
            state.record(s, state.LastSweep(self.node, now, res.segments_deleted, res.failed, len(res.shredded),
                                            round(res.duration_s * 1000, 1)))
        if res.segments_deleted or res.shredded:
            log.info("sweep: deleted %s, shredded %d day key(s), %d held segment(s) kept",
                     res.deleted, len(res.shredded), res.held_kept)
        return res

    def _pages(self, camera_id: str, *, max_start_us: int | None = None, limit: int | None = None
               ) -> Iterator[SegmentRef]:
        """This node's sealed segments of one camera, oldest first, page by page (one
        short read per page; rows deleted meanwhile are behind the cursor)."""
        after, limit = None, limit or self.batch
        while True:
            with Session(self.app.engine) as s:
                page = rq.segments_page(s, camera_id, self.node, max_start_us=max_start_us, after=after, limit=limit)
            yield from page
            if len(page) < limit:
                return
            after = (page[-1].start_us, page[-1].id)

    def _evict(self, refs: Iterator[SegmentRef], holds, reason: str, now: int, res: SweepResult,
               touched: set[int], need_bytes: int | None = None) -> int:
        """Carry out the planner's steps for ``refs`` (vms/retention/planner.py).  Returns the bytes freed."""
        freed = 0
        for step in planner.evictions(refs, holds, batch=self.batch, need_bytes=need_bytes):
            if isinstance(step, planner.Keep):
                self._keep_key(step.ref, res)
            else:
                self._delete(list(step.refs), reason, now, res, touched)
                freed += step.size_bytes
        return freed

    def _delete(self, refs: list[SegmentRef], reason: str, now: int, res: SweepResult, touched: set[int]) -> None:
        if not refs:
            return
        if len(self._own_deletions) > 1_000_000:  # events lost (inotify overflow): forget
            self._own_deletions.clear()
        if self._observer is not None:
            self._own_deletions.update(r.path for r in refs)
        done = deletion.delete_segments(self.app, refs, reason=reason, now_us=now, remove_file=self.remove_file)
        res.add(reason, done)
        touched |= done.key_ids
        if self._quota is not None:
            for r in refs:
                self._quota[r.camera_id] = self._quota.get(r.camera_id, 0) - r.size_bytes
        for path, why in done.failed:
            self.alarm("deletion", f"segment {layout.shown(path)} could not be deleted: {why}; retried next sweep",
                       once=f"deletion:{path}")

    def _keep_key(self, ref: SegmentRef, res: SweepResult) -> None:
        res.held_kept += 1
        if ref.id in self._keys_kept:
            return
        path = layout.safe_abspath(self.root, ref.path)
        try:
            with Session(self.app.engine) as s, s.begin():
                if path is not None:
                    self.app.keys.keep_segment_key(s, ref.id, path)
            self._keys_kept.add(ref.id)
        except (OSError, SegmentError, KeyError_) as exc:
            self.alarm("tamper", f"held segment {layout.shown(ref.path)} cannot be read to keep its own key "
                       f"({exc.__class__.__name__}); its day key is not shredded", once=f"keep:{ref.id}")

    # ------------------------------------------------------------ quota and watermark

    def _quota_pass(self, holds, now: int, res: SweepResult, touched: set[int]) -> None:
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

    def _watermark_pass(self, cameras: list[str], holds, now: int, res: SweepResult, touched: set[int]) -> None:
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

    # ------------------------------------------------------------ shredding and quarantine

    def _shred(self, touched: set[int], now: int, res: SweepResult) -> None:
        before_day = retention.shred_before_day(now)
        today = retention.utc_day(now)
        with Session(self.app.engine) as s, s.begin():
            keys = rq.unneeded_day_keys(s, touched, before_day=before_day)
            if self._full_shred_day != today:  # first sweep, and once a day: anything missed
                keys = sorted(set(keys) | set(rq.shreddable_day_keys(s, self.node, before_day=before_day)))
            for k in keys:
                if any((self.root / k.camera_id / k.day).glob("*.vseg.open")):
                    continue  # footage awaiting the recorder's crash recovery still needs the key
                if self.app.keys.shred(s, k.key_id, now_us=now):
                    res.shredded.append((k.camera_id, k.day))
        self._full_shred_day = today
        if res.shredded or self._scrub_pending:
            self._scrub_pending = not rq.scrub_shredded_keys(self.app.engine)

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

    # ------------------------------------------------------------ the service

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._observer = start_observer(self.root, self._enqueue)
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)
        self._thread.start()

    def _enqueue(self, kind: str, rel: str, is_dir: bool) -> None:
        self._events.put((kind, rel, is_dir))
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout_s)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        interval = self.app.config.janitor.sweep_interval_s
        self._guarded(self.sweep)
        next_sweep = time.monotonic() + interval
        steps = self._reconcile_steps(check.CheckReport())  # one camera per turn, sweeps stay on time
        while not self._stop.is_set():
            if steps is not None:
                if self._guarded(lambda it=steps: next(it, None)) is None:
                    steps = None  # done (or failed: a generator cannot resume; the alarm says so)
            else:
                self._wake.wait(max(0.0, min(1.0, next_sweep - time.monotonic())))
                self._wake.clear()
            self._guarded(self.process_events)
            if self._space.is_set() or time.monotonic() >= next_sweep:
                self._guarded(self.sweep)
                next_sweep = time.monotonic() + interval

    def _guarded(self, fn):
        """Run one step of the service loop; a failure becomes an alarm, never the end
        of the thread.  Returns the step's result (None on failure)."""
        name = getattr(fn, "__name__", "step")
        try:
            out = fn()
            self.clear_alarm("janitor")
            return out
        except (DatabaseError, OperationalError) as exc:
            self.alarm("janitor", f"{name} failed: {exc}; retrying at the next interval", once="janitor")
        except Exception as exc:
            log.exception("janitor: %s failed", name)
            self.alarm("janitor", f"{name} failed ({exc.__class__.__name__}); retrying at the next interval",
                       once="janitor")
        return None
