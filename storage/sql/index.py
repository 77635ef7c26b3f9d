"""Named queries on the index.  All SQL of the appliance lives in ``storage``.

Every function takes an open :class:`~sqlalchemy.orm.Session` and neither
commits nor rolls back: the caller (a service in ``vms``) owns the transaction.
Times are UTC microseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from storage.sql import archive_queries
from storage.sql.models import (
    Camera,
    CameraState,
    DayKey,
    Gap,
    Hold,
    HourKey,
    Segment,
    SegmentActivity,
    SegmentKey,
    Ticket,
    User,
)

HOUR_US = 3_600_000_000


class SegmentRef(NamedTuple):
    """A segment row as the domain needs it (a tuple: cheap to build by the thousand)."""

    id: int
    camera_id: str
    node_id: str
    key_id: int
    start_us: int
    end_us: int
    size_bytes: int
    packets: int
    path: str
    status: str
    recovered: bool


# Column order of SegmentRef; queries select these columns (not ORM objects) so a
# day's timeline (1,440 rows) is built without ORM overhead.
_SEG_COLS = (
    Segment.id, Segment.camera_id, Segment.node_id, Segment.key_id, Segment.start_us, Segment.end_us,
    Segment.size_bytes, Segment.packets, Segment.path, Segment.status, Segment.recovered,
)


def _refs(s: Session, query) -> list[SegmentRef]:
    # Core execution on the session's connection: no ORM result processing
    return [SegmentRef(*row[:10], bool(row[10])) for row in s.connection().execute(query).all()]


def _ref(row: Segment) -> SegmentRef:
    return SegmentRef(
        row.id, row.camera_id, row.node_id, row.key_id, row.start_us, row.end_us,
        row.size_bytes, row.packets, row.path, row.status, bool(row.recovered),
    )


# ---------------------------------------------------------------- cameras


def upsert_camera(s: Session, camera_id: str, *, node_id: str, retain_days: int, now_us: int,
                  name: str | None = None, place: str = "", enabled: bool = True) -> None:
    row = s.get(Camera, camera_id)
    if row is None:
        s.add(Camera(id=camera_id, node_id=node_id, created_us=now_us, retain_days=retain_days, name=name,
                     place=place, enabled=enabled))
    else:
        row.node_id, row.retain_days, row.removed_us = node_id, retain_days, None
        row.name, row.place, row.enabled = name, place, enabled


def mark_cameras_removed(s: Session, present: Iterable[str], *, node_id: str, now_us: int) -> list[str]:
    """Cameras of this node that are no longer configured; their footage keeps the
    retention it had.  Returns the ids newly marked."""
    present = list(present)
    ids = s.scalars(
        select(Camera.id).where(Camera.node_id == node_id, Camera.removed_us.is_(None), Camera.id.not_in(present))
    ).all()
    if ids:
        s.execute(update(Camera).where(Camera.id.in_(ids)).values(removed_us=now_us))
    return list(ids)


def cameras(s: Session) -> list[Camera]:
    return list(s.scalars(select(Camera).order_by(Camera.id)))


# ---------------------------------------------------------------- day keys


def day_key(s: Session, camera_id: str, day: str) -> DayKey | None:
    return s.scalars(select(DayKey).where(DayKey.camera_id == camera_id, DayKey.day == day)).one_or_none()


def day_key_by_id(s: Session, key_id: int) -> DayKey | None:
    return s.get(DayKey, key_id)


def insert_day_key(s: Session, camera_id: str, day: str, *, wrapped: bytes, master_id: str, now_us: int) -> DayKey:
    row = DayKey(camera_id=camera_id, day=day, wrapped=wrapped, master_id=master_id, created_us=now_us)
    s.add(row)
    s.flush()
    return row


def hour_key(s: Session, day_key_id: int, hour: int) -> HourKey | None:
    return s.get(HourKey, (day_key_id, hour))


def hour_keys_of_day(s: Session, day_key_id: int) -> list[HourKey]:
    return list(s.scalars(select(HourKey).where(HourKey.day_key_id == day_key_id).order_by(HourKey.hour)))


def insert_hour_key(s: Session, day: DayKey, hour: int, *, start_us: int, wrapped: bytes, now_us: int) -> HourKey:
    row = HourKey(day_key_id=day.id, hour=hour, camera_id=day.camera_id, start_us=start_us, wrapped=wrapped,
                  created_us=now_us)
    s.add(row)
    s.flush()
    return row


def readable_segments(s: Session, segment_ids) -> set[int]:
    """Those of ``segment_ids`` that are still sealed and can still be decrypted: a held segment's own key,
    or a day key that has not been shredded and, where the segment's hour has a key, that hour key too."""
    ids = list(set(segment_ids))
    if not ids:
        return set()
    seg, sk, dk, hk = Segment.__table__.c, SegmentKey.__table__.c, DayKey.__table__.c, HourKey.__table__.c
    q = (select(seg.id)
         .join_from(Segment.__table__, DayKey.__table__, dk.id == seg.key_id)
         .outerjoin(SegmentKey.__table__, sk.segment_id == seg.id)
         .outerjoin(HourKey.__table__, and_(hk.day_key_id == seg.key_id, hk.start_us <= seg.start_us,
                                            hk.start_us > seg.start_us - HOUR_US))
         .where(seg.id.in_(ids), seg.status == "sealed",
                or_(sk.segment_id.is_not(None),
                    and_(dk.wrapped.is_not(None), or_(hk.day_key_id.is_(None), hk.wrapped.is_not(None))))))
    return set(s.connection().execute(q).scalars())


