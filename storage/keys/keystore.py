"""Day keys, held segment keys, crypto-shredding and master key rotation.

The :class:`KeyStore` joins the master keyring (key file) and the index rows
that hold wrapped keys.  Methods take the caller's session and do not commit.

Shredding sets the wrapped day key to NULL.  On SQLite ``secure_delete`` is on
(see ``storage.sql.db``) so the old bytes are overwritten in the database file;
:func:`storage.sql.db.scrub` checkpoints the WAL so no copy survives there either.
On PostgreSQL the old row version lives until VACUUM; the janitor runs
``VACUUM day_keys`` after a sweep that shredded (docs/design/keys.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.format.segment import SegmentHeader, derive_segment_key, inspect_header
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
from storage.sql import index


def _day_purpose(camera_id: str, day: str) -> str:
    return f"day:{camera_id}:{day}"


def _segment_purpose(segment_id: int) -> str:
    return f"segment:{segment_id}"


class KeyStore:
    def __init__(self, keyring: MasterKeyring, random_bytes: Callable[[int], bytes] = os.urandom):
        self.keyring = keyring
        self._random = random_bytes

    # -- day keys ------------------------------------------------------------------

    def day_key_for_write(self, s: Session, camera_id: str, day: str, *, now_us: int) -> tuple[int, bytes]:
        """The (key id, key) to encrypt new footage of ``camera_id`` on ``day``; created
        on first use.  Refuses a shredded day: footage must never be written under a
        destroyed key."""
        row = index.day_key(s, camera_id, day)
        if row is None:
            key = self._random(KEY_BYTES)
            wrapped = wrap(self.keyring.current, key, _day_purpose(camera_id, day))
            row = index.insert_day_key(s, camera_id, day, wrapped=wrapped, master_id=self.keyring.current_id, now_us=now_us)
            return row.id, key
        if row.wrapped is None:
            raise KeyShredded(f"day key of camera {camera_id} for {day} was shredded; cannot record into that day")
        return row.id, unwrap(self.keyring.get(row.master_id), row.wrapped, _day_purpose(camera_id, day))

    def day_key(self, s: Session, key_id_: int) -> bytes:
        row = index.day_key_by_id(s, key_id_)
        if row is None:
            raise KeyShredded(f"day key {key_id_} is unknown to the index")
        if row.wrapped is None:
            raise KeyShredded(f"day key of camera {row.camera_id} for {row.day} was shredded")
        return unwrap(self.keyring.get(row.master_id), row.wrapped, _day_purpose(row.camera_id, row.day))

    def shred(self, s: Session, key_id: int, *, now_us: int) -> bool:
        """Destroy day key ``key_id`` (crypto-shredding; the janitor's one way to do it).  False when it was
        already destroyed.  Segments under a hold keep their own keys (:meth:`keep_segment_key`)."""
        return index.shred_day_key(s, key_id, now_us=now_us)

    # -- segment keys ----------------------------------------------------------------

    def key_for_segment(self, s: Session, segment_id: int | None) -> Callable[[SegmentHeader], bytes]:
        """A ``key_for`` callback for :class:`storage.format.segment.SegmentReader`: a held
        segment's own key if it has one, otherwise derived from the day key."""

        def key_for(header: SegmentHeader) -> bytes:
            if segment_id is not None and (held := index.segment_key(s, segment_id)) is not None:
                return unwrap(self.keyring.get(held.master_id), held.wrapped, _segment_purpose(segment_id))
            return derive_segment_key(self.day_key(s, header.key_id), header.salt, header.raw)

        return key_for

    def keep_segment_key(self, s: Session, segment_id: int, segment_file: Path) -> None:
        """Give a held segment its own wrapped key so shredding its day spares it."""
        if index.segment_key(s, segment_id) is not None:
            return
        header = inspect_header(segment_file)
        seg_key = derive_segment_key(self.day_key(s, header.key_id), header.salt, header.raw)
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
    running the rotation again finishes it.  ``also(ring, new_key, new_id)`` re-wraps
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
    if also is not None:
        count += also(ring, new_key, new_id)
    os.replace(pending, key_file)
    return ring.current_id, new_id, count
