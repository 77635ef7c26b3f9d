"""The storage root as the janitor sees it: which names belong to the layout, and quarantine.

Layout: ``ROOT/CAMERA/YYYY-MM-DD/YYYYMMDDTHHMMSS.ffffffZ.vseg`` (sealed) and ``....vseg.open`` (being written,
the recorder's); ``ROOT/.quarantine/`` holds anything else that turned up, *moved* there (never deleted at
once) and deleted by the janitor after ``legal_max_retain_days``.  Names from disk are shown with ``ascii()``
(:func:`shown`), so hostile names (newlines, escape sequences, invalid UTF-8) cannot forge log lines.
Symlinks are never followed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
