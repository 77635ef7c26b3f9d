"""Index and disk kept in agreement: the storage layout, the deletion protocol,
quarantine, and ``vms check`` (find drift, repair it only when asked).

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

import errno
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.format.segment import SegmentError
from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyError_
from storage.sql import index
from storage.sql import retention_queries as rq
from storage.sql.index import SegmentRef
from storage.store import segment_relpath
from vms.core.config import CAMERA_ID

log = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
IGNORED_TOP = {QUARANTINE, "lost+found"}
DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SEGMENT_FILE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z\.vseg$")
OPEN_FILE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z\.vseg\.open$")


def shown(name: str) -> str:
    """A file name as it may appear in a log or message (control characters and
    undecodable bytes escaped)."""
    return ascii(name)


# ---------------------------------------------------------------- layout


@dataclass(frozen=True)
class Entry:
    rel: str  # relative to the storage root, '/' separators
    kind: str  # segment | open | unknown
    size: int = 0
    is_dir: bool = False


def classify(rel: str) -> str:
    """What a path relative to the root should be, by its place and name alone:
    ``segment``, ``open``, ``camera-dir``, ``day-dir``, ``ignored`` or ``unknown``."""
    parts = rel.split("/")
    if parts[0] in IGNORED_TOP:
        return "ignored"
    if not CAMERA_ID.match(parts[0]) or any(p in ("", ".", "..") for p in parts):
        return "unknown"
    if len(parts) == 1:
        return "camera-dir"
    if not DAY_DIR.match(parts[1]):
        return "unknown"
    if len(parts) == 2:
        return "day-dir"
    if len(parts) == 3:
        day_digits = parts[1].replace("-", "")
        if SEGMENT_FILE.match(parts[2]) and parts[2].startswith(day_digits):
            return "segment"
        if OPEN_FILE.match(parts[2]) and parts[2].startswith(day_digits):
            return "open"
    return "unknown"


def _entry(rel: str, d: os.DirEntry) -> Entry:
    kind = classify(rel)
    is_dir = d.is_dir(follow_symlinks=False)
    regular = d.is_file(follow_symlinks=False)
    if kind in ("segment", "open") and regular:
        return Entry(rel, kind, d.stat(follow_symlinks=False).st_size)
    return Entry(rel, "unknown", 0, is_dir)


def top_level(root: Path) -> tuple[list[str], list[Entry]]:
    """Camera directories under the root, and everything else that does not belong."""
    cameras, unknown = [], []
    if not root.is_dir():
        return cameras, unknown
    with os.scandir(root) as it:
        for d in it:
            kind = classify(d.name)
            if kind == "ignored":
                continue
            if kind == "camera-dir" and d.is_dir(follow_symlinks=False):
                cameras.append(d.name)
            else:
                unknown.append(Entry(d.name, "unknown", 0, d.is_dir(follow_symlinks=False)))
    return sorted(cameras), unknown


def scan_camera(root: Path, camera: str) -> Iterator[Entry]:
    """Every entry under ``ROOT/CAMERA`` (two levels; unknown directories are not entered)."""
    cam_dir = root / camera
    try:
        days = sorted(os.scandir(cam_dir), key=lambda d: d.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for day in days:
        rel_day = f"{camera}/{day.name}"
        if classify(rel_day) != "day-dir" or not day.is_dir(follow_symlinks=False):
            yield Entry(rel_day, "unknown", 0, day.is_dir(follow_symlinks=False))
            continue
        try:
            files = sorted(os.scandir(day.path), key=lambda d: d.name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for f in files:
            yield _entry(f"{rel_day}/{f.name}", f)


def safe_abspath(root: Path, rel: str) -> Path | None:
    """The absolute path of an indexed segment, or None if the row's path is not
    a segment path of the layout (a row must never make us touch anything else)."""
    return root / rel if classify(rel) == "segment" else None


# ---------------------------------------------------------------- quarantine


def _sanitise(rel: str) -> str:
    flat = re.sub(r"[^A-Za-z0-9._-]", "_", rel.replace("/", "__")).lstrip(".")
    return flat[:120] or "unnamed"


def quarantine(root: Path, rel: str, now_us: int) -> Path:
    """Move ``ROOT/rel`` (file, directory or symlink) into the quarantine folder."""
    qdir = root / QUARANTINE
    qdir.mkdir(mode=0o700, exist_ok=True)
    stamp = datetime.fromtimestamp(now_us / 1e6, UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{_sanitise(rel)}"
    target, n = qdir / base, 1
    while target.exists() or target.is_symlink():
        target, n = qdir / f"{base}.{n}", n + 1
    os.rename(root / rel, target)
    log.warning("quarantined %s as %s", shown(rel), target.name)
    return target


def quarantined_before(root: Path, before_us: int) -> list[tuple[Path, int]]:
    """Quarantined items (path, bytes) moved there before ``before_us``."""
    qdir = root / QUARANTINE
    limit = datetime.fromtimestamp(before_us / 1e6, UTC).strftime("%Y%m%dT%H%M%SZ")
    out = []
    if not qdir.is_dir():
        return out
    for d in os.scandir(qdir):
        stamp = d.name[:16]
        if re.match(r"^\d{8}T\d{6}Z$", stamp) and stamp < limit:
            out.append((Path(d.path), _tree_bytes(Path(d.path))))
    return sorted(out)


def _tree_bytes(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


# ---------------------------------------------------------------- deletion protocol


@dataclass
class Deleted:
    segments: int = 0
    size_bytes: int = 0
    key_ids: set[int] = field(default_factory=set)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def deletion_rows(refs: Sequence[SegmentRef], reason: str, now_us: int) -> list[rq.DeletionRow]:
    """One record per camera: time span, count and bytes.  Never names or footage."""
    by_cam: dict[str, list[SegmentRef]] = {}
    for r in refs:
        by_cam.setdefault(r.camera_id, []).append(r)
    return [
        rq.DeletionRow(now_us, cam, min(r.start_us for r in rs), max(r.end_us for r in rs), len(rs),
                       sum(r.size_bytes for r in rs), reason)
        for cam, rs in sorted(by_cam.items())
    ]


def delete_segments(app, refs: Sequence[SegmentRef], *, reason: str, now_us: int,
                    remove_file: Callable[[Path], None] = os.unlink) -> Deleted:
    """Mark and record (one transaction), remove the files, then remove the rows."""
    if not refs:
        return Deleted()
    with Session(app.engine) as s, s.begin():
        index.mark_deleting(s, [r.id for r in refs])
        rq.add_deletion_records(s, deletion_rows(refs, reason, now_us))
    return finish_deleting(app, refs, now_us=now_us, remove_file=remove_file)


def finish_deleting(app, refs: Sequence[SegmentRef] | None = None, *, now_us: int,
                    remove_file: Callable[[Path], None] = os.unlink) -> Deleted:
    """Remove the files of rows in ``deleting`` (all of this node's when ``refs`` is
    None), then the rows whose file is gone.  A file that cannot be removed keeps
    its row in ``deleting``; the next call tries again."""
    root = app.store.root
    if refs is None:
        with Session(app.engine) as s:
            refs = rq.deleting_segments(s, app.config.node_id)
    out, gone, day_dirs = Deleted(), [], set()
    for ref in refs:
        problem = _remove_one(root, ref.path, now_us, remove_file)
        if problem:
            out.failed.append((ref.path, problem))
            continue
        gone.append(ref)
        day_dirs.add(ref.path.rsplit("/", 1)[0])
    if gone:
        with Session(app.engine) as s, s.begin():
            index.remove_segments(s, [r.id for r in gone])
    out.segments = len(gone)
    out.size_bytes = sum(r.size_bytes for r in gone)
    out.key_ids = {r.key_id for r in gone}
    for rel in day_dirs:  # an emptied day directory goes too (never a non-empty one)
        try:
            os.rmdir(root / rel)
        except OSError:
            pass
    return out


def _remove_one(root: Path, rel: str, now_us: int, remove_file: Callable[[Path], None]) -> str | None:
    path = safe_abspath(root, rel)
    if path is None:
        return "the row's path is not a segment path of the storage layout; not touched"
    try:
        remove_file(path)
    except (FileNotFoundError, NotADirectoryError):
        pass  # already gone (an interrupted deletion, or vanished: reported as tamper elsewhere)
    except IsADirectoryError:
        return _quarantine_in_place(root, rel, now_us)
    except OSError as exc:
        if exc.errno == errno.EPERM and path.is_dir() and not path.is_symlink():
            return _quarantine_in_place(root, rel, now_us)
        return f"cannot remove ({exc.__class__.__name__}: {os.strerror(exc.errno) if exc.errno else exc})"
    return None


def _quarantine_in_place(root: Path, rel: str, now_us: int) -> str | None:
    try:
        quarantine(root, rel, now_us)  # a directory where a segment should be: not ours to delete
    except OSError as exc:
        return f"a directory is where the segment should be and it cannot be quarantined ({exc.__class__.__name__})"
    return None


# ---------------------------------------------------------------- indexing a found file


def index_found_file(app, rel: str) -> str | None:
    """Index a sealed segment file the index lacks (a recorder killed between seal
    and index).  Returns None when indexed (or already indexed), otherwise why the
    file is not a segment of this appliance (the caller quarantines it)."""
    path = safe_abspath(app.store.root, rel)
    if path is None or path.is_symlink() or not path.is_file():
        return "not a regular segment file"
    with Session(app.engine) as s:
        if index.segment_by_path(s, rel) is not None:
            return None
        try:
            summary = SegmentReader(path, app.keys.key_for_segment(s, None)).summary()
        except (SegmentError, KeyError_) as exc:
            return f"does not authenticate ({exc.__class__.__name__})"
        except OSError as exc:
            return f"cannot be read ({exc.__class__.__name__})"
        key = index.day_key_by_id(s, summary.key_id)
    if key is None or key.camera_id != summary.camera or key.day != summary.day:
        return "its header names another camera or day than its key"
    if segment_relpath(summary.camera, summary.start_us) != rel:
        return "its name does not match its header (moved or renamed)"
    try:
        app.store.index_sealed(summary)
    except IntegrityError:
        return None  # the recorder indexed it meanwhile
    log.info("indexed %s, a sealed segment the index lacked", shown(rel))
    return None


# ---------------------------------------------------------------- vms check

REPAIRS = {
    "missing": "remove the row (deletion record, reason 'missing')",
    "size": "quarantine the file and remove the row (reason 'quarantine')",
    "corrupt": "quarantine the file and remove the row (reason 'quarantine')",
    "unindexed": "authenticate and index it; quarantine it if it is not a segment of this appliance",
    "unknown": "move it to the quarantine folder",
    "deleting": "finish the interrupted deletion",
}


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
    if repair:
        for problem in report.problems:
            why = _repair(app, problem, now_us)
            (report.unrepaired.append((problem, why)) if why else report.repaired.append(problem))
    return report


def _what(e: Entry) -> str:
    return "a directory that is not part of the storage layout" if e.is_dir else "not a segment file of this layout"


def check_camera(app, camera: str, report: CheckReport, *, full: bool = False) -> None:
    """Add one camera's problems (this node) to ``report``."""
    root = app.store.root
    with Session(app.engine) as s:
        rows = rq.segment_files(s, camera, app.config.node_id)
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
        return bool(index.held_segment_ids(s, now_us, [segment_id]))


def _repair(app, p: Problem, now_us: int) -> str | None:
    """Carry out one repair; returns why it could not be done, or None."""
    root = app.store.root
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
