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

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from storage.format import activity as record_format
from storage.format.activity import NONE
from storage.format.segment import SegmentError
from storage.keys.keyring import KeyShredded
from storage.sql import activity as activity_store
from storage.sql import index
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
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
        raise DomainError(Kind.INVALID, "end: the end must be after the start", key=N_("window.reversed"))
    if step_s < 1:
        raise DomainError(Kind.INVALID, f"step_s: at least 1 (seconds), not {step_s}",
                          key=N_("timeline.err.step"), params={"step": step_s})
    n = -(-(end_us - start_us) // (step_s * US))
    if n > MAX_STEPS:
        raise DomainError(Kind.INVALID, f"step_s: {n} steps of {step_s} s over this span; at most {MAX_STEPS} "
                                        f"(use step_s of at least {-(-(end_us - start_us) // (MAX_STEPS * US))})",
                                        key=N_("timeline.err.steps"),
                                        params={"n": n, "max": MAX_STEPS, "step": step_s, "least": -(-(end_us - start_us) // (MAX_STEPS * US))})
    return n


def levels(app, camera_id: str, start_us: int, end_us: int, step_s: int,
           held: HeldLevels | None = None) -> list[int | None]:
    """One entry per step of ``step_s`` seconds from ``start_us``: 0..100, or None where nothing is known.
    The caller has checked the gate (:mod:`vms.finding.gate`)."""
    n = check_steps(start_us, end_us, step_s)
    with Session(app.engine) as s:
        rows = activity_store.rows(s, camera_id, start_us, end_us, max_segment_us=MAX_SEGMENT_US)
        keys = app.keys.activity_keys(s, {r.key_id for r in rows if r.record is not None})
    aeads = {k: AESGCM(v) for k, v in keys.items()}
    meter = ActivityMeter()  # carried across held segments recomputed in this call (their baseline)
    firsts, chunks = [], []
    for row in rows:
        if row.status != "sealed":
            continue
        packed = _open(app, row, aeads, held, meter)
        if packed:
            firsts.append(row.start_us // US)
            chunks.append(packed)
    out = np.full(n, -1, np.int16)
    if chunks:
        nib = np.frombuffer(b"".join(chunks), np.uint8)
        vals = np.empty(2 * len(nib), np.uint8)
        vals[0::2], vals[1::2] = nib >> 4, nib & 0x0F
        lens = 2 * np.array([len(c) for c in chunks])
        starts = np.cumsum(lens) - lens
        secs = np.repeat(np.array(firsts, np.int64), lens) + (np.arange(len(vals)) - np.repeat(starts, lens))
        real = vals != NONE
        secs, vals = secs[real], vals[real]
        # a second two records give (a segment ended and the next began in it): the later one's, given whole
        last = len(secs) - 1 - np.unique(secs[::-1], return_index=True)[1]
        secs, vals = secs[last], vals[last]
        keep = (secs * US >= start_us) & ((secs + 1) * US <= end_us)  # seconds wholly inside the span
        steps = (secs[keep] * US + US // 2 - start_us) // (step_s * US)  # the step holding the second's middle
        np.maximum.at(out, steps, vals[keep].astype(np.int16))
    return [None if v < 0 else round(v * 100 / MAX_LEVEL) for v in out.tolist()]


def _open(app, row: activity_store.ActivityRow, aeads: dict, held: HeldLevels | None,
          meter: ActivityMeter) -> bytes | None:
    """The row's packed levels (storage/format/activity.py), or None when they cannot be had."""
    hour = (row.start_us % 86_400_000_000) // 3_600_000_000
    aead = aeads.get((row.key_id, hour))
    if row.record is not None and aead is not None:
        try:
            return record_format.open_packed(aead, row.start_us, row.record)
        except record_format.ActivityUnreadable:
            return None
    if not row.held:
        return None  # shredded (or never recorded): nothing to show
    lv = held.get(row.segment_id) if held is not None else None
    if lv is None:
        lv = _from_packets(app, row, meter)
        if lv is not None and held is not None:
            held.put(row.segment_id, lv)
    return None if lv is None else record_format.pack_levels(lv)


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
