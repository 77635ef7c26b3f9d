"""Activity records: a segment's per-second activity levels, encrypted under its hour key.

Spec: ``docs/segment-format.md`` ("Activity records"); vectors ``tests/vectors/activity-*``.

An activity record sits beside its segment (in the index, one row per segment) and describes when
something moved, so it is footage: it is encrypted under a key derived from the segment's hour key and
becomes noise when that hour key is destroyed, exactly as the segment file does.

* One level per second from the second of the segment's ``start_us`` on: 0..14 (0 still, 14 the most
  activity), or :data:`NONE` where nothing was recorded in that second.  Two levels per byte (high
  nibble first); an odd count is padded with :data:`NONE`.
* ``activity_key = HKDF-SHA256(hour_key, salt = empty, info = "vms-activity-v1" || camera || 0x00 || day
  || hour as u8)``; ``nonce = start_us (i64, big-endian) || 00 00 00 00``: unique per key, since a camera's
  segments never share a start.  AES-256-GCM, no associated data (the nonce binds the record to its
  segment's start, the key to its camera and hour).

Budget: 60 s of levels are 30 bytes + a 16-byte tag = 46 bytes per camera-minute.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONE = 15  # the nibble for "nothing recorded in this second"
MAX_LEVEL = 14
INFO = b"vms-activity-v1"
MAX_SECONDS = 2 * 3600  # longest segment an activity record describes
_NONCE_TAIL = b"\x00\x00\x00\x00"


class ActivityUnreadable(Exception):
    """An activity record that does not authenticate (wrong key, another segment's record, changed bytes)."""


def activity_key(hour_key: bytes, camera: str, day: str, hour: int) -> bytes:
    if not 0 <= hour < 24:
        raise ValueError(f"hour must be 0..23, not {hour!r}")
    info = INFO + camera.encode() + b"\x00" + day.encode() + bytes([hour])
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(hour_key)


def nonce(start_us: int) -> bytes:
    return struct.pack(">q", start_us) + _NONCE_TAIL


def pack_levels(levels: list[int | None]) -> bytes:
    """Two levels (0..14, None: nothing recorded) per byte, high nibble first."""
    if len(levels) > MAX_SECONDS:
        raise ValueError(f"{len(levels)} seconds of activity: at most {MAX_SECONDS} per record")
    if any(v is not None and (type(v) is not int or not 0 <= v <= MAX_LEVEL) for v in levels):
        raise ValueError(f"activity levels are 0..{MAX_LEVEL} or None")
    nib = [NONE if v is None else v for v in levels]
    if len(nib) % 2:
        nib.append(NONE)
    return bytes((nib[i] << 4) | nib[i + 1] for i in range(0, len(nib), 2))


def unpack_levels(data: bytes) -> list[int | None]:
    out: list[int | None] = []
    for b in data:
        for v in (b >> 4, b & 0x0F):
            out.append(None if v == NONE else v)
    while out and out[-1] is None:
        out.pop()
    return out


def seal(key: bytes, start_us: int, levels: list[int | None]) -> bytes:
    """The encrypted record of a segment that starts at ``start_us``."""
    return AESGCM(key).encrypt(nonce(start_us), pack_levels(levels), None)


def open_record(key: bytes | AESGCM, start_us: int, record: bytes) -> list[int | None]:
    """The levels of a record; :class:`ActivityUnreadable` if it does not authenticate."""
    return unpack_levels(open_packed(key, start_us, record))


def open_packed(key: bytes | AESGCM, start_us: int, record: bytes) -> bytes:
    """The packed levels of a record (two per byte, :data:`NONE` for nothing recorded), authenticated;
    ``key`` may be an ``AESGCM`` made once for many records of an hour."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        return aead.decrypt(nonce(start_us), record, None)
    except InvalidTag:
        raise ActivityUnreadable(f"activity record of the segment starting at {start_us} us does not "
                                 "authenticate (wrong key, another segment's record or changed bytes)") from None
