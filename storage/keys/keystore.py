"""Day keys, hour keys, held segment keys, crypto-shredding and master key rotation.

The :class:`KeyStore` joins the master keyring (key file) and the index rows
that hold wrapped keys.  Methods take the caller's session and do not commit.

The hierarchy (docs/design/keys.md): the master key wraps day keys and held
segment keys; a day key wraps that camera-day's hour keys; a segment key is
derived from the hour key of the segment's start (format version 2) or, for
segments written before hour keys (version 1), from the day key.

Shredding sets a wrapped key to NULL (an hour key when its hour's footage is
gone, the day key, and with it its hour rows, when the day's is).  On SQLite ``secure_delete`` is on
(see ``storage.sql.db``) so the old bytes are overwritten in the database file;
:func:`storage.sql.db.scrub` checkpoints the WAL so no copy survives there either.
On PostgreSQL the old row version lives until VACUUM; the janitor runs
``VACUUM day_keys`` after a sweep that shredded (docs/design/keys.md).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.format.activity import activity_key
from storage.format.segment import (
    HOURS_PER_DAY,
    SegmentHeader,
    derive_segment_key,
    inspect_header,
    read_header,
)
from storage.keys import doorlog_keys
from storage.keys.keyring import (
    KEY_BYTES,
    KeyShredded,
    MasterKeyring,
    key_id,
    read_key_file,
    unwrap,
    wrap,
    write_key_file,
)
from storage.sql import activity as activity_store
from storage.sql import index
from storage.sql.models import DayKey

HOUR_US = index.HOUR_US


def _day_purpose(camera_id: str, day: str) -> str:
    return f"day:{camera_id}:{day}"


def _hour_purpose(camera_id: str, day: str, hour: int) -> str:
    return f"hour:{camera_id}:{day}:{hour:02d}"


def day_and_hour(t_us: int) -> tuple[str, int, int]:
    """The UTC day (YYYY-MM-DD), hour (0..23) and first microsecond of that hour for a time."""
    hour_start_us = t_us - t_us % HOUR_US
    t = datetime.fromtimestamp(hour_start_us // 1_000_000, UTC)
    return t.strftime("%Y-%m-%d"), t.hour, hour_start_us


def _segment_purpose(segment_id: int) -> str:
    return f"segment:{segment_id}"


@dataclass(frozen=True)
class WriteKeys:
    """What a writer needs for one camera-day: the day row's id (the header's ``key_id``) and the hour
    keys from the requested hour to the end of the day (later hours are made ahead, so recording can go on
    through an index outage until midnight, as it did under day keys).  Lives in memory only."""

    camera_id: str
    day: str
    key_id: int
    hour_keys: dict[int, bytes]


class KeyStore:
    def __init__(self, keyring: MasterKeyring, random_bytes: Callable[[int], bytes] = os.urandom):
        self.keyring = keyring
        self._random = random_bytes

    # -- day keys ------------------------------------------------------------------

    def day_key_for_write(self, s: Session, camera_id: str, day: str, *, now_us: int) -> tuple[int, bytes]:
        """The (key id, key) of ``camera_id``'s day key for ``day``; created on first use.  Refuses a
        shredded day: footage must never be written under a destroyed key."""
        return self._day_row_for_write(s, camera_id, day, now_us=now_us)[1:]

    def _day_row_for_write(self, s: Session, camera_id: str, day: str, *, now_us: int) -> tuple[DayKey, int, bytes]:
        row = index.day_key(s, camera_id, day)
        if row is None:
            key = self._random(KEY_BYTES)
            wrapped = wrap(self.keyring.current, key, _day_purpose(camera_id, day))
            row = index.insert_day_key(s, camera_id, day, wrapped=wrapped, master_id=self.keyring.current_id, now_us=now_us)
            return row, row.id, key
        if row.wrapped is None:
            raise KeyShredded(f"day key of camera {camera_id} for {day} was shredded; cannot record into that day")
        return row, row.id, unwrap(self.keyring.get(row.master_id), row.wrapped, _day_purpose(camera_id, day))

    def keys_for_write(self, s: Session, camera_id: str, start_us: int, *, now_us: int) -> WriteKeys:
        """The keys to encrypt footage of ``camera_id`` starting at ``start_us``: the hour key of that hour
        (and of every later hour of the day), each created on first use.  Refuses a shredded day or hour."""
        day, hour, hour_start_us = day_and_hour(start_us)
        row, day_id, day_key = self._day_row_for_write(s, camera_id, day, now_us=now_us)
        existing = {r.hour: r for r in index.hour_keys_of_day(s, day_id)}
        keys: dict[int, bytes] = {}
        for h in range(hour, HOURS_PER_DAY):
            purpose = _hour_purpose(camera_id, day, h)
            if (r := existing.get(h)) is None:
                keys[h] = self._random(KEY_BYTES)
                index.insert_hour_key(s, row, h, start_us=hour_start_us + (h - hour) * HOUR_US,
                                      wrapped=wrap(day_key, keys[h], purpose), now_us=now_us)
            elif r.wrapped is not None:
                keys[h] = unwrap(day_key, r.wrapped, purpose)
            elif h == hour:
                raise KeyShredded(f"hour key of camera {camera_id} for {day} {hour:02d}:00 was shredded; "
                                  "cannot record into that hour")
        return WriteKeys(camera_id, day, day_id, keys)

    def day_key(self, s: Session, key_id_: int) -> bytes:
        row = index.day_key_by_id(s, key_id_)
        if row is None:
            raise KeyShredded(f"day key {key_id_} is unknown to the index")
        if row.wrapped is None:
            raise KeyShredded(f"day key of camera {row.camera_id} for {row.day} was shredded")
        return unwrap(self.keyring.get(row.master_id), row.wrapped, _day_purpose(row.camera_id, row.day))

    def shred(self, s: Session, key_id: int, *, now_us: int) -> bool:
        """Destroy day key ``key_id`` and its hour keys (crypto-shredding).  False when it was
        already destroyed.  Segments under a hold keep their own keys (:meth:`keep_segment_key`)."""
        return index.shred_day_key(s, key_id, now_us=now_us)

    # -- segment keys ----------------------------------------------------------------

    def key_for_segment(self, s: Session, segment_id: int | None) -> Callable[[SegmentHeader], bytes]:
        """A ``key_for`` callback for :class:`storage.format.segment.SegmentReader`: a held
        segment's own key if it has one, otherwise derived from the day key."""

        def key_for(header: SegmentHeader) -> bytes:
            if segment_id is not None and (held := index.segment_key(s, segment_id)) is not None:
                return unwrap(self.keyring.get(held.master_id), held.wrapped, _segment_purpose(segment_id))
            return self._derive(s, header)

        return key_for

    def _derive(self, s: Session, header: SegmentHeader) -> bytes:
        """A segment's key from the index's keys: from its hour key (version 2) or its day key (version 1)."""
        day_key = self.day_key(s, header.key_id)
        if header.hour is None:
            return derive_segment_key(day_key, header.salt, header.raw)
        return derive_segment_key(self.hour_key(s, header.key_id, header.hour, day_key), header.salt, header.raw)

    def hour_key(self, s: Session, day_key_id: int, hour: int, day_key: bytes) -> bytes:
        row = index.hour_key(s, day_key_id, hour)
        if row is None:
            raise KeyShredded(f"hour key {hour:02d} of day key {day_key_id} is unknown to the index")
        day = index.day_key_by_id(s, day_key_id)
        if row.wrapped is None:
            raise KeyShredded(f"hour key of camera {day.camera_id} for {day.day} {hour:02d}:00 was shredded")
        return unwrap(day_key, row.wrapped, _hour_purpose(day.camera_id, day.day, hour))

    def activity_keys(self, s: Session, key_ids: set[int]) -> dict[tuple[int, int], bytes]:
        """(day key id, hour) -> the activity-record key (storage/format/activity.py) of every hour of the
        given day keys whose hour and day keys still exist; shredded hours are absent.  One query."""
        out: dict[tuple[int, int], bytes] = {}
        day_keys: dict[int, bytes] = {}
        for (day_id, hour), w in activity_store.wrapped_hour_keys(s, key_ids).items():
            if w.day_wrapped is None or w.hour_wrapped is None:
                continue
            if day_id not in day_keys:
                day_keys[day_id] = unwrap(self.keyring.get(w.master_id), w.day_wrapped, _day_purpose(w.camera_id, w.day))
            hour_key = unwrap(day_keys[day_id], w.hour_wrapped, _hour_purpose(w.camera_id, w.day, hour))
            out[(day_id, hour)] = activity_key(hour_key, w.camera_id, w.day, hour)
        return out

    def shred_hour(self, s: Session, day_key_id: int, hour: int, *, now_us: int) -> bool:
        """Destroy one hour key (the janitor's, once its hour's footage is gone).  False when it was already
        destroyed.  Held segments of that hour keep their own keys (:meth:`keep_segment_key`)."""
        return index.shred_hour_key(s, day_key_id, hour, now_us=now_us)

    def keep_segment_key(self, s: Session, segment_id: int, segment_file: Path,
                         header_bytes: Callable[[], bytes | None] | None = None) -> None:
        """Give a held segment its own wrapped key so shredding its day spares it.  ``header_bytes``:
        where the segment's bytes come from when its file is not on this disk (the archive)."""
        if index.segment_key(s, segment_id) is not None:
            return
        data = header_bytes() if header_bytes is not None and not segment_file.is_file() else None
        header = read_header(io.BytesIO(data), segment_file) if data is not None else inspect_header(segment_file)
        seg_key = self._derive(s, header)
        wrapped = wrap(self.keyring.current, seg_key, _segment_purpose(segment_id))
        index.put_segment_key(s, segment_id, wrapped=wrapped, master_id=self.keyring.current_id)


