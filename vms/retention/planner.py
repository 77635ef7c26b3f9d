"""What a sweep deletes and what it keeps, decided without I/O.

The janitor reads the index page by page (oldest first) and hands the rows here; the planner answers with
steps: :class:`Keep` a held segment (the executor gives it its own key, so its hour and day keys can still be shredded)
or :class:`Delete` a batch (the executor runs the crash-safe protocol of :mod:`vms.retention.deletion`).
:func:`age_cutoffs` says up to when each camera's footage has expired.  Pure functions of their inputs,
tested without disk, database or clock (tests/unit/test_retention_rules.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from storage.sql.index import SegmentRef
from vms.retention.rules import HoldIndex, cutoff_us


@dataclass(frozen=True)
class Keep:
    """A segment a hold covers: never deleted; it gets its own key."""

    ref: SegmentRef


@dataclass(frozen=True)
class Delete:
    """Segments to delete together (one marking transaction, one removal transaction)."""

    refs: tuple[SegmentRef, ...]

    @property
    def size_bytes(self) -> int:
        return sum(r.size_bytes for r in self.refs)


def evictions(refs: Iterable[SegmentRef], holds: HoldIndex, *, batch: int,
              need_bytes: int | None = None) -> Iterator[Keep | Delete]:
    """Steps for ``refs`` (oldest first): every unheld one deleted, in batches of at most ``batch``; with
    ``need_bytes``, only until that many bytes are freed (quota, disk watermark).  Held ones are kept."""
    doomed: list[SegmentRef] = []
    freed = 0
    for ref in refs:
        if holds and holds.covers(ref.camera_id, ref.start_us, ref.end_us):
            yield Keep(ref)
            continue
        doomed.append(ref)
        freed += ref.size_bytes
        if len(doomed) >= batch:
            yield Delete(tuple(doomed))
            doomed = []
        if need_bytes is not None and freed >= need_bytes:
            break
    if doomed:
        yield Delete(tuple(doomed))


def age_cutoffs(cameras: Iterable, now_us: int) -> list[tuple[str, int]]:
    """(camera id, start time before which its segments have expired) for cameras with ``camera_id`` and
    ``retain_days``."""
    return [(c.camera_id, cutoff_us(now_us, c.retain_days)) for c in cameras]
