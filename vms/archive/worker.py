"""The archive worker: copies sealed segments to the bucket, keeps legal holds in step, deletes expired objects.

One thread per node (``vms serve`` starts it where ``[archive]`` is configured and the node records or
sweeps), apart from the recorder's threads: it never holds a lock the recorder takes, reads files the
recorder has sealed and closed, and its upload threads run at a lower CPU priority (``nice`` 10 on Linux).
Each pass (:meth:`ArchiveWorker.run_once`):

1. queues this node's sealed segments that ended at least ``upload_after_s`` ago (rows in
   ``archive_objects``: the queue is in the database and survives restarts);
2. uploads due items, at most ``concurrency`` at once, the file as stored (still encrypted; nothing is
   decrypted), with a legal hold when the segment is held and the bucket has object lock; a failure
   backs off (doubling, up to ``retry_max_s``) and the item waits on local disk;
3. puts S3 legal holds on archived objects that a hold in force now covers, and lifts them from objects
   no hold covers any more (bucket with object lock only);
4. deletes every version of the objects of segments the janitor deleted (their keys are shredded by the
   janitor as before, so a copy that escaped deletion is unreadable anyway).

A store that cannot be reached raises the ``archive_unreachable`` alarm once (how much waits on local disk); it is
cleared by the next pass that reaches the store.  Messages never name credentials.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.objectstore import ObjectStore, StoreError
from storage.sql import archive_queries as aq
from storage.sql import index
from storage.sql import retention_queries as rq
from vms.archive.bucket import DAY_US, node_prefix, open_store

log = logging.getLogger(__name__)
NICE = 10
HOLD_SYNC_S = 30.0  # legal holds are brought in step at most this often (and on every upload of a held segment)
ALARM = "archive_unreachable"


@dataclass
class PassResult:
    queued: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    failed: int = 0
    held: int = 0
    released: int = 0
    purged: int = 0
    error: str | None = None


def backoff_s(attempts: int, max_s: float) -> float:
    """Seconds to wait after the ``attempts``-th failure in a row: 2, 4, 8, ... up to ``max_s``."""
    return min(max_s, 2.0 ** min(attempts, 20))


class ArchiveWorker:
    def __init__(self, app, store: ObjectStore | None = None, *,
                 on_alarm: Callable[[str, str], None] | None = None, on_clear: Callable[[str], None] | None = None):
        self.app = app
        self.cfg = app.config.archive
        self.node = app.config.node_id
        self.store = store or open_store(self.cfg)
        self.on_alarm = on_alarm or (lambda kind, msg: log.warning("ALARM %s: %s", kind, msg))
        self.on_clear = on_clear or (lambda kind: None)
        self.object_lock: bool | None = None  # learnt from the bucket on the first pass that reaches it
        self._alarmed = False
        self._holds_synced_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self.cfg.concurrency, thread_name_prefix="archive-upload",
                                        initializer=_lower_priority)

    # ------------------------------------------------------------ service

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="archive", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        _lower_priority()
        while not self._stop.is_set():
            try:
                res = self.run_once()
                busy = res.uploaded or res.purged
            except Exception as exc:  # a failed pass is retried; the thread never dies
                log.exception("archive pass failed")
                self._alarm(f"the archive worker failed ({exc.__class__.__name__}); retrying")
                busy = False
            if not busy:
                self._stop.wait(self.cfg.poll_interval_s)

    # ------------------------------------------------------------ one pass

    def run_once(self) -> PassResult:
        res = PassResult()
        now = self.app.clock.now_us()
        with Session(self.app.engine) as s, s.begin():
            res.queued = aq.enqueue_sealed(s, self.node, ended_before_us=now - int(self.cfg.upload_after_s * 1e6),
                                           key_prefix=self.cfg.key_prefix, now_us=now)
        try:
            if self.object_lock is None:
                self.object_lock = self.store.bucket_status().object_lock
            self._upload_due(now, res)
            mono = self.app.clock.monotonic_s()
            if self.object_lock and (self._holds_synced_at is None or mono - self._holds_synced_at >= HOLD_SYNC_S
                                     or mono < self._holds_synced_at):
                self._sync_holds(now, res)
                self._holds_synced_at = mono
            self._purge(now, res)
        except StoreError as exc:
            res.error = str(exc)
            if exc.kind in ("unreachable", "credentials", "no_bucket"):
                self.object_lock = None if exc.kind != "unreachable" else self.object_lock
                self._alarm(self._waiting(exc))
                return res
            raise
        if res.error is None and self._alarmed:
            self._alarmed = False
            log.info("archive: the store is reachable again")
            self.on_clear(ALARM)
        return res

    def _upload_due(self, now: int, res: PassResult) -> None:
        with Session(self.app.engine) as s:
            items = aq.due(s, self.node, now, self.cfg.concurrency * 4)
            held = index.held_segment_ids(s, now, [i.segment_id for i in items], _grace_us(self.app.config))
        if not items:
            return
        outcomes = list(self._pool.map(lambda it: self._upload(it, it.segment_id in held), items))
        unreachable = None
        for item, error in zip(items, outcomes, strict=True):
            with Session(self.app.engine) as s, s.begin():
                if error is None:
                    hold = item.segment_id in held and bool(self.object_lock)
                    if aq.mark_archived(s, item.segment_id, held=hold, now_us=self.app.clock.now_us()):
                        res.uploaded += 1
                        res.uploaded_bytes += item.size_bytes
                        continue
                    orphan = True  # deleted by the janitor meanwhile: the object goes too
                else:
                    orphan = False
                    res.failed += 1
                    attempts = item.attempts + 1
                    wait = backoff_s(attempts, self.cfg.retry_max_s)
                    aq.mark_failed(s, item.segment_id, attempts=attempts, next_try_us=now + int(wait * 1e6),
                                   error=str(error))
                    if error.kind in ("unreachable", "credentials", "no_bucket"):
                        unreachable = error
            if orphan:
                self._delete_orphan(item.object_key)
        if unreachable is not None:
            raise unreachable

    def _upload(self, item: aq.QueueItem, held: bool) -> StoreError | None:
        path = self.app.store.abspath(item.path)
        try:
            self.store.put_file(item.object_key, path, legal_hold=held and bool(self.object_lock))
            return None
        except StoreError as exc:
            return exc

    def _delete_orphan(self, key: str) -> None:
        try:
            self.store.delete_all_versions(key)
        except StoreError as exc:
            log.warning("archive: an object uploaded for a segment deleted meanwhile stays: %s", exc)

    def _sync_holds(self, now: int, res: PassResult) -> None:
        with Session(self.app.engine) as s:
            spans = rq.active_hold_spans(s, now, _grace_us(self.app.config))
            to_hold = aq.unheld_in_spans(s, self.node, [(h.camera_id, h.start_us, h.end_us) for h in spans], 1000)
            held = aq.held_objects(s, self.node)
        for segment_id, key in to_hold:
            self.store.set_legal_hold(key, True)
            with Session(self.app.engine) as s, s.begin():
                aq.set_held(s, segment_id, True)
            res.held += 1
        for segment_id, key, camera, start, end in held:
            if camera and any(h.camera_id == camera and h.start_us < end and h.end_us > start for h in spans):
                continue
            self.store.set_legal_hold(key, False)
            with Session(self.app.engine) as s, s.begin():
                aq.set_held(s, segment_id, False)
            res.released += 1

    def _purge(self, now: int, res: PassResult) -> None:
        with Session(self.app.engine) as s:
            due = aq.expired_due(s, self.node, now, 200)
        for segment_id, key, attempts in due:
            try:
                self.store.delete_all_versions(key)
            except StoreError as exc:
                if exc.kind not in ("held", "denied"):
                    raise
                with Session(self.app.engine) as s, s.begin():
                    aq.mark_failed(s, segment_id, attempts=attempts + 1,
                                   next_try_us=now + int(backoff_s(attempts + 1, self.cfg.retry_max_s) * 1e6),
                                   error=str(exc))
                continue
            with Session(self.app.engine) as s, s.begin():
                aq.forget(s, segment_id)
            res.purged += 1

    # ------------------------------------------------------------ alarms

    def _waiting(self, exc: StoreError) -> str:
        with Session(self.app.engine) as s:
            counts = aq.counts(s, self.node)
        queued = [c for c in counts if c.state == "queued"]
        n, size = sum(c.objects for c in queued), sum(c.size_bytes for c in queued)
        return (f"{exc}; {n} segment(s) ({size / 1e9:.2f} GB) wait on this node's disk and are uploaded when the "
                "store is back ('vms doctor' says how long the disk can buffer)")

    def _alarm(self, message: str) -> None:
        if self._alarmed:
            return
        self._alarmed = True
        try:
            self.on_alarm(ALARM, message)
        except Exception:
            log.exception("alarm sink failed for an archive alarm")


def _grace_us(config) -> int:
    return config.api.hold_grace_days * DAY_US  # the janitor's rule (vms.retention.rules.grace_us)


def _lower_priority() -> None:
    """Upload threads yield the CPU to the recorder: nice 10 for this thread (Linux threads have their own)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except (AttributeError, OSError):
        pass


def prefix_of(app) -> str:
    return node_prefix(app.config.archive, app.config.node_id)