def shred_day_key(s: Session, key_id: int, *, now_us: int) -> bool:
    """Overwrite the wrapped day key with NULL and delete its hour keys (they were wrapped by it, and the
    day row keeps the record).  Returns False if the day key was already shredded."""
    result = s.execute(
        update(DayKey).where(DayKey.id == key_id, DayKey.wrapped.is_not(None)).values(wrapped=None, shredded_us=now_us)
    )
    s.execute(delete(HourKey).where(HourKey.day_key_id == key_id))
    return result.rowcount > 0


def shred_hour_key(s: Session, day_key_id: int, hour: int, *, now_us: int) -> bool:
    """Overwrite one wrapped hour key with NULL.  Returns False if already shredded (or never made)."""
    result = s.execute(
        update(HourKey).where(HourKey.day_key_id == day_key_id, HourKey.hour == hour, HourKey.wrapped.is_not(None))
        .values(wrapped=None, shredded_us=now_us)
    )
    return result.rowcount > 0


def wrapped_keys(s: Session) -> list[tuple[str, int, bytes, str]]:
    """Every wrapped key: (kind, id, wrapped, master_id); kind is 'day' or 'segment'."""
    out = [("day", r.id, r.wrapped, r.master_id) for r in s.scalars(select(DayKey).where(DayKey.wrapped.is_not(None)))]
    out += [("segment", r.segment_id, r.wrapped, r.master_id) for r in s.scalars(select(SegmentKey))]
    return out


def rewrap(s: Session, kind: str, ident: int, wrapped: bytes, master_id: str) -> None:
    if kind == "day":
        s.execute(update(DayKey).where(DayKey.id == ident).values(wrapped=wrapped, master_id=master_id))
    else:
        s.execute(update(SegmentKey).where(SegmentKey.segment_id == ident).values(wrapped=wrapped, master_id=master_id))


# ---------------------------------------------------------------- segments


def add_segment(
    s: Session, *, camera_id: str, node_id: str, key_id: int, start_us: int, end_us: int,
    size_bytes: int, packets: int, path: str, recovered: bool = False,
) -> int:
    row = Segment(
        camera_id=camera_id, node_id=node_id, key_id=key_id, start_us=start_us, end_us=end_us,
        size_bytes=size_bytes, packets=packets, path=path, status="sealed", recovered=recovered,
    )
    s.add(row)
    s.flush()
    return row.id


def segment_by_path(s: Session, path: str) -> SegmentRef | None:
    row = s.scalars(select(Segment).where(Segment.path == path)).one_or_none()
    return _ref(row) if row else None


def segment_by_id(s: Session, segment_id: int) -> SegmentRef | None:
    row = s.get(Segment, segment_id)
    return _ref(row) if row else None


