"""Encrypted blob files: one opaque byte stream (e.g. an evidence package) at rest.

Layout (the same STREAM construction as segments, ``docs/segment-format.md``,
without packet records)::

    file   = magic(8) header_len(u32 BE) header_json  chunk*
    chunk  = ct_len(u32 BE) AES-256-GCM(key, nonce, plaintext, aad=SHA-256(header bytes))
    nonce  = nonce_prefix(7) || counter(u32 BE) || last_flag(1)

Every chunk but the last holds exactly ``chunk_bytes`` of plaintext; the last
one (last flag set) holds the rest and may be empty.  The header (magic, length,
JSON) is bound into every chunk as associated data, so a modified header fails
authentication.  The caller supplies the 32-byte key and keeps it (wrapped)
elsewhere; nothing here stores or logs key bytes.

Contracts:

* :class:`BlobWriter` writes to ``NAME.partial`` and only :meth:`BlobWriter.close`
  (final chunk, fsync, rename) makes ``NAME`` exist; :meth:`BlobWriter.abort`
  removes the partial file.  A reader therefore never sees a half-written blob
  under its final name, and a crash leaves only a ``.partial`` file whose key
  died with the process.
* :func:`read_blob` authenticates each chunk before yielding its plaintext and
  raises :class:`BlobError` naming the file and the chunk on truncation,
  reordering, modified bytes or a wrong key.
* The writer is a write-only, non-seekable file object with ``tell()``, so
  ``zipfile`` streams into it (data descriptors) and no plaintext touches disk.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.format.fsutil import fsync_dir

MAGIC = b"VMSBLOB\x01"
VERSION = 1
PARTIAL_SUFFIX = ".partial"
KEY_BYTES = 32
TAG_BYTES = 16
NONCE_PREFIX_BYTES = 7
DEFAULT_CHUNK_BYTES = 1 << 20
MAX_CHUNK_BYTES = 16 << 20
MAX_HEADER_BYTES = 16 * 1024

_LEN = struct.Struct(">I")


class BlobError(Exception):
    """A blob cannot be read as written; ``path`` and ``chunk`` say where."""

    def __init__(self, path: Path | str, chunk: int | None, reason: str):
        self.path, self.chunk, self.reason = str(path), chunk, reason
        where = self.path + (f", chunk {chunk}" if chunk is not None else ", header")
        super().__init__(f"{where}: {reason}")


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise OverflowError("chunk counter exhausted")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _digest(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def encode_header(purpose: str, nonce_prefix: bytes, chunk_bytes: int) -> bytes:
    doc = {"v": VERSION, "purpose": purpose, "nonce_prefix": nonce_prefix.hex(), "chunk_bytes": chunk_bytes}
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + _LEN.pack(len(body)) + body


class BlobWriter:
    """Write-only file object that encrypts into ``path`` (via ``path.partial``).

    ``purpose`` is a short public label kept in the header (e.g.
    ``export-package``).  Not thread-safe."""

    def __init__(
        self,
        path: Path,
        key: bytes,
        *,
        purpose: str,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ):
        if len(key) != KEY_BYTES:
            raise ValueError("blob key must be 32 bytes")
        if not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be 1..{MAX_CHUNK_BYTES}")
        self.path = Path(path)
        self.partial_path = self.path.with_name(self.path.name + PARTIAL_SUFFIX)
        self._prefix = random_bytes(NONCE_PREFIX_BYTES)
        self._chunk = chunk_bytes
        header = encode_header(purpose, self._prefix, chunk_bytes)
        self._aad = _digest(header)
        self._aead = AESGCM(key)
        self._buf = bytearray()
        self._out = bytearray(_LEN.size + chunk_bytes + TAG_BYTES)
        self._counter = 0
        self._plain_bytes = 0
        self.size_bytes = 0
        self._done = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.partial_path, "xb")
        self._fh.write(header)
        self.size_bytes += len(header)

    # -- file object protocol (what zipfile and shutil need) ----------------------

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._plain_bytes

    def flush(self) -> None:  # chunks are written as they fill; nothing to do
        pass

    def write(self, data) -> int:
        if self._done:
            raise ValueError("write to a closed blob")
        view = memoryview(data).cast("B")
        n, pos, buf, chunk = len(view), 0, self._buf, self._chunk
        while pos < n:
            if len(buf) == chunk:  # more data follows, so a full buffer is not the last chunk
                self._seal(buf, last=False)
                buf.clear()
            if not buf and n - pos > chunk:  # a whole chunk straight from the caller's buffer
                self._seal(view[pos : pos + chunk], last=False)
                pos += chunk
                continue
            take = min(chunk - len(buf), n - pos)
            buf += view[pos : pos + take]
            pos += take
        self._plain_bytes += n
        return n

    def _seal(self, plain, *, last: bool) -> None:
        need = _LEN.size + len(plain) + TAG_BYTES
        out = memoryview(self._out)
        _LEN.pack_into(out, 0, len(plain) + TAG_BYTES)
        self._aead.encrypt_into(_nonce(self._prefix, self._counter, last), plain, self._aad, out[_LEN.size : need])
        self._fh.write(out[:need])
        self.size_bytes += need
        self._counter += 1

    def close(self) -> None:
        """Seal the final chunk, fsync and rename to the final name."""
        if self._done:
            return
        try:
            self._seal(self._buf, last=True)
            self._buf.clear()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self.partial_path, self.path)
            fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Drop everything written; the final name never appears."""
        self._done = True
        self._buf.clear()
        try:
            self._fh.close()
        finally:
            self.partial_path.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _read_header(fh, path: Path) -> tuple[bytes, bytes, int]:
    head = fh.read(len(MAGIC) + _LEN.size)
    if head[: len(MAGIC)] != MAGIC:
        raise BlobError(path, None, "not an encrypted blob (bad magic)")
    if len(head) < len(MAGIC) + _LEN.size:
        raise BlobError(path, None, "file ends inside the header")
    (body_len,) = _LEN.unpack_from(head, len(MAGIC))
    if not 0 < body_len <= MAX_HEADER_BYTES:
        raise BlobError(path, None, f"header length {body_len} outside 1..{MAX_HEADER_BYTES}")
    body = fh.read(body_len)
    if len(body) != body_len:
        raise BlobError(path, None, "file ends inside the header")
    try:
        doc = json.loads(body)
        if doc.get("v") != VERSION:
            raise ValueError("unsupported version")
        prefix = bytes.fromhex(doc["nonce_prefix"])
        chunk_bytes = int(doc["chunk_bytes"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BlobError(path, None, f"header is not valid blob JSON ({exc.__class__.__name__})") from None
    if len(prefix) != NONCE_PREFIX_BYTES or not 1 <= chunk_bytes <= MAX_CHUNK_BYTES:
        raise BlobError(path, None, "header nonce_prefix or chunk_bytes out of range")
    return head + body, prefix, chunk_bytes


def read_blob(path: Path | str, key: bytes) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk, each authenticated before it is yielded."""
    path = Path(path)
    aead = AESGCM(key)
    with open(path, "rb") as fh:
        header, prefix, chunk_bytes = _read_header(fh, path)
        aad = _digest(header)
        counter = 0
        while True:
            raw_len = fh.read(_LEN.size)
            if len(raw_len) < _LEN.size:
                raise BlobError(path, counter, "file ends before the final chunk (truncated)")
            (ct_len,) = _LEN.unpack(raw_len)
            if not TAG_BYTES <= ct_len <= chunk_bytes + TAG_BYTES:
                raise BlobError(path, counter, f"chunk length {ct_len} outside {TAG_BYTES}..{chunk_bytes + TAG_BYTES}")
            ct = fh.read(ct_len)
            if len(ct) < ct_len:
                raise BlobError(path, counter, "file ends inside a chunk (truncated)")
            plain, last = _open_chunk(aead, prefix, counter, ct, aad, path)
            if not last and len(plain) != chunk_bytes:
                raise BlobError(path, counter, "short chunk before the final one")
            yield plain
            counter += 1
            if last:
                if fh.read(1):
                    raise BlobError(path, counter, "data after the final chunk")
                return


def read_blob_range(path: Path | str, key: bytes, size: int, first: int, last: int) -> Iterator[bytes]:
    """Yield plaintext bytes ``first..last`` (inclusive) of a blob whose plaintext is ``size`` bytes,
    reading and authenticating only the chunks that hold them.  The file is opened before this returns
    (a caller may unlink it afterwards); every chunk must sit where the chunk size puts it."""
    path = Path(path)
    if not 0 <= first <= last < size:
        raise ValueError(f"range {first}-{last} outside a blob of {size} bytes")
    fh = open(path, "rb")
    try:
        header, prefix, chunk_bytes = _read_header(fh, path)
    except BaseException:
        fh.close()
        raise
    return _range_chunks(fh, path, AESGCM(key), header, prefix, chunk_bytes, size, first, last)


def _range_chunks(fh, path: Path, aead: AESGCM, header: bytes, prefix: bytes, chunk_bytes: int, size: int,
                  first: int, last: int) -> Iterator[bytes]:
    aad, final = _digest(header), (size - 1) // chunk_bytes  # a full buffer is sealed as last at close
    with fh:
        for counter in range(first // chunk_bytes, last // chunk_bytes + 1):
            fh.seek(len(header) + counter * (_LEN.size + chunk_bytes + TAG_BYTES))
            want = chunk_bytes if counter < final else size - final * chunk_bytes
            raw = fh.read(_LEN.size + want + TAG_BYTES)
            if len(raw) < _LEN.size + want + TAG_BYTES or _LEN.unpack_from(raw)[0] != want + TAG_BYTES:
                raise BlobError(path, counter, "chunk missing or not where its size puts it")
            plain, is_last = _open_chunk(aead, prefix, counter, raw[_LEN.size:], aad, path)
            if is_last != (counter == final):
                raise BlobError(path, counter, "the final-chunk flag is not where the size puts it")
            base = counter * chunk_bytes
            yield plain[max(first, base) - base : min(last, base + len(plain) - 1) - base + 1]


def _open_chunk(aead: AESGCM, prefix: bytes, counter: int, ct: bytes, aad: bytes, path: Path) -> tuple[bytes, bool]:
    for last in (False, True):
        try:
            return aead.decrypt(_nonce(prefix, counter, last), ct, aad), last
        except InvalidTag:
            continue
    hint = "wrong key, modified header, " if counter == 0 else ""
    raise BlobError(path, counter, f"authentication failed ({hint}modified, reordered or substituted chunk)")
