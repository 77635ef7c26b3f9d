"""Named queries of the archive tier: the upload queue and where each segment lives.

Every function takes an open Session and neither commits nor rolls back (the caller in
``vms.archive`` owns the transaction).  Times are UTC microseconds.  Rows: see
:class:`storage.sql.models.ArchiveObject`; a segment row's removal hands its object over to
deletion from the bucket in the same transaction (:func:`storage.sql.index.remove_segments`
calls :func:`expire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import delete, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from storage.sql.models import ArchiveObject, Segment


class QueueItem(NamedTuple):
    segment_id: int
    camera_id: str
    start_us: int
    end_us: int
    path: str
    object_key: str
    size_bytes: int
    attempts: int


class Location(NamedTuple):
    segment_id: int
    state: str
    local: bool
    held: bool
    object_key: str
    size_bytes: int

    @property
    def where(self) -> str:
        """``local``, ``archive`` or ``both``."""
        if self.state != "archived":
            return "local"
        return "both" if self.local else "archive"


class Counts(NamedTuple):
    state: str
    local: bool
    objects: int
    size_bytes: int
    oldest_us: int | None  # queued: oldest queued_us; expired: oldest next_try_us (when deletion became due)


def enqueue_sealed(s: Session, node_id: str, *, ended_before_us: int, key_prefix: str, now_us: int,
                   limit: int = 1000) -> int:
    """Queue this node's sealed segments that ended before ``ended_before_us`` and have no row yet.
    The object key is ``key_prefix + node_id + '/' + path``.  Returns how many were queued.  Looks
    first (a read; an idle queue costs no write transaction), then inserts."""
    seg = Segment.__table__.c
    ids = list(s.scalars(
        select(seg.id).where(seg.node_id == node_id, seg.status == "sealed", seg.end_us <= ended_before_us,
                             ~exists().where(ArchiveObject.segment_id == seg.id))
        .order_by(seg.start_us).limit(limit)))
    if not ids:
        return 0
    rows = select(seg.id, literal(node_id), literal(f"{key_prefix}{node_id}/") + seg.path, literal("queued"),
                  seg.size_bytes, literal(now_us), literal(now_us)).where(seg.id.in_(ids))
    cols = ["segment_id", "node_id", "object_key", "state", "size_bytes", "next_try_us", "queued_us"]
    return len(s.execute(insert(ArchiveObject).from_select(cols, rows).returning(ArchiveObject.segment_id)).all())


def due(s: Session, node_id: str, now_us: int, limit: int) -> list[QueueItem]:
    """Queued uploads whose next try is due, oldest segment first."""
    a, seg = ArchiveObject.__table__.c, Segment.__table__.c
    q = (select(a.segment_id, seg.camera_id, seg.start_us, seg.end_us, seg.path, a.object_key, a.size_bytes,
                a.attempts)
         .join_from(ArchiveObject.__table__, Segment.__table__, seg.id == a.segment_id)
         .where(a.node_id == node_id, a.state == "queued", a.next_try_us <= now_us, seg.status == "sealed")
         .order_by(a.next_try_us, seg.start_us).limit(limit))
    return [QueueItem(*r) for r in s.execute(q)]


def mark_archived(s: Session, segment_id: int, *, held: bool, now_us: int) -> bool:
    """The upload of a still-queued row succeeded.  False when the row is no longer queued (the segment
    was deleted meanwhile: the caller then deletes the object it just made)."""
    n = s.execute(update(ArchiveObject).where(ArchiveObject.segment_id == segment_id, ArchiveObject.state == "queued")
                  .values(state="archived", held=held, archived_us=now_us, last_error=None)).rowcount
    return bool(n)


def mark_failed(s: Session, segment_id: int, *, attempts: int, next_try_us: int, error: str) -> None:
    s.execute(update(ArchiveObject).where(ArchiveObject.segment_id == segment_id)
              .values(attempts=attempts, next_try_us=next_try_us, last_error=error[:300]))


def location(s: Session, segment_id: int) -> Location | None:
    a = ArchiveObject.__table__.c
    row = s.execute(select(a.segment_id, a.state, a.local, a.held, a.object_key, a.size_bytes)
                    .where(a.segment_id == segment_id)).one_or_none()
    return None if row is None else Location(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5])


def archive_only(s: Session, segment_ids: Iterable[int]) -> set[int]:
    """Those of ``segment_ids`` whose only copy is in the archive (the local file was removed)."""
    ids = list(set(segment_ids))
    if not ids:
        return set()
    a = ArchiveObject.__table__.c
    return set(s.scalars(select(a.segment_id).where(a.segment_id.in_(ids), a.state == "archived", a.local.is_(False))))


def local_copies_due(s: Session, node_id: str, *, ended_before_us: int, limit: int) -> list[tuple[int, str]]:
    """(segment id, path) of archived segments still on this node's disk that ended before the cutoff."""
    a, seg = ArchiveObject.__table__.c, Segment.__table__.c
    q = (select(seg.id, seg.path).join_from(ArchiveObject.__table__, Segment.__table__, seg.id == a.segment_id)
         .where(a.node_id == node_id, a.state == "archived", a.local.is_(True), seg.status == "sealed",
                seg.end_us <= ended_before_us)
         .order_by(seg.start_us).limit(limit))
    return [(r[0], r[1]) for r in s.execute(q)]


