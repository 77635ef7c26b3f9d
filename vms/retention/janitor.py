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
5. an hour key, and a day key, is shredded once no segment needs it (held segments
   get their own key first, :meth:`storage.keys.keystore.KeyStore.keep_segment_key`);
6. quarantined items older than the legal maximum are deleted (``quarantine``);
7. the door log's retention (:func:`vms.doorlog.retention.sweep`), when ``[doorlog]`` is configured.

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

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from storage.format.segment import SegmentError
from storage.keys.keyring import KeyError_
from storage.sql import retention_queries as rq
from storage.sql.db import DatabaseError, safe_url
from storage.sql.index import SegmentRef
from vms.core.clock import Clock
from vms.doorlog import retention as doorlog_retention
from vms.retention import check, deletion, layout, planner, state
from vms.retention import rules as retention
from vms.retention.archived_copies import ArchivedCopies
from vms.retention.space import SpaceKeeping
from vms.retention.state import SweepResult
from vms.retention.upkeep import INDEX_GRACE_S, Upkeep  # noqa: F401 (the grace is part of the janitor's contract)
from vms.retention.watch import StorageWatch, start_observer

log = logging.getLogger(__name__)

#: an open segment file not written for this long has no recorder behind it (a recorder seals a chunk at least
#: every second while packets arrive and closes the segment when its camera stops): the janitor recovers it,
#: so its footage is indexed and expires like any other instead of staying on disk for ever
STALE_OPEN_S = 600.0
DB_ATTEMPTS = 3


def statvfs_usage(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path``; free as available
    to the service user (``f_bavail``), which is what the recorder can write."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def log_alarm(kind: str, message: str) -> None:
    log.warning("ALARM %s: %s", kind, message)


class Janitor(StorageWatch, SpaceKeeping, Upkeep, ArchivedCopies):
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
        touched: set[tuple[int, int]] = set()  # (day key id, hour start) of deleted segments
        for camera_id, cutoff in planner.age_cutoffs(due, now):
            self._evict(self._pages(camera_id, max_start_us=cutoff), holds, "age", now, res, touched)
        self.drop_archived_copies(now)  # [archive] keep_local_days (vms/retention/archived_copies.py)
        self._quota_pass(holds, now, res, touched)
        self._watermark_pass([c.camera_id for c in cameras], holds, now, res, touched)
        self._shred(touched, now, res)
        self._expire_quarantine(now, res)
        res.doorlog = doorlog_retention.sweep(self.app, now, retention.grace_us(self.app.config))
        self._report_failures(res)
        res.duration_s = time.perf_counter() - t0
        with Session(self.app.engine) as s, s.begin():
            state.record(s, state.LastSweep(self.node, now, res.segments_deleted, res.failed,
                                            len(res.shredded) + len(res.shredded_hours),
                                            round(res.duration_s * 1000, 1)))
        if res.segments_deleted or res.shredded or res.shredded_hours:
            log.info("sweep: deleted %s, shredded %d hour key(s) and %d day key(s), %d held segment(s) kept",
                     res.deleted, len(res.shredded_hours), len(res.shredded), res.held_kept)
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
               touched: set[tuple[int, int]], need_bytes: int | None = None) -> int:
        """Carry out the planner's steps for ``refs`` (vms/retention/planner.py).  Returns the bytes freed."""
        freed = 0
        if reason != "age":  # quota and space: footage only in the archive frees nothing here
            refs = self._local_only(refs)
        for step in planner.evictions(refs, holds, batch=self.batch, need_bytes=need_bytes):
            if isinstance(step, planner.Keep):
                self._keep_key(step.ref, res)
            else:
                self._delete(list(step.refs), reason, now, res, touched)
                freed += step.size_bytes
        return freed

    def _delete(self, refs: list[SegmentRef], reason: str, now: int, res: SweepResult,
                touched: set[tuple[int, int]]) -> None:
        if not refs:
            return
        if len(self._own_deletions) > 1_000_000:  # events lost (inotify overflow): forget
            self._own_deletions.clear()
        if self._observer is not None:
            self._own_deletions.update(r.path for r in refs)
        done = deletion.delete_segments(self.app, refs, reason=reason, now_us=now, remove_file=self.remove_file)
        res.add(reason, done)
        touched |= done.key_hours
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
                if path is not None:  # a segment only in the archive: its header comes from there
                    fetch = self.app.store.archive_fetch
                    self.app.keys.keep_segment_key(s, ref.id, path, (lambda: fetch(ref)) if fetch else None)
            self._keys_kept.add(ref.id)
        except (OSError, SegmentError, KeyError_) as exc:
            self.alarm("tamper", f"held segment {layout.shown(ref.path)} cannot be read to keep its own key "
                       f"({exc.__class__.__name__}); its hour and day keys are not shredded", once=f"keep:{ref.id}")

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
