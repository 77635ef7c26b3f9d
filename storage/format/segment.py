"""Encrypted segment files: writer, reader, crash recovery.

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
* The reader authenticates every chunk before yielding any packet from it and
  raises :class:`SegmentError` naming the file and the chunk on truncation,
  reordering, modified bytes or a wrong key.  It never yields unauthenticated
  data.
* :func:`recover` turns an ``.open`` file left by a killed process into a sealed
  segment holding every authenticated chunk; nothing authenticated is dropped.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.format.fsutil import fsync_dir
from storage.format.packets import Packet, StreamInfo
from storage.keys.keyring import derive_segment_key

MAGIC = b"VMSSEG\x00\x01"
VERSION = 1
SUFFIX = ".vseg"
OPEN_SUFFIX = ".vseg.open"
MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNK_PLAINTEXT = 64 * 1024 * 1024
TAG_BYTES = 16
CHUNK_SPAN_US = 1_000_000
NONCE_PREFIX_BYTES = 7
SALT_BYTES = 16

_LEN = struct.Struct(">I")
_RECORD = struct.Struct(">BqqqII")  # flags, wall_us, pts, dts, duration, size
_FLAG_KEY = 0x01


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


# ---------------------------------------------------------------- header


def encode_header(
    *, camera: str, day: str, key_id: int, start_us: int, stream: StreamInfo, salt: bytes, nonce_prefix: bytes
) -> bytes:
    if len(salt) != SALT_BYTES or len(nonce_prefix) != NONCE_PREFIX_BYTES:
        raise ValueError("salt must be 16 bytes and nonce_prefix 7 bytes")
    doc = {
        "v": VERSION,
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
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_HEADER_BYTES:
        raise ValueError("segment header too large (extradata over 64 KiB?)")
    return MAGIC + _LEN.pack(len(body)) + body


def _parse_fraction(value: object, field: str, path: Path | str) -> Fraction:
    try:
        num, den = str(value).split("/")
        result = Fraction(int(num), int(den))
    except (ValueError, ZeroDivisionError):
        raise SegmentError(path, None, f"header field {field!r} is not a fraction like '1/90000'") from None
    return result


def read_header(fh, path: Path | str) -> SegmentHeader:
    """Read and validate the header from an open binary file positioned at 0.
    Raises :class:`SegmentError` for anything that is not a version-1 segment."""
    head = fh.read(len(MAGIC) + _LEN.size)
    if len(head) < len(MAGIC) or head[: len(MAGIC)] != MAGIC:
        raise SegmentError(path, None, "not a segment file (bad magic; expected VMSSEG version 1)")
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
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise ValueError("unsupported version")
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
        day_key: bytes,
        *,
        camera: str,
        day: str,
        key_id: int,
        start_us: int,
        stream: StreamInfo,
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
            camera=camera, day=day, key_id=key_id, start_us=start_us, stream=stream, salt=salt, nonce_prefix=self._prefix
        )
        self._aes = algorithms.AES(derive_segment_key(day_key, salt, self.header_bytes))
        self.camera, self.day, self.key_id, self.start_us = camera, day, key_id, start_us
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

    def close(self) -> SegmentSummary:
        """Write the final chunk, fsync, rename to the sealed name."""
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
        )

    def abandon(self) -> None:
        """Close the file descriptor without sealing (tests simulate a crash with this)."""
        self._fh.close()


# ---------------------------------------------------------------- reader


class SegmentReader:
    """Reads a sealed segment.  ``key_for`` maps the header to the segment key
    (see :func:`storage.keys.keyring.derive_segment_key`); it may raise its own error."""

    def __init__(self, path: Path | str, key_for: Callable[[SegmentHeader], bytes], *, allow_unsealed: bool = False,
                 data: bytes | None = None):
        """``data``: the file's bytes when they came from elsewhere (another node);
        ``path`` then only names the segment in messages."""
        self.path = Path(path)
        self._key_for = key_for
        self._allow_unsealed = allow_unsealed
        self._data = data
        with self._open() as fh:
            self.header = read_header(fh, self.path)
        #: byte offset just after the last authenticated chunk (set while iterating)
        self.good_end = self.header.length
        self.sealed = False

    def chunks(self) -> Iterator[list[Packet]]:
        """Yield each chunk's packets after authenticating it."""
        aead = AESGCM(self._key_for(self.header))
        prefix = self.header.nonce_prefix
        ct_buf, plain_buf = bytearray(), bytearray()  # reused across chunks
        with self._open() as fh:
            size = len(self._data) if self._data is not None else os.fstat(fh.fileno()).st_size
            fh.seek(self.header.length)
            counter = 0
            while True:
                raw_len = fh.read(_LEN.size)
                if not raw_len:
                    if self._allow_unsealed:
                        return
                    raise SegmentTruncated(self.path, counter, "file ends before the final chunk (truncated or never sealed)")
                if len(raw_len) < _LEN.size:
                    return self._cut(counter, "file ends inside a chunk length")
                (ct_len,) = _LEN.unpack(raw_len)
                if ct_len < TAG_BYTES or ct_len > MAX_CHUNK_PLAINTEXT + TAG_BYTES:
                    raise SegmentError(self.path, counter, f"chunk length {ct_len} is outside 16..{MAX_CHUNK_PLAINTEXT + TAG_BYTES}")
                if len(ct_buf) < ct_len:
                    grown = max(ct_len, len(ct_buf) * 5 // 4)
                    ct_buf, plain_buf = bytearray(grown), bytearray(grown)
                ct = memoryview(ct_buf)[:ct_len]
                if fh.readinto(ct) < ct_len:
                    return self._cut(counter, "file ends inside a chunk")
                plain = memoryview(plain_buf)[: ct_len - TAG_BYTES]
                # A chunk that ends the file is most likely the final one: try that flag first.
                last = self._open_chunk(aead, prefix, counter, ct, plain, likely_last=fh.tell() == size)
                self.good_end = fh.tell()
                yield decode_records(plain, self.path, counter)
                counter += 1
                if last:
                    if fh.read(1):
                        raise SegmentError(self.path, counter, "data after the final chunk")
                    self.sealed = True
                    return

    def _open(self):
        return io.BytesIO(self._data) if self._data is not None else open(self.path, "rb")

    def _cut(self, counter: int, reason: str) -> None:
        if self._allow_unsealed:
            return None
        raise SegmentTruncated(self.path, counter, reason)

    def _open_chunk(self, aead: AESGCM, prefix: bytes, counter: int, ct, plain, likely_last: bool = False) -> bool:
        """Authenticate and decrypt ``ct`` into ``plain``; returns the last-chunk flag.
        Both flags are tried (a chunk authenticates under at most one of them); the
        order only saves a failed decryption."""
        for last in ((True, False) if likely_last else (False, True)):
            try:
                aead.decrypt_into(_nonce(prefix, counter, last), ct, None, plain)
                return last
            except InvalidTag:
                continue
        hint = "wrong key, modified header, " if counter == 0 else ""
        raise SegmentError(self.path, counter, f"authentication failed ({hint}modified, reordered or substituted chunk)")

    def packets(self, start_us: int | None = None, end_us: int | None = None) -> Iterator[Packet]:
        """Yield packets in order.  With ``start_us``, start at the keyframe at or
        before that wall-clock time; with ``end_us``, stop before the first packet
        at or after it."""
        pending: list[Packet] = []  # packets from the last keyframe before start_us
        started = start_us is None
        for chunk in self.chunks():
            for p in chunk:
                if end_us is not None and p.wall_us >= end_us:
                    if not started and pending:
                        yield from pending
                    return
                if started:
                    yield p
                    continue
                if p.keyframe:
                    pending = [p]
                elif pending:
                    pending.append(p)
                if p.wall_us >= start_us:
                    started = True
                    yield from pending
                    pending = []
        if not started:
            yield from pending

    def summary(self) -> SegmentSummary:
        """Authenticate the whole file and summarise it."""
        packets = keyframes = chunks = 0
        h = self.header
        last_us = h.start_us
        for chunk in self.chunks():
            chunks += 1
            for p in chunk:
                packets += 1
                keyframes += p.keyframe
                last_us = max(last_us, packet_end_us(p, h.stream.time_base))
        return SegmentSummary(
            path=self.path,
            camera=h.camera,
            day=h.day,
            key_id=h.key_id,
            start_us=h.start_us,
            end_us=last_us,
            packets=packets,
            keyframes=keyframes,
            chunks=chunks,
            size_bytes=self.good_end,
        )


# ---------------------------------------------------------------- recovery


def sealed_name(open_path: Path) -> Path:
    if not open_path.name.endswith(OPEN_SUFFIX):
        raise ValueError(f"{open_path} is not an open segment")
    return open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)] + SUFFIX)


