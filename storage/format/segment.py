"""Encrypted segment files: format constants, header, chunk records and the writer.

The byte layout is specified in ``docs/segment-format.md``; this module is the
reference implementation.  In short::

    file    = magic(8) header_len(u32 BE) header_json  chunk*
    chunk   = ct_len(u32 BE) AES-256-GCM(segment_key, nonce, plaintext)
    nonce   = nonce_prefix(7) || counter(u32 BE) || last_flag(1)
    plaintext = record*
    record  = flags(u8) wall_us(i64) pts(i64) dts(i64) duration(u32) size(u32) data

Contracts:

* The writer seals a chunk whenever the buffered packets span one second of
  wall-clock time (and on :meth:`SegmentWriter.flush_due`), writes it with one
  ``write`` call and flushes it to the OS, so a killed process loses at most
  the unsealed second.  :meth:`SegmentWriter.close` writes the final chunk,
  fsyncs and renames ``NAME.vseg.open`` to ``NAME.vseg``.  Only then is the
  segment sealed.
* Reading back and crash recovery are in :mod:`storage.format.segment_reader`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.format import activity
from storage.format.fsutil import fsync_dir
from storage.format.packets import Packet, StreamInfo

MAGIC_V1 = b"VMSSEG\x00\x01"  # day-keyed segments (written before hour keys; read, never written)
MAGIC_V2 = b"VMSSEG\x00\x02"  # hour-keyed segments: the header names the hour
MAGIC = MAGIC_V2  # what the writer writes
VERSION = 2
VERSIONS = {MAGIC_V1: 1, MAGIC_V2: 2}
HOURS_PER_DAY = 24
SUFFIX = ".vseg"
OPEN_SUFFIX = ".vseg.open"
MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNK_PLAINTEXT = 64 * 1024 * 1024
TAG_BYTES = 16
CHUNK_SPAN_US = 1_000_000
NONCE_PREFIX_BYTES = 7
SALT_BYTES = 16

SEGMENT_INFO = b"vms-segment-v1"  # HKDF info prefix of a segment key (docs/segment-format.md)
SEGMENT_KEY_BYTES = 32

_LEN = struct.Struct(">I")
_RECORD = struct.Struct(">BqqqII")  # flags, wall_us, pts, dts, duration, size
_FLAG_KEY = 0x01


def derive_segment_key(data_key: bytes, salt: bytes, header_bytes: bytes) -> bytes:
    """A segment's AES-256 key: HKDF-SHA256 of its data key (the hour key of a version-2 segment, the day key
    of a version-1 segment), salted, bound to the segment's header bytes."""
    info = SEGMENT_INFO + hashlib.sha256(header_bytes).digest()
    return HKDF(algorithm=hashes.SHA256(), length=SEGMENT_KEY_BYTES, salt=salt, info=info).derive(data_key)


class SegmentError(Exception):
    """A segment file cannot be read as written.  ``path`` and ``chunk`` say where;
    the message never contains key material or footage bytes."""

    def __init__(self, path: Path | str, chunk: int | None, reason: str):
        self.path = str(path)
        self.chunk = chunk
        self.reason = reason
        where = f"{self.path}" + (f", chunk {chunk}" if chunk is not None else ", header")
        super().__init__(f"{where}: {reason}")


class SegmentTruncated(SegmentError):
    """The file ends before its final (last-flag) chunk."""


@dataclass(frozen=True)
class SegmentHeader:
    camera: str
    day: str
    key_id: int
    start_us: int
    stream: StreamInfo
    salt: bytes
    nonce_prefix: bytes
    raw: bytes  # the exact header bytes on disk (magic, length and JSON)
    hour: int | None = None  # version 2: the UTC hour whose hour key encrypts it; None: version 1 (day key)

    @property
    def length(self) -> int:
        return len(self.raw)


