"""The inbox watch: CSV files dropped in ``[doorlog] inbox`` are imported and then removed.

A ``watchdog`` observer (its thread only queues names) wakes a worker thread, which also scans the folder
every ``scan_interval_s`` so that nothing is missed (events lost, files present at start-up).  A file is taken
once its size has stayed the same for ``settle_s`` (a controller still writing it is left alone; better still,
it writes ``NAME.tmp``/``.NAME`` and renames, and names starting with ``.`` or ending in ``.tmp``/``.part`` are
never read).

After :func:`vms.doorlog.ingest.import_file` has committed, the file is deleted, whatever the outcome
(imported, duplicate or rejected): its clear-text CPR numbers do not stay on disk.  A rejected file's report
(line numbers and reasons, no identifiers) is in the log, the audit trail and the administrator's door-log
status (``GET /api/doorlog/files``); the controller's own export is the source to fix and drop again.  Only a
file that could not be read or whose import failed for another reason (database away) stays, and is retried.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer

from vms.access.audit import SYSTEM
from vms.core.errors import DomainError
from vms.doorlog import ingest

log = logging.getLogger(__name__)
SKIPPED_SUFFIXES = (".tmp", ".part", ".partial", ".swp")


def wanted(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(SKIPPED_SUFFIXES)


class InboxWatch:
    def __init__(self, app, *, settle_s: float = 1.0, scan_interval_s: float = 10.0):
        self.app = app
        self.inbox = Path(ingest.require_config(app).inbox)
        self.settle_s, self.scan_interval_s = settle_s, scan_interval_s
        self._sizes: dict[str, tuple[int, float]] = {}
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self.results: list[ingest.ImportResult] = []  # the last few, for tests and the log

    def start(self) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
        # watchdog's debug messages name every inbox path, and a vendor may put a CPR number in a file name
        logging.getLogger("watchdog").setLevel(max(logging.INFO, logging.getLogger("watchdog").level))
        wake = self._wake

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if not event.is_directory:
                    wake.set()

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.inbox), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        self._thread = threading.Thread(target=self._run, name="doorlog-inbox", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout_s)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                waiting = self.scan()
            except Exception:  # the watch must outlive any one file
                log.exception("door log inbox: scan failed")
                waiting = True
            self._wake.wait(self.settle_s / 2 if waiting else self.scan_interval_s)
            self._wake.clear()

    def scan(self) -> bool:
        """Import every settled file in the inbox; True while some file is still settling."""
        waiting = False
        now = time.monotonic()  # real time: files are written in it
        try:
            entries = sorted(os.scandir(self.inbox), key=lambda e: e.name)
        except FileNotFoundError:
            return False
        for entry in entries:
            if not wanted(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            size = entry.stat(follow_symlinks=False).st_size
            seen = self._sizes.get(entry.name)
            if seen is None or seen[0] != size:
                self._sizes[entry.name] = (size, now)
                waiting = True
                continue
            if now - seen[1] < self.settle_s:
                waiting = True
                continue
            self._take(Path(entry.path))
        return waiting

    def _take(self, path: Path) -> None:
        shown = ingest.safe_name(path.name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("door log inbox: %s cannot be read (%s); retried", shown, exc.__class__.__name__)
            return
        try:
            result = ingest.import_file(self.app, data, name=path.name, source="inbox", actor=SYSTEM)
        except DomainError as exc:  # too large: reported, and removed like a rejected file
            log.warning("door log inbox: %s refused: %s", shown, exc.message)
            result = None
        self._sizes.pop(path.name, None)
        path.unlink(missing_ok=True)
        if result is not None:
            self.results = (self.results + [result])[-20:]
