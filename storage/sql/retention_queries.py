"""Named queries of the retention side (janitor, ``vms check``, retention report).

Like :mod:`storage.sql.index`, every function takes an open Session and neither
commits nor rolls back; the caller owns the transaction.  The one exception is
:func:`scrub_shredded_keys`, which takes the engine because ``VACUUM`` must run
outside a transaction.  Times are UTC microseconds, sizes bytes.

Cost notes (2.8 M segment rows; see bench/janitor.py):

* :func:`segments_page` walks the ``(camera_id, start_us)`` index from the
  oldest end and stops after ``limit`` rows, so "what has expired" costs what
  has expired, not what is stored.
* :func:`deleting_segments` compares ``status`` with a *literal* so that SQLite
  can use the partial index ``ix_segments_deleting`` (a bound parameter cannot
  prove the index's ``WHERE status = 'deleting'``).
* :func:`usage_after` reads only rows above an id (primary-key range), so a
  per-camera byte total can be kept up to date without summing every row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import (
    BigInteger,
    Engine,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import Session

from storage.sql.index import _SEG_COLS, HOUR_US, SegmentRef, _refs, hold_in_force
from storage.sql.models import (
    Camera,
    DayKey,
    DeletionRecord,
    Hold,
    HourKey,
    Segment,
    SegmentKey,
    ServiceState,
)

_SEALED = Segment.status == literal_column("'sealed'")
_DELETING = Segment.status == literal_column("'deleting'")


class HoldSpan(NamedTuple):
    camera_id: str
    start_us: int
    end_us: int


class DeletionRow(NamedTuple):
    swept_us: int
    camera_id: str
    start_us: int
    end_us: int
    segments: int
    size_bytes: int
    reason: str


class CameraRetention(NamedTuple):
    camera_id: str
    node_id: str
    retain_days: int
    removed_us: int | None


class KeyDay(NamedTuple):
    key_id: int
    camera_id: str
    day: str


class KeyHour(NamedTuple):
    key_id: int  # the day key's row (segments.key_id)
    hour: int
    camera_id: str
    start_us: int  # the hour's first microsecond


class FileRow(NamedTuple):
    id: int
    size_bytes: int
    status: str


# ---------------------------------------------------------------- cameras and holds


def camera_retention(s: Session) -> list[CameraRetention]:
    """Every camera the index knows, configured or removed, with the retention it has."""
    rows = s.execute(select(Camera.id, Camera.node_id, Camera.retain_days, Camera.removed_us).order_by(Camera.id))
    return [CameraRetention(*r) for r in rows]


def active_hold_spans(s: Session, now_us: int, grace_us: int) -> list[HoldSpan]:
    rows = s.execute(select(Hold.camera_id, Hold.start_us, Hold.end_us).where(hold_in_force(now_us, grace_us)))
    return [HoldSpan(*r) for r in rows]


# ---------------------------------------------------------------- segments to delete


def segments_page(
    s: Session, camera_id: str, node_id: str, *, max_start_us: int | None = None,
    after: tuple[int, int] | None = None, limit: int = 1000,
) -> list[SegmentRef]:
    """Sealed segments of one camera on one node, oldest first by (start_us, id).

    ``max_start_us``: only segments that started at or before it (the expiry
    question).  ``after``: continue after this (start_us, id), for paging past
    held segments."""
    q = select(*_SEG_COLS).where(Segment.camera_id == camera_id, Segment.node_id == node_id, _SEALED)
    if max_start_us is not None:
        q = q.where(Segment.start_us <= max_start_us)
    if after is not None:
        a_start, a_id = after
        q = q.where(Segment.start_us >= a_start, or_(Segment.start_us > a_start, Segment.id > a_id))
    return _refs(s, q.order_by(Segment.start_us, Segment.id).limit(limit))


def cameras_with_expired(s: Session, node_id: str, now_us: int, day_us: int) -> list[CameraRetention]:
    """Cameras (configured or removed) with at least one sealed segment of this node
    that started at or before ``now_us - retain_days * day_us``.  One statement: an
    index probe per camera from the oldest end, so an idle sweep costs what the
    number of cameras costs, not what is stored."""
    expired = (
        select(Segment.id)
        .where(Segment.camera_id == Camera.id, Segment.node_id == node_id, _SEALED,
               Segment.start_us <= now_us - cast(Camera.retain_days, BigInteger) * literal(day_us, BigInteger))
    )
    rows = s.execute(
        select(Camera.id, Camera.node_id, Camera.retain_days, Camera.removed_us)
        .where(exists(expired))
        .order_by(Camera.id)
    )
    return [CameraRetention(*r) for r in rows]


def deleting_segments(s: Session, node_id: str) -> list[SegmentRef]:
    """Rows marked for deletion whose deletion has not finished (uses the partial index)."""
    return _refs(s, select(*_SEG_COLS).where(_DELETING, Segment.node_id == node_id).order_by(Segment.id))


def has_segment_key(s: Session, segment_id: int) -> bool:
    return s.scalar(select(SegmentKey.segment_id).where(SegmentKey.segment_id == segment_id)) is not None


def segments_under(s: Session, node_id: str, prefix: str) -> list[SegmentRef]:
    """Segments of this node whose path starts with ``prefix`` (ending in '/'): a
    range scan of the unique path index, e.g. everything under ``CAM/DAY/``."""
    if not prefix.endswith("/"):
        raise ValueError("prefix must end with '/'")
    upper = prefix[:-1] + chr(ord("/") + 1)
    q = select(*_SEG_COLS).where(Segment.path >= prefix, Segment.path < upper, Segment.node_id == node_id)
    return _refs(s, q.order_by(Segment.path))


# ---------------------------------------------------------------- day keys to shred


def shreddable_day_keys(s: Session, node_id: str, *, before_day: str) -> list[KeyDay]:
    """Unshredded day keys of this node's cameras for days before ``before_day``
    (YYYY-MM-DD) that no segment needs any more: every segment still using the
    key (if any) has its own wrapped key.  One index probe per live day key."""
    needs_day_key = (
        select(Segment.id)
        .where(Segment.key_id == DayKey.id)
        .where(~exists().where(SegmentKey.segment_id == Segment.id))
    )
    rows = s.execute(
        select(DayKey.id, DayKey.camera_id, DayKey.day)
        .join(Camera, Camera.id == DayKey.camera_id)
        .where(Camera.node_id == node_id, DayKey.wrapped.is_not(None), DayKey.day < before_day)
        .where(~exists(needs_day_key))
        .order_by(DayKey.camera_id, DayKey.day)
    )
    return [KeyDay(*r) for r in rows]


def unneeded_day_keys(s: Session, key_ids: Iterable[int], *, before_day: str) -> list[KeyDay]:
    """Of ``key_ids``, the unshredded day keys of days before ``before_day`` that no
    segment needs any more (as :func:`shreddable_day_keys`, for the keys whose
    segments a sweep just deleted)."""
    key_ids = sorted(set(key_ids))
    if not key_ids:
        return []
    needs_day_key = (
        select(Segment.id)
        .where(Segment.key_id == DayKey.id)
        .where(~exists().where(SegmentKey.segment_id == Segment.id))
    )
    rows = s.execute(
        select(DayKey.id, DayKey.camera_id, DayKey.day)
        .where(DayKey.id.in_(key_ids), DayKey.wrapped.is_not(None), DayKey.day < before_day)
        .where(~exists(needs_day_key))
        .order_by(DayKey.camera_id, DayKey.day)
    )
    return [KeyDay(*r) for r in rows]


# ---------------------------------------------------------------- hour keys to shred


def _needs_hour_key():
    """A segment still needing the outer query's hour key: of its day key, started in its hour, without an own
    key.  A range probe of the ``(camera_id, start_us)`` index (at most an hour of one camera's segments).
    A version-1 segment of that hour (its day key from before hour keys) counts too: it keeps the hour key a
    little longer than needed, never shorter."""
    return (
        select(Segment.id)
        .where(Segment.camera_id == HourKey.camera_id, Segment.start_us >= HourKey.start_us,
               Segment.start_us < HourKey.start_us + HOUR_US, Segment.key_id == HourKey.day_key_id)
        .where(~exists().where(SegmentKey.segment_id == Segment.id))
    )


_HOUR_COLS = (HourKey.day_key_id, HourKey.hour, HourKey.camera_id, HourKey.start_us)


def shreddable_hour_keys(s: Session, node_id: str, *, ended_by_us: int) -> list[KeyHour]:
    """Unshredded hour keys of this node's cameras for hours that ended at or before ``ended_by_us`` and that
    no segment needs any more.  One probe per live hour key (the partial index ``ix_hour_keys_live``)."""
    rows = s.execute(
        select(*_HOUR_COLS)
        .join(Camera, Camera.id == HourKey.camera_id)
        .where(Camera.node_id == node_id, HourKey.wrapped.is_not(None), HourKey.start_us <= ended_by_us - HOUR_US)
        .where(~exists(_needs_hour_key()))
        .order_by(HourKey.camera_id, HourKey.start_us)
    )
    return [KeyHour(*r) for r in rows]


def unneeded_hour_keys(s: Session, hours: Iterable[tuple[int, int]], *, ended_by_us: int) -> list[KeyHour]:
    """Of ``hours`` ((day key id, hour start) of the segments a sweep just deleted), the unshredded hour keys
    of hours that ended at or before ``ended_by_us`` and that no segment needs any more."""
    hours = sorted(set(hours))
    out: list[KeyHour] = []
    for i in range(0, len(hours), 500):
        rows = s.execute(
            select(*_HOUR_COLS)
            .where(tuple_(HourKey.day_key_id, HourKey.start_us).in_(hours[i : i + 500]))
            .where(HourKey.wrapped.is_not(None), HourKey.start_us <= ended_by_us - HOUR_US)
            .where(~exists(_needs_hour_key()))
        )
        out += [KeyHour(*r) for r in rows]
    return sorted(out, key=lambda k: (k.camera_id, k.start_us))


def scrub_shredded_keys(engine: Engine) -> bool:
    """Remove old copies of shredded key bytes from the database's own files.

    SQLite: ``secure_delete`` already zeroes the freed record in the main file;
    a ``wal_checkpoint(TRUNCATE)`` copies the zeroed pages back and empties the
    WAL, which still holds the page images with the key.  Returns False when a
    reader kept the checkpoint from completing (the caller retries later).

    PostgreSQL: the UPDATE that shredded left the old row version in the heap;
    ``VACUUM day_keys, hour_keys`` (outside a transaction) reclaims it.  See
    docs/design/janitor.md for what this does and does not guarantee."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            conn.commit()
        return busy == 0
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM day_keys, hour_keys"))
    return True


# ---------------------------------------------------------------- usage (quota, report)


def usage_by_camera(s: Session, node_id: str | None = None) -> list[tuple[str, int, int, int]]:
    """Per camera: (camera_id, segments, bytes, highest segment id); all rows (a full scan)."""
    q = select(Segment.camera_id, func.count(), func.coalesce(func.sum(Segment.size_bytes), 0), func.max(Segment.id))
    if node_id is not None:
        q = q.where(Segment.node_id == node_id)
    rows = s.execute(q.group_by(Segment.camera_id).order_by(Segment.camera_id))
    return [(c, int(n), int(b), int(m)) for c, n, b, m in rows]


def usage_after(s: Session, node_id: str, after_id: int) -> list[tuple[str, int, int]]:
    """Per camera: (camera_id, bytes, highest id) of rows with id above ``after_id``."""
    rows = s.execute(
        select(Segment.camera_id, func.coalesce(func.sum(Segment.size_bytes), 0), func.max(Segment.id))
        .where(Segment.id > after_id, Segment.node_id == node_id)
        .group_by(Segment.camera_id)
    )
    return [(c, int(b), int(m)) for c, b, m in rows]


def oldest_start(s: Session, camera_id: str) -> int | None:
    """Start of the camera's oldest segment on any node (walks the index from the oldest end)."""
    return s.scalar(select(Segment.start_us).where(Segment.camera_id == camera_id).order_by(Segment.start_us).limit(1))


def held_segment_counts(s: Session, now_us: int, grace_us: int) -> dict[str, int]:
    """Per camera: how many segments overlap a hold in force."""
    active = hold_in_force(now_us, grace_us)
    rows = s.execute(
        select(Segment.camera_id, func.count(func.distinct(Segment.id)))
        .join(Hold, and_(Hold.camera_id == Segment.camera_id, Hold.start_us < Segment.end_us,
                         Hold.end_us > Segment.start_us))
        .where(active)
        .group_by(Segment.camera_id)
    )
    return {c: int(n) for c, n in rows}


def count_started_by(s: Session, camera_id: str, max_start_us: int) -> int:
    """How many segments of one camera (any node) started at or before ``max_start_us``."""
    q = select(func.count()).select_from(Segment).where(Segment.camera_id == camera_id, Segment.start_us <= max_start_us)
    return int(s.scalar(q) or 0)


def count_held_started_by(s: Session, camera_id: str, max_start_us: int, now_us: int, grace_us: int) -> int:
    """Of those, how many overlap a hold in force."""
    active = hold_in_force(now_us, grace_us)
    q = (
        select(func.count(func.distinct(Segment.id)))
        .join(Hold, and_(Hold.camera_id == Segment.camera_id, Hold.start_us < Segment.end_us,
                         Hold.end_us > Segment.start_us))
        .where(Segment.camera_id == camera_id, Segment.start_us <= max_start_us, active)
    )
    return int(s.scalar(q) or 0)


# ---------------------------------------------------------------- vms check


def segment_files(s: Session, camera_id: str, node_id: str) -> dict[str, FileRow]:
    """Path -> (id, size, status) of one camera's segments on one node."""
    rows = s.execute(
        select(Segment.path, Segment.id, Segment.size_bytes, Segment.status)
        .where(Segment.camera_id == camera_id, Segment.node_id == node_id)
    )
    return {p: FileRow(i, b, st) for p, i, b, st in rows}


# ---------------------------------------------------------------- deletion records


def add_deletion_records(s: Session, rows: Iterable[DeletionRow]) -> None:
    rows = [r._asdict() for r in rows]
    if rows:
        s.execute(insert(DeletionRecord), rows)


def deletion_records(s: Session, *, since_us: int = 0, camera_id: str | None = None, limit: int = 1000) -> list[DeletionRow]:
    q = select(
        DeletionRecord.swept_us, DeletionRecord.camera_id, DeletionRecord.start_us, DeletionRecord.end_us,
        DeletionRecord.segments, DeletionRecord.size_bytes, DeletionRecord.reason,
    ).where(DeletionRecord.swept_us >= since_us)
    if camera_id is not None:
        q = q.where(DeletionRecord.camera_id == camera_id)
    return [DeletionRow(*r) for r in s.execute(q.order_by(DeletionRecord.id).limit(limit))]


# ---------------------------------------------------------------- service state


def get_state(s: Session, name: str) -> dict | None:
    value = s.scalar(select(ServiceState.value).where(ServiceState.name == name))
    return json.loads(value) if value is not None else None


def put_state(s: Session, name: str, value: dict, *, now_us: int) -> None:
    """Upsert a small JSON fact (at most 2,000 characters)."""
    text_value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(text_value) > 2000:
        raise ValueError(f"service state {name!r} is too large ({len(text_value)} characters)")
    row = s.get(ServiceState, name)
    if row is None:
        s.add(ServiceState(name=name, value=text_value, updated_us=now_us))
    else:
        row.value, row.updated_us = text_value, now_us


def states_like(s: Session, prefix: str) -> dict[str, dict]:
    rows = s.execute(select(ServiceState.name, ServiceState.value).where(ServiceState.name.startswith(prefix)))
    return {n: json.loads(v) for n, v in rows}




class HeldBeyond(NamedTuple):
    """Footage older than a limit that a hold in force keeps: per hold, how much and since when."""

    hold_id: int
    camera_id: str
    ticket_id: int | None
    reason: str
    segments: int
    oldest_start_us: int


def held_beyond(s: Session, older_than_us: int, now_us: int, grace_us: int) -> list[HeldBeyond]:
    """Per hold in force: its segments that started before ``older_than_us`` (kept only because of it)."""
    rows = s.execute(
        select(Hold.id, Hold.camera_id, Hold.ticket_id, Hold.reason, func.count(Segment.id), func.min(Segment.start_us))
        .join(Segment, and_(Hold.camera_id == Segment.camera_id, Hold.start_us < Segment.end_us,
                            Hold.end_us > Segment.start_us))
        .where(hold_in_force(now_us, grace_us), Segment.start_us < older_than_us)
        .group_by(Hold.id, Hold.camera_id, Hold.ticket_id, Hold.reason)
        .order_by(Hold.id)
    )
    return [HeldBeyond(*r) for r in rows]
