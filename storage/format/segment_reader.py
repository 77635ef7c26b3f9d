"""Reading encrypted segment files back, and crash recovery of ``.open`` files.

The format and its writer are in :mod:`storage.format.segment` (spec: ``docs/segment-format.md``).

Contracts:

* :class:`SegmentReader` authenticates every chunk before yielding any packet from it and raises
  :class:`~storage.format.segment.SegmentError` naming the file and the chunk on truncation, reordering,
  modified bytes or a wrong key.  It never yields unauthenticated data.
* :func:`recover` turns an ``.open`` file left by a killed process into a sealed segment holding every
  authenticated chunk; nothing authenticated is dropped.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.format.fsutil import fsync_dir
from storage.format.packets import Packet
from storage.format.segment import (
    _LEN,
    MAX_CHUNK_PLAINTEXT,
    OPEN_SUFFIX,
    SUFFIX,
    TAG_BYTES,
    SegmentError,
    SegmentHeader,
    SegmentSummary,
    SegmentTruncated,
    _nonce,
    decode_records,
    packet_end_us,
    read_header,
)

# ---------------------------------------------------------------- reader


class SegmentReader:
    """Reads a sealed segment.  ``key_for`` maps the header to the segment key
    (see :func:`storage.format.segment.derive_segment_key`); it may raise its own error."""

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
            hour=h.hour,
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
        hour=header.hour,
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
        "version": 1 if h.hour is None else 2,
        "key_id": h.key_id,
        "hour": h.hour,
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