@dataclass(frozen=True)
class SegmentSummary:
    """What the index needs to know about a sealed segment."""

    path: Path
    camera: str
    day: str
    key_id: int
    start_us: int
    end_us: int
    packets: int
    keyframes: int
    chunks: int
    size_bytes: int
    recovered: bool = False
    hour: int | None = None  # None: a version-1 (day-keyed) segment
    activity: bytes | None = None  # its sealed activity record (storage/format/activity.py), if it has one


# ---------------------------------------------------------------- header


def encode_header(
    *, camera: str, day: str, key_id: int, start_us: int, stream: StreamInfo, salt: bytes, nonce_prefix: bytes,
    hour: int | None = None,
) -> bytes:
    """A version-2 header when ``hour`` is given (hour-keyed), else version 1 (day-keyed: test vectors and
    fixtures of footage written before hour keys)."""
    if len(salt) != SALT_BYTES or len(nonce_prefix) != NONCE_PREFIX_BYTES:
        raise ValueError("salt must be 16 bytes and nonce_prefix 7 bytes")
    if hour is not None and (type(hour) is not int or not 0 <= hour < HOURS_PER_DAY):
        raise ValueError(f"hour must be 0..23, not {hour!r}")
    doc = {
        "v": 1 if hour is None else 2,
        "camera": camera,
        "day": day,
        "key_id": key_id,
        "start_us": start_us,
        "codec": stream.codec,
        "width": stream.width,
        "height": stream.height,
        "fps": f"{stream.fps.numerator}/{stream.fps.denominator}",
        "time_base": f"{stream.time_base.numerator}/{stream.time_base.denominator}",
        "extradata": base64.b64encode(stream.extradata).decode("ascii"),
        "salt": salt.hex(),
        "nonce_prefix": nonce_prefix.hex(),
    }
    if hour is not None:
        doc["hour"] = hour
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError("segment header too large (extradata over 64 KiB?)")
    return (MAGIC_V1 if hour is None else MAGIC_V2) + _LEN.pack(len(body)) + body


def _parse_hour(doc: dict, version: int, path: Path | str) -> int | None:
    hour = doc.get("hour")
    if version == 1:
        if "hour" in doc:
            raise SegmentError(path, None, "a version-1 header has no 'hour' field")
        return None
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour < HOURS_PER_DAY:
        raise SegmentError(path, None, "header field 'hour' must be an integer 0..23 in a version-2 segment")
    return hour


def _parse_fraction(value: object, field: str, path: Path | str) -> Fraction:
    try:
        num, den = str(value).split("/")
        result = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        raise SegmentError(path, None, f"header field {field!r} is not a fraction like '1/90000'") from None
    return result


