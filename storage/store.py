"""The segment store: files under the storage root plus their index rows.

Layout: ``ROOT/CAMERA/YYYY-MM-DD/YYYYMMDDTHHMMSS.ffffffZ.vseg`` (UTC start of
the segment; the day directory is the day whose key encrypts it).  Paths in the
index are relative to the root, with '/' separators.

Contracts:
* :meth:`SegmentStore.open_writer` creates the day key if needed (its own short
  transaction, committed before any footage is written under it).
* :meth:`SegmentStore.index_sealed` inserts the row in its own transaction; a
  sealed file whose row is missing (crash between the two) is found by
  :meth:`SegmentStore.recover` or the janitor's scan and indexed then.
* :meth:`SegmentStore.recover` repairs every ``.vseg.open`` file of this node and
  indexes the result with ``recovered = true``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage import index
from storage.keystore import KeyStore
from storage.packets import StreamInfo
from storage.segment import OPEN_SUFFIX, SUFFIX, SegmentReader, SegmentSummary, SegmentWriter, recover

log = logging.getLogger(__name__)


def utc_day(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, UTC).strftime("%Y-%m-%d")


def segment_relpath(camera_id: str, start_us: int) -> str:
    t = datetime.fromtimestamp(start_us // 1_000_000, UTC)
    return f"{camera_id}/{t:%Y-%m-%d}/{t:%Y%m%dT%H%M%S}.{start_us % 1_000_000:06d}Z{SUFFIX}"


class SegmentStore:
    def __init__(self, root: Path, engine: Engine, keys: KeyStore, *, node_id: str):
        self.root = Path(root)
        self.engine = engine
        self.keys = keys
        self.node_id = node_id

    def relpath(self, path: Path) -> str:
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def abspath(self, relpath: str) -> Path:
        return self.root / relpath

    def open_writer(self, camera_id: str, stream: StreamInfo, start_us: int, *, now_us: int) -> SegmentWriter:
        day = utc_day(start_us)
        with Session(self.engine) as s, s.begin():
            key_id, day_key = self.keys.day_key_for_write(s, camera_id, day, now_us=now_us)
        path = self.abspath(segment_relpath(camera_id, start_us))
        return SegmentWriter(path, day_key, camera=camera_id, day=day, key_id=key_id, start_us=start_us, stream=stream)

    def index_sealed(self, summary: SegmentSummary) -> int:
        with Session(self.engine) as s, s.begin():
            return self._insert(s, summary)

    def _insert(self, s: Session, summary: SegmentSummary) -> int:
        return index.add_segment(
            s,
            camera_id=summary.camera,
            node_id=self.node_id,
            key_id=summary.key_id,
            start_us=summary.start_us,
            end_us=summary.end_us,
            size_bytes=summary.size_bytes,
            packets=summary.packets,
            path=self.relpath(summary.path),
            recovered=summary.recovered,
        )

    def open_files(self, camera_id: str | None = None) -> Iterator[Path]:
        base = self.root / camera_id if camera_id else self.root
        if base.is_dir():
            yield from sorted(base.rglob(f"*{OPEN_SUFFIX}"))

    def recover(self, camera_id: str | None = None) -> list[SegmentSummary]:
        """Repair open files left by a killed recorder and index them."""
        done: list[SegmentSummary] = []
        for path in self.open_files(camera_id):
            with Session(self.engine) as s, s.begin():
                summary = recover(path, self.keys.key_for_segment(s, None))
                if summary is None:
                    log.warning("removed %s: killed before its first chunk, it held no footage", path.name)
                    continue
                if index.segment_by_path(s, self.relpath(summary.path)) is None:
                    self._insert(s, summary)
                done.append(summary)
                log.info("recovered %s: %d packets kept", summary.path.name, summary.packets)
        return done

    def reader(self, s: Session, ref: index.SegmentRef) -> SegmentReader:
        return SegmentReader(self.abspath(ref.path), self.keys.key_for_segment(s, ref.id))