def timeline(s: Session, camera_id: str, start_us: int, end_us: int, *, max_segment_us: int) -> list[SegmentRef]:
    """Segments of one camera overlapping [start_us, end_us), in time order.

    ``max_segment_us`` bounds how far before ``start_us`` an overlapping segment
    can begin, which keeps the scan on the (camera_id, start_us) index."""
    return _refs(
        s,
        select(*_SEG_COLS)
        .where(
            Segment.camera_id == camera_id,
            Segment.start_us >= start_us - max_segment_us,
            Segment.start_us < end_us,
            Segment.end_us > start_us,
        )
        .order_by(Segment.start_us),
    )


def expired_segments(s: Session, camera_id: str, cutoff_us: int, *, limit: int = 1000) -> list[SegmentRef]:
    """Segments of one camera that ended at or before ``cutoff_us``, oldest first.
    Walks the (camera_id, start_us) index from the oldest end, so the cost grows
    with what has expired, not with what is stored."""
    return _refs(
        s,
        select(*_SEG_COLS)
        .where(Segment.camera_id == camera_id, Segment.start_us <= cutoff_us, Segment.end_us <= cutoff_us)
        .order_by(Segment.start_us)
        .limit(limit),
    )


def mark_deleting(s: Session, ids: Sequence[int]) -> None:
    if ids:
        s.execute(update(Segment).where(Segment.id.in_(ids)).values(status="deleting"))


def remove_segments(s: Session, ids: Sequence[int]) -> None:
    """Remove the rows (and held segments' own keys); archived copies become due for deletion from the bucket."""
    if ids:
        archive_queries.expire(s, ids)
        s.execute(delete(SegmentKey).where(SegmentKey.segment_id.in_(ids)))
        s.execute(delete(SegmentActivity).where(SegmentActivity.segment_id.in_(ids)))
        s.execute(delete(Segment).where(Segment.id.in_(ids)))


# ---------------------------------------------------------------- segment keys (holds)


def segment_key(s: Session, segment_id: int) -> SegmentKey | None:
    return s.get(SegmentKey, segment_id)


def put_segment_key(s: Session, segment_id: int, *, wrapped: bytes, master_id: str) -> None:
    if s.get(SegmentKey, segment_id) is None:
        s.add(SegmentKey(segment_id=segment_id, wrapped=wrapped, master_id=master_id))


# ---------------------------------------------------------------- holds


def add_hold(
    s: Session, *, camera_id: str, start_us: int, end_us: int, reason: str, now_us: int, ticket_id: int | None = None,
) -> int:
    row = Hold(camera_id=camera_id, start_us=start_us, end_us=end_us, reason=reason, ticket_id=ticket_id, created_us=now_us)
    s.add(row)
    s.flush()
    return row.id


def release_hold(s: Session, hold_id: int, *, at_us: int) -> None:
    s.execute(update(Hold).where(Hold.id == hold_id).values(released_us=at_us))


def hold_in_force(now_us: int, grace_us: int):
    """SQL for "this hold still protects footage at ``now_us``": not released yet, and, for a ticket's hold,
    neither the ticket's access window nor its closing lies more than ``grace_us`` in the past.  The second
    part needs no process to act when the window ends, so holds end on time with no API running; it mirrors
    :func:`vms.retention.rules.hold_end_us`."""
    ticket_over = exists().where(Ticket.id == Hold.ticket_id, or_(
        and_(Ticket.access_until_us.is_not(None), Ticket.access_until_us + grace_us <= now_us),
        and_(Ticket.closed_us.is_not(None), Ticket.closed_us + grace_us <= now_us)))
    return and_(or_(Hold.released_us.is_(None), Hold.released_us > now_us), ~ticket_over)


def active_holds(s: Session, now_us: int, grace_us: int, camera_id: str | None = None) -> list[Hold]:
    q = select(Hold).where(hold_in_force(now_us, grace_us))
    if camera_id is not None:
        q = q.where(Hold.camera_id == camera_id)
    return list(s.scalars(q))