def recover(open_path: Path, key_for: Callable[[SegmentHeader], bytes]) -> SegmentSummary | None:
    """Repair a segment left open by a killed writer.

    Keeps every authenticated chunk, cuts what follows (a half-written chunk),
    appends an empty final chunk, fsyncs and renames to the sealed name.  A file
    that holds no authenticated chunk (killed right after the header) holds no
    footage and is removed; ``None`` is returned.  A chunk that fails
    authentication in the middle stops recovery with :class:`SegmentError`
    (that is damage, not a crash, and must be looked at by a person).
    """
    reader = SegmentReader(open_path, key_for, allow_unsealed=True)
    summary_packets = keyframes = chunks = 0
    last_us = reader.header.start_us
    for chunk in reader.chunks():
        chunks += 1
        for p in chunk:
            summary_packets += 1
            keyframes += p.keyframe
            last_us = max(last_us, packet_end_us(p, reader.header.stream.time_base))
    if reader.sealed:
        target = sealed_name(open_path)
        os.replace(open_path, target)
        return SegmentReader(target, key_for).summary()
    if chunks == 0:
        open_path.unlink()
        return None
    header = reader.header
    aead = AESGCM(key_for(header))
    final = aead.encrypt(_nonce(header.nonce_prefix, chunks, True), b"", None)
    with open(open_path, "r+b") as fh:
        fh.truncate(reader.good_end)
        fh.seek(reader.good_end)
        fh.write(_LEN.pack(len(final)) + final)
        fh.flush()
        os.fsync(fh.fileno())
        size = fh.tell()
    target = sealed_name(open_path)
    os.replace(open_path, target)
    fsync_dir(target.parent)
    return SegmentSummary(
        path=target,
        camera=header.camera,
        day=header.day,
        key_id=header.key_id,
        start_us=header.start_us,
        end_us=last_us,
        packets=summary_packets,
        keyframes=keyframes,
        chunks=chunks + 1,
        size_bytes=size,
        recovered=True,
    )