def rotate_master_key(engine: Engine, key_file: Path, *,
                      also: Callable[[MasterKeyring, bytes, str], int] | None = None) -> tuple[str, str, int]:
    """Re-wrap every key under a fresh master key without touching footage.

    1. write the new key to ``KEY.new`` (0600, fsync);
    2. re-wrap all rows in one transaction;
    3. atomically rename ``KEY.new`` over ``KEY`` (the old key is gone).

    A crash after 1 or 2 leaves both files; :class:`MasterKeyring` loads both and
    every row names the key that wrapped it, so nothing becomes unreadable, and
    running the rotation again finishes it.  Door-log keys are re-wrapped in the same
    transaction.  Hour keys are wrapped by their day keys,
    not the master key, so they are not touched.  ``also(ring, new_key, new_id)`` re-wraps
    keys kept outside the index (export packages) before step 3 and returns how many.
    Returns (old id, new id, keys re-wrapped).
    """
    ring = MasterKeyring(key_file)
    pending = ring.pending_path
    new_key = read_key_file(pending) if pending.exists() else write_key_file(pending)
    new_id = key_id(new_key)
    count = 0
    with Session(engine) as s, s.begin():
        for kind, ident, wrapped, master_id in index.wrapped_keys(s):
            if master_id == new_id:
                continue
            purpose = _segment_purpose(ident) if kind == "segment" else None
            if purpose is None:
                row = index.day_key_by_id(s, ident)
                purpose = _day_purpose(row.camera_id, row.day)
            plain = unwrap(ring.get(master_id), wrapped, purpose)
            index.rewrap(s, kind, ident, wrap(new_key, plain, purpose), new_id)
            count += 1
        count += doorlog_keys.rewrap_all(s, ring, new_key, new_id)  # the door log's day and held keys
    if also is not None:
        count += also(ring, new_key, new_id)
    os.replace(pending, key_file)
    return ring.current_id, new_id, count