def mark_local_gone(s: Session, segment_ids: Sequence[int]) -> None:
    if segment_ids:
        s.execute(update(ArchiveObject).where(ArchiveObject.segment_id.in_(list(segment_ids)),
                                              ArchiveObject.state == "archived").values(local=False))


def expire(s: Session, segment_ids: Sequence[int]) -> None:
    """The segments' rows are being removed: their objects are to be deleted from the bucket (every
    version); queued uploads are dropped.  Called in the transaction that removes the rows."""
    if not segment_ids:
        return
    ids = list(segment_ids)
    s.execute(delete(ArchiveObject).where(ArchiveObject.segment_id.in_(ids), ArchiveObject.state == "queued"))
    s.execute(update(ArchiveObject).where(ArchiveObject.segment_id.in_(ids), ArchiveObject.state == "archived")
              .values(state="expired", attempts=0, next_try_us=0, last_error=None))


def expired_due(s: Session, node_id: str, now_us: int, limit: int) -> list[tuple[int, str, int]]:
    """(segment id, object key, attempts) of objects whose every version is to be deleted."""
    a = ArchiveObject.__table__.c
    q = (select(a.segment_id, a.object_key, a.attempts)
         .where(a.node_id == node_id, a.state == "expired", a.next_try_us <= now_us)
         .order_by(a.next_try_us).limit(limit))
    return [(r[0], r[1], r[2]) for r in s.execute(q)]


def forget(s: Session, segment_id: int) -> None:
    s.execute(delete(ArchiveObject).where(ArchiveObject.segment_id == segment_id, ArchiveObject.state == "expired"))


def unheld_in_spans(s: Session, node_id: str, spans: Iterable[tuple[str, int, int]], limit: int
                    ) -> list[tuple[int, str]]:
    """(segment id, object key) of archived, not yet held objects overlapping any (camera, start, end)."""
    a, seg = ArchiveObject.__table__.c, Segment.__table__.c
    out: list[tuple[int, str]] = []
    for camera_id, start_us, end_us in spans:
        q = (select(a.segment_id, a.object_key)
             .join_from(ArchiveObject.__table__, Segment.__table__, seg.id == a.segment_id)
             .where(a.node_id == node_id, a.state == "archived", a.held.is_(False), seg.camera_id == camera_id,
                    seg.start_us < end_us, seg.end_us > start_us).limit(limit))
        out += [(r[0], r[1]) for r in s.execute(q)]
    return out


def held_objects(s: Session, node_id: str) -> list[tuple[int, str, str, int, int]]:
    """(segment id, object key, camera, start, end) of objects with a legal hold set (or still expired
    and held: their segment row is gone, camera '' and times 0)."""
    a, seg = ArchiveObject.__table__.c, Segment.__table__.c
    q = (select(a.segment_id, a.object_key, func.coalesce(seg.camera_id, ""), func.coalesce(seg.start_us, 0),
                func.coalesce(seg.end_us, 0))
         .join_from(ArchiveObject.__table__, Segment.__table__, seg.id == a.segment_id, isouter=True)
         .where(a.node_id == node_id, a.held.is_(True)))
    return [tuple(r) for r in s.execute(q)]


def set_held(s: Session, segment_id: int, held: bool) -> None:
    s.execute(update(ArchiveObject).where(ArchiveObject.segment_id == segment_id).values(held=held))


def counts(s: Session, node_id: str | None = None) -> list[Counts]:
    a = ArchiveObject.__table__.c
    q = select(a.state, a.local, func.count(), func.coalesce(func.sum(a.size_bytes), 0),
               func.min(func.coalesce(a.archived_us, a.queued_us)))
    if node_id is not None:
        q = q.where(a.node_id == node_id)
    q = q.group_by(a.state, a.local)
    out = []
    for state, local, n, size, oldest in s.execute(q):
        if state in ("queued", "expired"):
            col = a.queued_us if state == "queued" else a.next_try_us
            oq = select(func.min(col)).where(a.state == state)
            oldest = s.scalar(oq.where(a.node_id == node_id) if node_id is not None else oq)
        out.append(Counts(state, bool(local), int(n), int(size), oldest))
    return out


def archived_keys(s: Session, node_id: str) -> dict[str, tuple[int, int]]:
    """object key -> (segment id, size) of every object the index says is in the bucket (this node)."""
    a = ArchiveObject.__table__.c
    q = select(a.object_key, a.segment_id, a.size_bytes).where(a.node_id == node_id, a.state == "archived")
    return {k: (i, n) for k, i, n in s.execute(q)}



def archive_only_paths(s: Session, camera_id: str, node_id: str) -> set[str]:
    """Paths of one camera's segments on one node whose local file was removed after archiving."""
    a, seg = ArchiveObject.__table__.c, Segment.__table__.c
    q = (select(seg.path).join_from(ArchiveObject.__table__, Segment.__table__, seg.id == a.segment_id)
         .where(seg.camera_id == camera_id, seg.node_id == node_id, a.state == "archived", a.local.is_(False)))
    return set(s.scalars(q))


def requeue(s: Session, segment_id: int) -> None:
    """Upload again (``vms check --repair`` of an object missing from the bucket)."""
    s.execute(update(ArchiveObject).where(ArchiveObject.segment_id == segment_id)
              .values(state="queued", local=True, attempts=0, next_try_us=0, last_error=None))
