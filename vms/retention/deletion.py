"""The deletion protocol, and indexing a sealed file the index lacks.

:func:`delete_segments`: (a) one transaction marks the rows ``deleting`` and writes the deletion records;
(b) the files are unlinked; (c) one transaction removes the rows.  A crash after (a) leaves rows in
``deleting``, which :func:`finish_deleting` completes; a file is never unlinked before its row says so, and a
row is never removed while its file may exist.  The invariants are listed in :mod:`vms.retention.check`.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from vms.retention.layout import quarantine, safe_abspath, shown

log = logging.getLogger(__name__)


@dataclass
class Deleted:
    segments: int = 0
    size_bytes: int = 0
    key_ids: set[int] = field(default_factory=set)
    key_hours: set[tuple[int, int]] = field(default_factory=set)  # (day key id, hour start): their hour keys
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
    out.key_hours = {(r.key_id, r.start_us - r.start_us % index.HOUR_US) for r in gone}
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
    if summary.hour is not None and summary.hour != summary.start_us % (24 * index.HOUR_US) // index.HOUR_US:
        return "its header names another hour than its start"
    if segment_relpath(summary.camera, summary.start_us) != rel:
        return "its name does not match its header (moved or renamed)"
    try:
        app.store.index_sealed(summary)
    except IntegrityError:
        return None  # the recorder indexed it meanwhile
    log.info("indexed %s, a sealed segment the index lacked", shown(rel))
    return None
