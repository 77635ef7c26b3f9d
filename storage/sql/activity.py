"""Named queries for activity records (``segment_activity``) and the keys that open them.

The caller owns the transaction; nothing here commits.  Times are UTC microseconds.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql.models import DayKey, HourKey, Segment, SegmentActivity, SegmentKey


class ActivityRow(NamedTuple):
    """One segment overlapping a window, with its activity record (None: it has none)."""

    segment_id: int
    key_id: int
    start_us: int
    end_us: int
    status: str
    record: bytes | None
    held: bool  # has a key of its own (a legal hold): readable after its hour key is shredded


def put(s: Session, segment_id: int, record: bytes) -> None:
    s.add(SegmentActivity(segment_id=segment_id, record=record))


def rows(s: Session, camera_id: str, start_us: int, end_us: int, *, max_segment_us: int) -> list[ActivityRow]:
    """Segments of one camera overlapping [start_us, end_us) with their records, in time order (one query
    on the (camera_id, start_us) index)."""
    q = (
        select(Segment.id, Segment.key_id, Segment.start_us, Segment.end_us, Segment.status,
               SegmentActivity.record, SegmentKey.segment_id)
        .outerjoin(SegmentActivity, SegmentActivity.segment_id == Segment.id)
        .outerjoin(SegmentKey, SegmentKey.segment_id == Segment.id)
        .where(Segment.camera_id == camera_id, Segment.start_us >= start_us - max_segment_us,
               Segment.start_us < end_us, Segment.end_us > start_us)
        .order_by(Segment.start_us)
    )
    return [ActivityRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6] is not None) for r in s.connection().execute(q)]


class WrappedHourKey(NamedTuple):
    camera_id: str
    day: str
    hour: int
    day_wrapped: bytes | None  # None: the day key was shredded
    master_id: str
    hour_wrapped: bytes | None  # None: the hour key was shredded (or never made)


def wrapped_hour_keys(s: Session, key_ids: set[int]) -> dict[tuple[int, int], WrappedHourKey]:
    """(day key id, hour) -> the wrapped day and hour keys, for every hour of the given day keys."""
    if not key_ids:
        return {}
    q = (
        select(DayKey.id, DayKey.camera_id, DayKey.day, DayKey.wrapped, DayKey.master_id, HourKey.hour,
               HourKey.wrapped)
        .join(HourKey, HourKey.day_key_id == DayKey.id)
        .where(DayKey.id.in_(sorted(key_ids)))
    )
    return {(r[0], r[5]): WrappedHourKey(r[1], r[2], r[5], r[3], r[4], r[6]) for r in s.connection().execute(q)}
