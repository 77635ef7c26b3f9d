"""Activity levels over a span of one camera, from the segments' encrypted activity records.

:func:`levels` reads every segment overlapping the span with its record in one query, unwraps the hour keys
involved (one query, one unwrap per hour), and opens each record (one AES-GCM decryption per segment).  A
step's level is the highest level of the seconds (UTC seconds, wholly inside the span) whose middle lies in
the step, on the API's scale 0..100; a step with no recorded second is None.

Where a record cannot be opened its seconds are None: the hour key is shredded (retention ended: the
footage is gone too), or the segment has no record (recovered after a crash, or recorded before records
existed).  A held segment whose hour key is shredded keeps its own key; its levels are computed again from
its packets' sizes (decrypted in memory, never decoded) and kept in memory for the process's lifetime
(bounded), since decrypting a segment costs far more than opening a record.  The recomputing meter's
baseline starts at the first such segment of a request, so its first seconds read as still.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from storage.format import activity as record_format
from storage.format.segment import SegmentError
from storage.keys.keyring import KeyShredded
from storage.sql import activity as activity_store
from storage.sql import index
from vms.core.errors import DomainError, Kind
from vms.recording.activity import MAX_LEVEL, ActivityMeter

US = 1_000_000
MAX_STEPS = 200_000  # a day at one step per second fits twice
MAX_SEGMENT_US = 3_600_000_000  # the longest segment the index may hold (as playback)
HELD_CACHE_ENTRIES = 2048  # recomputed levels of held segments kept in memory


class HeldLevels:
    """Levels recomputed from held segments' packets (segment id -> levels), bounded, memory only."""

    def __init__(self, entries: int = HELD_CACHE_ENTRIES):
        self.entries = entries
        self._items: OrderedDict[int, list[int | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, segment_id: int) -> list[int | None] | None:
        with self._lock:
            return self._items.get(segment_id)

    def put(self, segment_id: int, levels: list[int | None]) -> None:
        with self._lock:
            self._items[segment_id] = levels
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


def check_steps(start_us: int, end_us: int, step_s: int) -> int:
    """How many steps; INVALID (422) for an empty span, a step under a second or too many steps."""
    if end_us <= start_us:
        raise DomainError(Kind.INVALID, "end: the end must be after the start")
    if step_s < 1:
        raise DomainError(Kind.INVALID, f"step_s: at least 1 (seconds), not {step_s}")
    n = -(-(end_us - start_us) // (step_s * US))
    if n > MAX_STEPS:
        raise DomainError(Kind.INVALID, f"step_s: {n} steps of {step_s} s over this span; at most {MAX_STEPS} "
                                        f"(use step_s of at least {-(-(end_us - start_us) // (MAX_STEPS * US))})")
    return n


def levels(app, camera_id: str, start_us: int, end_us: int, step_s: int,
           held: HeldLevels | None = None) -> list[int | None]:
    """One entry per step of ``step_s`` seconds from ``start_us``: 0..100, or None where nothing is known.
    The caller has checked the gate (:mod:`vms.finding.gate`)."""
    n = check_steps(start_us, end_us, step_s)
    step_us = step_s * US
    out: list[int] = [-1] * n
    with Session(app.engine) as s:
        rows = activity_store.rows(s, camera_id, start_us, end_us, max_segment_us=MAX_SEGMENT_US)
        keys = app.keys.activity_keys(s, {r.key_id for r in rows if r.record is not None})
    rows = [r for r in rows if r.status == "sealed"]
    meter = ActivityMeter()  # carried across held segments recomputed in this call (their baseline)
    for k, row in enumerate(rows):
        lv = _open(app, row, keys, held, meter)
        if not lv:
            continue
        first_s = row.start_us // US
        # the second a segment ends in is provisional when the next segment starts in it (that one gives it whole)
        cut = 1 if k + 1 < len(rows) and rows[k + 1].start_us // US == first_s + len(lv) - 1 else 0
        lo = max(0, -(-start_us // US) - first_s)  # the first second wholly inside the span
        hi = min(len(lv) - cut, end_us // US - first_s)  # one past the last
        for i in range(lo, hi):
            v = lv[i]
            if v is not None:
                j = ((first_s + i) * US + US // 2 - start_us) // step_us  # the step holding its middle
                if v > out[j]:
                    out[j] = v
    return [None if v < 0 else round(v * 100 / MAX_LEVEL) for v in out]


def _open(app, row: activity_store.ActivityRow, keys: dict, held: HeldLevels | None,
          meter: ActivityMeter) -> list[int | None] | None:
    hour = (row.start_us % 86_400_000_000) // 3_600_000_000
    key = keys.get((row.key_id, hour))
    if row.record is not None and key is not None:
        try:
            return record_format.open_record(key, row.start_us, row.record)
        except record_format.ActivityUnreadable:
            return None
    if not row.held:
        return None  # shredded (or never recorded): nothing to show
    if held is not None and (cached := held.get(row.segment_id)) is not None:
        return cached
    lv = _from_packets(app, row, meter)
    if lv is not None and held is not None:
        held.put(row.segment_id, lv)
    return lv


def _from_packets(app, row: activity_store.ActivityRow, meter: ActivityMeter) -> list[int | None] | None:
    """A held segment's levels from its packets' sizes (decrypted in memory with its own key), by a meter
    carried over from the previous held segment (a first segment's first seconds only set the baseline)."""
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, row.segment_id)
        if ref is None:
            return None
        try:
            reader = app.store.reader(s, ref)
            meter.start(reader.header.start_us)
            for p in reader.packets():
                meter.add(p.wall_us, len(p.data), p.keyframe)
            return meter.finish()
        except (FileNotFoundError, KeyShredded, SegmentError):
            return None
