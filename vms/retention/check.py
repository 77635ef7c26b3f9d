"""Index and disk kept in agreement: ``vms check`` finds drift and repairs it only when asked.

The storage layout and quarantine are in :mod:`vms.retention.layout`, the deletion protocol in
:mod:`vms.retention.deletion`; the invariants they keep are these.

Invariants (docs/design/janitor.md):

1. every ``sealed`` row's file exists with the recorded size;
2. every ``*.vseg`` file under the storage root has a row;
3. a row in ``deleting`` is a deletion in flight: its file may or may not exist
   yet, and the next sweep (or ``vms check --repair``) finishes it;
4. nothing else lives in the storage root except ``.vseg.open`` files of the
   recorder (crash recovery is the recorder's) and the ``.quarantine`` folder.

Deletion protocol (:func:`delete_segments`): (a) one transaction marks the rows
``deleting`` and writes the deletion records; (b) the files are unlinked; (c)
one transaction removes the rows.  A crash after (a) leaves rows in
``deleting``, which :func:`finish_deleting` completes; a file is never unlinked
before its row says so, and a row is never removed while its file may exist.

Quarantine: anything that is not a well-formed segment of this appliance is
*moved* (never deleted at once) to ``ROOT/.quarantine/`` and reported; the
janitor deletes quarantined items after ``legal_max_retain_days``.  Names from
disk are shown with ``ascii()``, so hostile names (newlines, escape sequences,
invalid UTF-8) cannot forge log lines.  Symlinks are never followed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from storage.format.segment import SegmentError
from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyError_
from storage.sql import archive_queries, index
from storage.sql import retention_queries as rq
from vms.core.i18n import N_, translator
from vms.retention import rules
from vms.retention.deletion import delete_segments, finish_deleting, index_found_file
from vms.retention.layout import Entry, quarantine, scan_camera, shown, top_level

log = logging.getLogger(__name__)

#: what ``--repair`` does, per kind of problem: keys of the ``vms`` catalog (the command says them in the reader's
#: language; ``REPAIRS`` is their English text, as ``--json`` has always carried it)
REPAIR_KEYS = {
    "missing": N_("check.repair.missing"),
    "size": N_("check.repair.size"),
    "corrupt": N_("check.repair.corrupt"),
    "unindexed": N_("check.repair.unindexed"),
    "unknown": N_("check.repair.unknown"),
    "deleting": N_("check.repair.deleting"),
    "archive-missing": N_("check.repair.archive_missing"),
    "archive-size": N_("check.repair.archive_size"),
    "archive-unknown": N_("check.repair.archive_unknown"),
    "archive-unreachable": N_("check.repair.archive_unreachable"),
}
REPAIRS = {kind: translator("en")(key) for kind, key in REPAIR_KEYS.items()}


@dataclass(frozen=True)
class Problem:
    kind: str
    path: str
    detail: str
    segment_id: int | None = None

    @property
    def repair(self) -> str:
        return REPAIRS[self.kind]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": shown(self.path), "detail": self.detail, "repair": self.repair}


@dataclass
class CheckReport:
    segments: int = 0
    files: int = 0
    open_paths: list[str] = field(default_factory=list)  # relative paths of the open (recording) files
    authenticated: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    unrepaired: list[tuple[Problem, str]] = field(default_factory=list)

    @property
    def open_files(self) -> int:
        return len(self.open_paths)


def check(app, *, full: bool = False, repair: bool = False, now_us: int | None = None) -> CheckReport:
    """Compare index and disk for this node, camera by camera; with ``full`` also
    authenticate every chunk of every segment; with ``repair`` fix what was found."""
    root = app.store.root
    now_us = app.clock.now_us() if now_us is None else now_us
    report = CheckReport()
    disk_cameras, strays = top_level(root)
    report.problems += [Problem("unknown", e.rel, _what(e)) for e in strays]
    with Session(app.engine) as s:
        cameras = sorted(set(disk_cameras) | {c.camera_id for c in rq.camera_retention(s)})
    for camera in cameras:
        check_camera(app, camera, report, full=full)
    if app.config.archive is not None:
        report.problems += _bucket_problems(app)
    if repair:
        for problem in report.problems:
            why = _repair(app, problem, now_us)
            (report.unrepaired.append((problem, why)) if why else report.repaired.append(problem))
    return report


def _bucket_problems(app) -> list[Problem]:
    """The index against the archive's bucket (this node's objects)."""
    from storage.objectstore import StoreError
    from vms.archive import health

    try:
        return [Problem(p.kind, p.key, p.detail, p.segment_id) for p in health.compare(app)]
    except StoreError as exc:
        return [Problem("archive-unreachable", app.config.archive.bucket, str(exc))]


def _what(e: Entry) -> str:
    return "a directory that is not part of the storage layout" if e.is_dir else "not a segment file of this layout"


def check_camera(app, camera: str, report: CheckReport, *, full: bool = False) -> None:
    """Add one camera's problems (this node) to ``report``."""
    root = app.store.root
    with Session(app.engine) as s:
        rows = rq.segment_files(s, camera, app.config.node_id)
        for rel in archive_queries.archive_only_paths(s, camera, app.config.node_id):
            rows.pop(rel, None)  # removed from disk after archiving: the bucket check covers it
    seen: set[str] = set()
    for e in scan_camera(root, camera):
        if e.kind == "open":
            report.open_paths.append(e.rel)
            continue
        if e.kind == "unknown":
            report.problems.append(Problem("unknown", e.rel, _what(e)))
            continue
        report.files += 1
        seen.add(e.rel)
        row = rows.get(e.rel)
        if row is None:
            report.problems.append(Problem("unindexed", e.rel, "a sealed segment file the index does not know"))
        elif row.status == "sealed" and row.size_bytes != e.size:
            report.problems.append(Problem("size", e.rel, f"{e.size} bytes on disk, {row.size_bytes} in the index",
                                           row.id))
    for rel, row in sorted(rows.items()):
        report.segments += 1
        if row.status == "deleting":
            report.problems.append(Problem("deleting", rel, "deletion interrupted; the next sweep finishes it", row.id))
        elif rel not in seen:
            report.problems.append(Problem("missing", rel, "indexed segment file is missing", row.id))
        elif full and row.size_bytes == (root / rel).lstat().st_size:
            detail = authenticate(app, rel, row.id)
            if detail:
                report.problems.append(Problem("corrupt", rel, detail, row.id))
            else:
                report.authenticated += 1