def held_segment_ids(s: Session, now_us: int, ids: Sequence[int], grace_us: int) -> set[int]:
    """Which of ``ids`` overlap a hold in force."""
    if not ids:
        return set()
    active = hold_in_force(now_us, grace_us)
    rows = s.execute(
        select(Segment.id)
        .join(Hold, and_(Hold.camera_id == Segment.camera_id, Hold.start_us < Segment.end_us, Hold.end_us > Segment.start_us))
        .where(Segment.id.in_(list(ids)), active)
    )
    return {r[0] for r in rows}


# ---------------------------------------------------------------- users


def add_user(s: Session, name: str, *, role: str, password_hash: str, now_us: int, must_change: bool = True) -> int:
    row = User(name=name, role=role, password_hash=password_hash, created_us=now_us, must_change_password=must_change)
    s.add(row)
    s.flush()
    return row.id


def user_by_name(s: Session, name: str) -> User | None:
    return s.scalars(select(User).where(User.name == name)).one_or_none()


# ---------------------------------------------------------------- camera state and gaps


def save_camera_state(s: Session, camera_id: str, *, node_id: str, now_us: int, **fields) -> None:
    """Upsert the live state of one camera (fields of storage.sql.models.CameraState)."""
    row = s.get(CameraState, camera_id)
    if row is None:
        row = CameraState(camera_id=camera_id, node_id=node_id, updated_us=now_us)
        s.add(row)
    row.node_id, row.updated_us = node_id, now_us
    for key, value in fields.items():
        setattr(row, key, value)


def load_camera_states(s: Session, camera_ids: Sequence[str]) -> list[CameraState]:
    """The state rows of these cameras, loaded into ``s`` (keep the list while updating them in bulk)."""
    if not camera_ids:
        return []
    return list(s.scalars(select(CameraState).where(CameraState.camera_id.in_(list(camera_ids)))))


def camera_states(s: Session) -> list[CameraState]:
    return list(s.scalars(select(CameraState).order_by(CameraState.camera_id)))


def open_gap(s: Session, camera_id: str, start_us: int, reason: str) -> int:
    """Start a gap unless one is already open for the camera; returns its id."""
    existing = s.scalars(select(Gap).where(Gap.camera_id == camera_id, Gap.end_us.is_(None))).first()
    if existing is not None:
        return existing.id
    row = Gap(camera_id=camera_id, start_us=start_us, reason=reason[:200])
    s.add(row)
    s.flush()
    return row.id


def close_gap(s: Session, camera_id: str, end_us: int) -> bool:
    result = s.execute(
        update(Gap).where(Gap.camera_id == camera_id, Gap.end_us.is_(None)).values(end_us=end_us)
    )
    return result.rowcount > 0


def gaps(s: Session, camera_id: str, start_us: int, end_us: int) -> list[Gap]:
    """Gaps of one camera overlapping [start_us, end_us) (an open gap counts as ongoing)."""
    return list(
        s.scalars(
            select(Gap)
            .where(Gap.camera_id == camera_id, Gap.start_us < end_us, or_(Gap.end_us.is_(None), Gap.end_us > start_us))
            .order_by(Gap.start_us)
        )
    )


def last_segment_end(s: Session, camera_id: str) -> int | None:
    """End of the camera's newest segment (walks the index from the newest end)."""
    return s.scalar(
        select(Segment.end_us).where(Segment.camera_id == camera_id).order_by(Segment.start_us.desc()).limit(1)
    )


def camera_names(s: Session) -> list[tuple[str, str | None, str]]:
    """``(id, name, place)`` of every camera the index knows (removed ones too: old tickets name them)."""
    return [tuple(r) for r in s.execute(select(Camera.id, Camera.name, Camera.place).order_by(Camera.id))]


def last_closed_gaps(s: Session) -> dict[str, Gap]:
    """Each camera's newest gap that has ended (one query)."""
    newest = (select(Gap.camera_id, func.max(Gap.start_us).label("start_us"))
              .where(Gap.end_us.is_not(None)).group_by(Gap.camera_id).subquery())
    rows = s.scalars(select(Gap).join(newest, (Gap.camera_id == newest.c.camera_id)
                                      & (Gap.start_us == newest.c.start_us)).where(Gap.end_us.is_not(None)))
    return {g.camera_id: g for g in rows}