def inspect_chunks(path: Path) -> dict:
    """Header fields and chunk layout, read without any key (nothing is decrypted)."""
    with open(path, "rb") as fh:
        h = read_header(fh, path)
        chunks = ct_bytes = 0
        state = "unsealed (no final chunk yet)" if path.name.endswith(OPEN_SUFFIX) else "ends without a final chunk"
        while True:
            raw_len = fh.read(_LEN.size)
            if len(raw_len) < _LEN.size:
                if raw_len:
                    state = "truncated inside a chunk length"
                break
            (ct_len,) = _LEN.unpack(raw_len)
            if ct_len < TAG_BYTES or ct_len > MAX_CHUNK_PLAINTEXT + TAG_BYTES:
                state = f"chunk {chunks} has an impossible length {ct_len}"
                break
            got = len(fh.read(ct_len))
            if got < ct_len:
                state = f"truncated inside chunk {chunks}"
                break
            chunks += 1
            ct_bytes += ct_len
    if state == "ends without a final chunk" and chunks:
        state = "complete framing (authenticity and the final flag are checked by 'vms segment verify')"
    s = h.stream
    return {
        "camera": h.camera,
        "day": h.day,
        "key_id": h.key_id,
        "start_us": h.start_us,
        "codec": s.codec,
        "width": s.width,
        "height": s.height,
        "fps": f"{s.fps.numerator}/{s.fps.denominator}",
        "time_base": f"{s.time_base.numerator}/{s.time_base.denominator}",
        "extradata_bytes": len(s.extradata),
        "chunks": chunks,
        "ciphertext_bytes": ct_bytes,
        "state": state,
    }
