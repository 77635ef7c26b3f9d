"""The janitor's watch on the storage root: file-system events become index entries, quarantine or alarms.

:func:`start_observer` runs a ``watchdog`` observer whose thread only queues events; :class:`StorageWatch`
(a part of :class:`vms.retention.janitor.Janitor`) handles them in the janitor thread: a sealed file the index
lacks is indexed after a grace period, anything that is not a segment of this layout is quarantined, and an
indexed file that vanishes, changes size or changes in place raises a ``tamper`` alarm.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from storage.sql import archive_queries, index
from storage.sql import retention_queries as rq
from vms.retention import check, layout

log = logging.getLogger("vms.retention.janitor")  # one logger for the janitor's messages


class StorageWatch:
    """Event handling of the janitor; expects ``app``, ``root``, ``node``, ``clock``, ``_events``,
    ``_pending``, ``_open_seen``, ``_own_deletions``, ``_sweep_lock``, ``alarm``, ``_quarantine`` and
    ``_index_pending`` from :class:`~vms.retention.janitor.Janitor`."""

    def _on_problem(self, p: check.Problem) -> None:
        if p.kind == "unknown":
            self._quarantine(p.path, p.detail)
        elif p.kind == "unindexed":
            self._pending.setdefault(p.path, self.clock.monotonic_s())
        elif p.kind in ("missing", "size", "corrupt"):
            what = "vanished" if p.kind == "missing" else f"changed behind the appliance's back ({p.detail})"
            self.alarm("tamper", f"segment {layout.shown(p.path)} {what}", once=f"tamper:{p.path}:{p.kind}")

    def handle_event(self, kind: str, rel: str, is_dir: bool) -> None:
        """One file-system event (``created``, ``deleted``, ``modified``), path relative to the root."""
        what = layout.classify(rel)
        if what == "ignored":
            return
        if kind == "deleted":
            self._open_seen.discard(rel)
            if rel in self._own_deletions:
                self._own_deletions.discard(rel)
                return
            prefix = None if what == "segment" else (rel + "/" if what in ("camera-dir", "day-dir") else None)
            with Session(self.app.engine) as s:
                if prefix:
                    refs = rq.segments_under(s, self.node, prefix)
                else:
                    ref = index.segment_by_path(s, rel) if what == "segment" else None
                    refs = [ref] if ref else []
                remote = archive_queries.archive_only(s, [r.id for r in refs])  # removed after archiving
            for ref in refs:
                if ref.status == "sealed" and ref.id not in remote and not (self.root / ref.path).is_file():
                    self._on_problem(check.Problem("missing", ref.path, "vanished", ref.id))
            return
        path = self.root / rel
        if not path.exists() and not path.is_symlink():
            return  # gone again (e.g. the recorder's .open renamed away)
        regular = path.is_file() and not path.is_symlink()
        real_dir = path.is_dir() and not path.is_symlink()
        if what == "open" and regular:
            self._open_seen.add(rel)
            return
        if what in ("camera-dir", "day-dir") and real_dir:
            return
        if what != "segment" or not regular:
            self._quarantine(rel, "not a segment file of this layout")
            return
        with Session(self.app.engine) as s:
            ref = index.segment_by_path(s, rel)
        if ref is None:
            self._pending.setdefault(rel, self.clock.monotonic_s())
        elif ref.status == "sealed" and path.lstat().st_size != ref.size_bytes:
            self._on_problem(check.Problem("size", rel, f"{path.lstat().st_size} bytes on disk, "
                                           f"{ref.size_bytes} in the index", ref.id))
        elif ref.status == "sealed" and kind == "modified":
            # a sealed segment is never written again: a write of the same size (bytes changed in place)
            # is found by authenticating every chunk, as 'vms check --full' does
            detail = check.authenticate(self.app, rel, ref.id)
            if detail:
                self._on_problem(check.Problem("corrupt", rel, detail, ref.id))

    def process_events(self) -> int:
        """Handle queued file-system events (janitor thread); returns how many."""
        with self._sweep_lock:
            return self._process_events()

    def _process_events(self) -> int:
        n = 0
        while True:
            try:
                kind, rel, is_dir = self._events.get_nowait()
            except queue.Empty:
                break
            n += 1
            try:
                self.handle_event(kind, rel, is_dir)
            except OperationalError as exc:
                log.warning("event for %s postponed: database unavailable (%s)", layout.shown(rel),
                            exc.orig.__class__.__name__)
                self._events.put((kind, rel, is_dir))
                break
        self._index_pending(force=False)
        return n


def start_observer(root: Path, enqueue: Callable[[str, str, bool], None]):
    """A running watchdog observer on ``root`` (recursive) that turns every event into
    ``enqueue(kind, relpath, is_dir)`` with kind ``created``, ``modified`` or
    ``deleted`` (a move is a deletion of its source and a creation of its target)."""
    base = str(root)

    def rel(path) -> str | None:
        path = os.fsdecode(path)
        r = os.path.relpath(path, base)
        return None if r == "." or r.startswith("..") else r.replace(os.sep, "/")

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            kind = {"created": "created", "modified": "modified", "closed": "modified", "deleted": "deleted",
                    "moved": "deleted"}.get(event.event_type)
            if kind is None:
                return
            src = rel(event.src_path)
            if src is not None:
                enqueue(kind, src, event.is_directory)
            if event.event_type == "moved" and (dest := rel(event.dest_path)) is not None:
                enqueue("created", dest, event.is_directory)

    observer = Observer()
    observer.schedule(Handler(), base, recursive=True)
    observer.daemon = True
    observer.start()
    return observer
