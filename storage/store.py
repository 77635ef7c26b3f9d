"""The segment store: files under the storage root plus their index rows.

Layout: ``ROOT/CAMERA/YYYY-MM-DD/YYYYMMDDTHHMMSS.ffffffZ.vseg`` (UTC start of
the segment; the day directory is the day whose key wraps the hour key that
encrypts it).  Paths in the index are relative to the root, with '/' separators.

Contracts:
* :meth:`SegmentStore.open_writer` creates the day key and the hour keys from
  the segment's hour to the end of its day if needed (its own short transaction,
  committed before any footage is written under them); the segment is encrypted
  under the hour key of its start (format version 2).  While the index is
  unreachable it goes on with the camera's hour keys of the same UTC day (kept in
  memory from the previous segment), so an index outage does not stop recording
  until midnight; the caller indexes the sealed segments once the index is back.
* :meth:`SegmentStore.index_sealed` inserts the row in its own transaction; a
  sealed file whose row is missing (crash between the two) is found by
  :meth:`SegmentStore.recover` or the janitor's scan and indexed then.
* :meth:`SegmentStore.recover` repairs every ``.vseg.open`` file of this node and
  indexes the result with ``recovered = true``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from storage.format.packets import StreamInfo
from storage.format.segment import OPEN_SUFFIX, SUFFIX, SegmentSummary, SegmentWriter
from storage.format.segment_reader import SegmentReader, recover
from storage.keys.keystore import KeyStore, WriteKeys, day_and_hour
from storage.sql import activity, index

log = logging.getLogger(__name__)


class SegmentUnavailable(FileNotFoundError):
    """An indexed segment whose bytes cannot be had here (another node's, and that
    node cannot be reached or is not configured).  The message names the segment
    by its index path and says why; it carries no key or footage."""

    def __init__(self, path: str, reason: str):
        self.path_text, self.reason = path, reason
        super().__init__(f"segment {path}: {reason}")

    def __str__(self) -> str:
        return f"segment {self.path_text}: {self.reason}"


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
        #: fetches the encrypted bytes of another node's segment (None: single node)
        self.remote_fetch: Callable[[index.SegmentRef], bytes] | None = None
        #: the encrypted bytes of an archived segment from the S3 archive, or None when it is not
        #: archived (set by the composition root from ``[archive]``; None: no archive)
        self.archive_fetch: Callable[[index.SegmentRef], bytes | None] | None = None
        #: camera -> the keys of the day of the segment last opened for writing (memory only)
        self._write_keys: dict[str, WriteKeys] = {}

    def relpath(self, path: Path) -> str:
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def abspath(self, relpath: str) -> Path:
        return self.root / relpath

    def open_writer(self, camera_id: str, stream: StreamInfo, start_us: int, *, now_us: int) -> SegmentWriter:
        day, hour, _ = day_and_hour(start_us)
        try:
            with Session(self.engine) as s, s.begin():
                keys = self.keys.keys_for_write(s, camera_id, start_us, now_us=now_us)
        except SQLAlchemyError as exc:
            # The index is briefly away (restart, failover): keep recording under the hour keys
            # of this camera-day made ahead with the previous segment's.  A new day needs the
            # index (its keys are created there), so the first segment of a new day waits for it.
            cached = self._write_keys.get(camera_id)
            if cached is None or cached.day != day or hour not in cached.hour_keys:
                raise
            log.warning("camera %s: index unavailable (%s); recording on under this hour's key", camera_id,
                        exc.__class__.__name__)
            keys = cached
        self._write_keys[camera_id] = keys
        path = self.abspath(segment_relpath(camera_id, start_us))
        return SegmentWriter(path, keys.hour_keys[hour], camera=camera_id, day=day, key_id=keys.key_id,
                             start_us=start_us, stream=stream, hour=hour)

    def index_sealed(self, summary: SegmentSummary) -> int:
        with Session(self.engine) as s, s.begin():
            return self._insert(s, summary)

    def _insert(self, s: Session, summary: SegmentSummary) -> int:
        segment_id = index.add_segment(
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
        if summary.activity is not None:
            activity.put(s, segment_id, summary.activity)
        return segment_id

    def open_files(self, camera_id: str | None = None) -> Iterator[Path]:
        base = self.root / camera_id if camera_id else self.root
        if base.is_dir():
            yield from sorted(base.rglob(f"*{OPEN_SUFFIX}"))

    def recover(self, camera_id: str | None = None) -> list[SegmentSummary]:
        """Repair open files left by a killed recorder and index them."""
        done: list[SegmentSummary] = []
        for path in self.open_files(camera_id):
            summary = self.recover_file(path)
            if summary is not None:
                done.append(summary)
        return done

    def recover_file(self, path: Path) -> SegmentSummary | None:
        """Repair one open file (to its last authenticated chunk), seal and index it, in
        one transaction; None when it held no chunk (it is removed)."""
        with Session(self.engine) as s, s.begin():
            summary = recover(path, self.keys.key_for_segment(s, None))
            if summary is None:
                log.warning("removed %s: killed before its first chunk, it held no footage", path.name)
                return None
            if index.segment_by_path(s, self.relpath(summary.path)) is None:
                self._insert(s, summary)
            log.info("recovered %s: %d packets kept", summary.path.name, summary.packets)
            return summary

    def reader(self, s: Session, ref: index.SegmentRef) -> SegmentReader:
        """A reader of an indexed segment (its key is looked up through ``s`` while
        reading).  A segment recorded by another node is fetched (still encrypted)
        through ``remote_fetch`` (set by the composition root from the ``[cluster]``
        config; docs/design/multi-node.md) and read in memory."""
        path, data = self._source(ref)
        return SegmentReader(path, self.keys.key_for_segment(s, ref.id), data=data)

    def detached_reader(self, ref: index.SegmentRef) -> SegmentReader:
        """As :meth:`reader`, with the key resolved now in a short transaction, so
        no database session is held while the footage is read."""
        path, data = self._source(ref)
        reader = SegmentReader(path, lambda _h: b"", data=data)
        with Session(self.engine) as s:
            key = self.keys.key_for_segment(s, ref.id)(reader.header)
        return SegmentReader(path, lambda _h: key, data=data)

    def _source(self, ref: index.SegmentRef) -> tuple[Path, bytes | None]:
        """Where a segment's bytes come from: this node's disk, else the archive (any node's segment
        once archived; its node may be down), else the recording node (``remote_fetch``)."""
        if ref.node_id == self.node_id:
            path = self.abspath(ref.path)
            if self.archive_fetch is None or path.is_file():
                return path, None
        if self.archive_fetch is not None:
            data = self.archive_fetch(ref)
            if data is not None:
                return Path(ref.path), data
            if ref.node_id == self.node_id:
                raise SegmentUnavailable(ref.path, "its file is not on this node's disk and it is not archived")
        if self.remote_fetch is None:
            raise SegmentUnavailable(ref.path, f"recorded on node {ref.node_id!r}, and no [cluster] peer is "
                                               "configured to fetch it from")
        return Path(ref.path), self.remote_fetch(ref)

    def read_ciphertext(self, ref: index.SegmentRef) -> Path:
        """The file of one of this node's segments, for a peer node (it stays encrypted)."""
        if ref.node_id != self.node_id:
            raise SegmentUnavailable(ref.path, f"recorded on node {ref.node_id!r}, not on {self.node_id!r}")
        return self.abspath(ref.path)