def read_header(fh, path: Path | str) -> SegmentHeader:
    """Read and validate the header from an open binary file positioned at 0.
    Raises :class:`SegmentError` for anything that is not a version-1 or version-2 segment."""
    head = fh.read(len(MAGIC) + _LEN.size)
    version = VERSIONS.get(head[: len(MAGIC)])
    if version is None:
        raise SegmentError(path, None, "not a segment file (bad magic; expected VMSSEG version 1 or 2)")
    if len(head) < len(MAGIC) + _LEN.size:
        raise SegmentTruncated(path, None, "file ends inside the header")
    (body_len,) = _LEN.unpack_from(head, len(MAGIC))
    if body_len == 0 or body_len > MAX_HEADER_BYTES:
        raise SegmentError(path, None, f"header length {body_len} outside 1..{MAX_HEADER_BYTES}")
    body = fh.read(body_len)
    if len(body) != body_len:
        raise SegmentTruncated(path, None, "file ends inside the header")
    try:
        doc = json.loads(body.decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("v") != version:
            raise ValueError(f"'v' is not {version}, the version in the magic")
        stream = StreamInfo(
            codec=str(doc["codec"]),
            width=int(doc["width"]),
            height=int(doc["height"]),
            fps=_parse_fraction(doc["fps"], "fps", path),
            time_base=_parse_fraction(doc["time_base"], "time_base", path),
            extradata=base64.b64decode(doc["extradata"], validate=True),
        )
        header = SegmentHeader(
            camera=str(doc["camera"]),
            day=str(doc["day"]),
            key_id=int(doc["key_id"]),
            start_us=int(doc["start_us"]),
            stream=stream,
            salt=bytes.fromhex(doc["salt"]),
            nonce_prefix=bytes.fromhex(doc["nonce_prefix"]),
            raw=head + body,
            hour=_parse_hour(doc, version, path),
        )
    except SegmentError:
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise SegmentError(path, None, f"header is not valid segment JSON ({exc.__class__.__name__}: {exc})") from None
    if len(header.salt) != SALT_BYTES or len(header.nonce_prefix) != NONCE_PREFIX_BYTES:
        raise SegmentError(path, None, "header salt/nonce_prefix have the wrong length")
    return header


def inspect_header(path: Path | str) -> SegmentHeader:
    with open(path, "rb") as fh:
        return read_header(fh, path)


# ---------------------------------------------------------------- chunks


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise OverflowError("chunk counter exhausted")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def encode_records(packets: list[Packet]) -> bytes:
    parts = []
    for p in packets:
        parts.append(_RECORD.pack(_FLAG_KEY if p.keyframe else 0, p.wall_us, p.pts, p.dts, p.duration, len(p.data)))
        parts.append(p.data)
    return b"".join(parts)


def decode_records(plain: bytes, path: Path | str, chunk: int) -> list[Packet]:
    out: list[Packet] = []
    pos, end = 0, len(plain)
    view = memoryview(plain)
    while pos < end:
        if end - pos < _RECORD.size:
            raise SegmentError(path, chunk, "packet record cut short inside an authenticated chunk")
        flags, wall_us, pts, dts, duration, size = _RECORD.unpack_from(plain, pos)
        pos += _RECORD.size
        if flags & ~_FLAG_KEY or pos + size > end:
            raise SegmentError(path, chunk, "malformed packet record inside an authenticated chunk")
        out.append(Packet(bytes(view[pos : pos + size]), wall_us, pts, dts, bool(flags & _FLAG_KEY), duration))
        pos += size
    return out


def packet_end_us(packet: Packet, time_base: Fraction) -> int:
    """Wall-clock end of a packet: its capture time plus its stream duration."""
    return packet.wall_us + packet.duration * time_base.numerator * 1_000_000 // time_base.denominator


# ---------------------------------------------------------------- writer


class SegmentWriter:
    """Writes one segment.  Not thread-safe; one writer per camera.

    ``monotonic`` is injectable for tests; it decides when a partly filled
    chunk is old enough to be sealed by :meth:`flush_due`.
    """

    def __init__(
        self,
        final_path: Path,
        data_key: bytes,
        *,
        camera: str,
        day: str,
        key_id: int,
        start_us: int,
        stream: StreamInfo,
        hour: int | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not final_path.name.endswith(SUFFIX):
            raise ValueError(f"segment path must end in {SUFFIX}")
        self.final_path = final_path
        self.open_path = final_path.with_name(final_path.name[: -len(SUFFIX)] + OPEN_SUFFIX)
        salt = random_bytes(SALT_BYTES)
        self._prefix = random_bytes(NONCE_PREFIX_BYTES)
        self.header_bytes = encode_header(
            camera=camera, day=day, key_id=key_id, start_us=start_us, stream=stream, salt=salt, nonce_prefix=self._prefix,
            hour=hour,
        )
        self._aes = algorithms.AES(derive_segment_key(data_key, salt, self.header_bytes))
        self.camera, self.day, self.key_id, self.start_us, self.hour = camera, day, key_id, start_us, hour
        # activity records exist for hour-keyed segments only (their key comes from the hour key)
        self._activity_key = None if hour is None else activity.activity_key(data_key, camera, day, hour)
        self._monotonic = monotonic
        self._buf: list[Packet] = []
        self._buf_bytes = 0  # plaintext size of the buffered records
        self._buf_since = 0.0
        self._counter = 0
        self.packets = 0
        self.keyframes = 0
        self.size_bytes = 0
        self.end_us = start_us
        self._us_num = stream.time_base.numerator * 1_000_000
        self._us_den = stream.time_base.denominator
        self._out = bytearray()  # reused ciphertext buffer: length prefix + ciphertext + tag
        self._rec = bytearray(_RECORD.size)  # reused record header
        final_path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.open_path, "xb")
        self._write(self.header_bytes)

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        self.size_bytes += len(data)

    def write(self, packet: Packet) -> None:
        """Buffer one packet; seal the pending chunk first if it already spans a second
        or would grow past the largest chunk a reader accepts."""
        size = _RECORD.size + len(packet.data)
        if size > MAX_CHUNK_PLAINTEXT:
            raise ValueError(f"a packet of {len(packet.data)} bytes exceeds the largest chunk "
                             f"({MAX_CHUNK_PLAINTEXT} bytes); not a camera stream")
        if self._buf and (packet.wall_us - self._buf[0].wall_us >= CHUNK_SPAN_US
                          or self._buf_bytes + size > MAX_CHUNK_PLAINTEXT):
            self._seal(last=False)
        if not self._buf:
            self._buf_since = self._monotonic()
        self._buf.append(packet)
        self._buf_bytes += size
        self.packets += 1
        self.keyframes += packet.keyframe
        end_us = packet.wall_us + packet.duration * self._us_num // self._us_den
        if end_us > self.end_us:
            self.end_us = end_us

    def flush_due(self) -> bool:
        """Seal the pending chunk if it has waited a second; call this when no packet arrives."""
        if self._buf and self._monotonic() - self._buf_since >= CHUNK_SPAN_US / 1e6:
            self._seal(last=False)
            return True
        return False

    def _seal(self, *, last: bool) -> None:
        # The records are encrypted straight from the packets' own buffers into the
        # reused output buffer (GCM is a stream mode: the same bytes as encrypting
        # encode_records(self._buf) in one call), so the plaintext is never assembled.
        ct_len = self._buf_bytes + TAG_BYTES
        need = _LEN.size + ct_len
        if len(self._out) < need:
            self._out = bytearray(max(need, len(self._out) * 5 // 4))
        out = memoryview(self._out)
        _LEN.pack_into(out, 0, ct_len)
        enc = Cipher(self._aes, modes.GCM(_nonce(self._prefix, self._counter, last))).encryptor()
        pos, rec, pack, update = _LEN.size, self._rec, _RECORD.pack_into, enc.update_into
        for p in self._buf:
            data = p.data
            pack(rec, 0, _FLAG_KEY if p.keyframe else 0, p.wall_us, p.pts, p.dts, p.duration, len(data))
            pos += update(rec, out[pos:])
            pos += update(data, out[pos:])
        enc.finalize()
        if pos + TAG_BYTES != need:  # cannot happen with GCM; never write a chunk of the wrong length
            raise RuntimeError("segment writer: ciphertext length does not match the buffered records")
        out[pos:need] = enc.tag
        self._write(out[:need])
        self._counter += 1
        self._buf = []
        self._buf_bytes = 0

    def close(self, activity_levels: list[int | None] | None = None) -> SegmentSummary:
        """Write the final chunk, fsync, rename to the sealed name.  ``activity_levels``: one level per
        second from the second of ``start_us`` on (storage/format/activity.py), sealed into the summary."""
        record = None
        if activity_levels and self._activity_key is not None:
            record = activity.seal(self._activity_key, self.start_us, activity_levels)
        self._seal(last=True)
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.open_path, self.final_path)
        fsync_dir(self.final_path.parent)
        return SegmentSummary(
            path=self.final_path,
            camera=self.camera,
            day=self.day,
            key_id=self.key_id,
            start_us=self.start_us,
            end_us=self.end_us,
            packets=self.packets,
            keyframes=self.keyframes,
            chunks=self._counter,
            size_bytes=self.size_bytes,
            hour=self.hour,
            activity=record,
        )

    def abandon(self) -> None:
        """Close the file descriptor without sealing (tests simulate a crash with this)."""
        self._fh.close()