def authenticate(app, rel: str, segment_id: int) -> str | None:
    """Why the segment file at ``rel`` does not authenticate with its key, or None when every chunk does."""
    with Session(app.engine) as s:
        try:
            SegmentReader(app.store.root / rel, app.keys.key_for_segment(s, segment_id)).summary()
        except SegmentError as exc:
            return f"does not authenticate: {exc.reason}" + (f" (chunk {exc.chunk})" if exc.chunk is not None else "")
        except KeyError_ as exc:
            return f"its key cannot be used: {exc}"
        except OSError as exc:
            return f"cannot be read ({exc.__class__.__name__})"
    return None


def _held(app, segment_id: int, now_us: int) -> bool:
    with Session(app.engine) as s:
        return bool(index.held_segment_ids(s, now_us, [segment_id], rules.grace_us(app.config)))


def _repair(app, p: Problem, now_us: int) -> str | None:
    """Carry out one repair; returns why it could not be done, or None."""
    root = app.store.root
    if p.kind.startswith("archive-"):
        with Session(app.engine) as s, s.begin():
            ref = index.segment_by_id(s, p.segment_id) if p.segment_id is not None else None
            if p.kind in ("archive-missing", "archive-size") and ref is not None and (root / ref.path).is_file():
                archive_queries.requeue(s, p.segment_id)
                return None
        return "left for a person: " + REPAIRS[p.kind]
    try:
        if p.kind == "unknown":
            quarantine(root, p.path, now_us)
        elif p.kind == "unindexed":
            why = index_found_file(app, p.path)
            if why:
                quarantine(root, p.path, now_us)
        elif p.kind in ("missing", "size", "corrupt", "deleting"):
            with Session(app.engine) as s:
                ref = index.segment_by_id(s, p.segment_id)
            if ref is None:
                return None  # gone meanwhile
            if p.kind != "deleting" and _held(app, ref.id, now_us):
                # a legal hold is exempt from every deletion: keep the row, its key and the file as they are
                return "under a legal hold: left as it is (row, key and file) for a person to look at"
            if p.kind == "deleting":
                done = finish_deleting(app, [ref], now_us=now_us)
            elif p.kind == "missing":
                done = delete_segments(app, [ref], reason="missing", now_us=now_us)
            else:
                done = delete_segments(app, [ref], reason="quarantine", now_us=now_us,
                                       remove_file=lambda _path: quarantine(root, ref.path, now_us))
            if done.failed:
                return done.failed[0][1]
    except OSError as exc:
        return f"{exc.__class__.__name__}: {os.strerror(exc.errno) if exc.errno else exc}"
    return None
