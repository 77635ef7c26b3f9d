"""Named queries for handing a lost node's footage over to another node (``vms cluster adopt``).

Every function takes an open Session and neither commits nor rolls back: :mod:`vms.ops.adopt` runs the
whole hand-over in one transaction with its audit entry.  Times are UTC microseconds.

What a node owns is named by ``node_id`` in four tables: ``cameras`` (whose hour and day keys the node's
janitor shreds), ``segments`` (which it expires), ``camera_state`` (its recorder's last word) and
``archive_objects`` (its uploads, legal holds and deletions in the bucket).  Moving those four is the
whole hand-over; object keys in the bucket keep the lost node's prefix (they are stored per row).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import func, select, true, union, update
from sqlalchemy.orm import Session

from storage.sql.models import ArchiveObject, Camera, CameraState, Segment


class Footprint(NamedTuple):
    """What one node owns in the index."""

    cameras: list[str]
    segments: int
    size_bytes: int
    archived: int  # segments whose object is in the bucket (playable without the node)
    only_local: int  # segments that were only ever on the node's own disk
    only_local_bytes: int
    archive_rows: int  # rows of archive_objects of the node (queued, archived or expired)
    last_seen_us: int | None  # the newest sign of life: recorder state or segment end


def node_ids(s: Session) -> list[str]:
    """Every node the index names (cameras, segments, archive rows)."""
    q = union(select(Camera.node_id), select(Segment.node_id), select(ArchiveObject.node_id))
    return sorted(r[0] for r in s.execute(q))


def footprint(s: Session, node_id: str) -> Footprint:
    cameras = list(s.scalars(select(Camera.id).where(Camera.node_id == node_id).order_by(Camera.id)))
    n, size = s.execute(select(func.count(Segment.id), func.coalesce(func.sum(Segment.size_bytes), 0))
                        .where(Segment.node_id == node_id)).one()
    archived = s.scalar(select(func.count()).select_from(ArchiveObject)
                        .join(Segment, Segment.id == ArchiveObject.segment_id)
                        .where(Segment.node_id == node_id, ArchiveObject.state == "archived")) or 0
    local_n, local_size = s.execute(
        select(func.count(Segment.id), func.coalesce(func.sum(Segment.size_bytes), 0))
        .outerjoin(ArchiveObject, ArchiveObject.segment_id == Segment.id)
        .where(Segment.node_id == node_id, (ArchiveObject.state.is_(None)) | (ArchiveObject.state != "archived"))
    ).one()
    rows = s.scalar(select(func.count()).select_from(ArchiveObject).where(ArchiveObject.node_id == node_id)) or 0
    state_us = s.scalar(select(func.max(CameraState.updated_us)).where(CameraState.node_id == node_id))
    end_us = s.scalar(select(func.max(Segment.end_us)).where(Segment.node_id == node_id))
    seen = max((t for t in (state_us, end_us) if t is not None), default=None)
    return Footprint(cameras, int(n), int(size), int(archived), int(local_n), int(local_size), int(rows), seen)


def move_node(s: Session, from_node: str, to_node: str, *, now_us: int, configured: Iterable[str]) -> None:
    """Make ``to_node`` the owner of everything ``from_node`` owned.  Cameras that ``to_node``'s own
    configuration does not name become *removed* (``removed_us``, if not already): their footage stays
    under the retention they had until it expires, as for any camera taken out of a configuration.
    Archive rows lose ``local``: the lost node's disk is not this node's."""
    keep = set(configured)
    s.execute(update(Camera).where(Camera.node_id == from_node, Camera.removed_us.is_(None),
                                   Camera.id.not_in(keep) if keep else true())
              .values(removed_us=now_us))
    s.execute(update(Camera).where(Camera.node_id == from_node).values(node_id=to_node))
    s.execute(update(Segment).where(Segment.node_id == from_node).values(node_id=to_node))
    s.execute(update(CameraState).where(CameraState.node_id == from_node).values(node_id=to_node, online=False))
    s.execute(update(ArchiveObject).where(ArchiveObject.node_id == from_node).values(node_id=to_node, local=False))
