"""Evidence packages at rest: encrypted blobs plus a JSON sidecar each.

Layout under the package root (``DATA_DIR/exports`` by default)::

    ID.vpkg            the ZIP, encrypted (storage.format.blobs; AES-256-GCM chunks)
    ID.json            sidecar: facts about the package and its wrapped key
    ID.vpkg.partial    only while a package is being written

* Each package has its own random 32-byte key, wrapped by the master key
  (``storage.keys.keyring.wrap``, purpose ``package:ID``) and kept in the sidecar.
  The clear ZIP never exists on disk.
* The sidecar is written (atomically) only after the blob is sealed: a package
  without a sidecar does not exist.  :meth:`PackageStore.remove_partials`
  clears what a crash left (ciphertext whose key died with the process).
* :meth:`PackageStore.delete` first overwrites and removes the sidecar (the only
  copy of the wrapped key), then the blob.  It returns the facts the caller
  writes into the audit trail; this module writes no audit entries itself.

Until packages get an index table (see docs/design/export.md) the sidecars are
the registry.  ``vms keys rotate`` re-wraps package keys too
(:meth:`PackageStore.rewrap_keys`, before the old master key is replaced).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from storage.format.blobs import (
    DEFAULT_CHUNK_BYTES,
    KEY_BYTES,
    BlobError,
    BlobWriter,
    read_blob,
    read_blob_range,
)
from storage.keys.keyring import KeyError_, MasterKeyring, unwrap, wrap
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

BLOB_SUFFIX = ".vpkg"
SIDECAR_SUFFIX = ".json"
PURPOSE = "export-package"
_ID = re.compile(r"^[0-9a-f]{32}$")


def new_package_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class PackageInfo:
    """What the API, the janitor and the audit trail may know about a package (no key, no footage)."""

    package_id: str
    ticket_id: str
    cameras: tuple[str, ...]
    created_us: int
    expires_us: int | None
    size_bytes: int  # the ZIP as delivered
    stored_bytes: int  # the encrypted file
    filename: str  # suggested download name
    manifest_sha256: str
    key_fingerprint: str
    redacted: bool


class PendingPackage:
    """A package being written; :meth:`commit` makes it exist, anything else discards it."""

    def __init__(self, store: PackageStore, package_id: str):
        self.package_id = package_id
        self._store = store
        self._key = store._random(KEY_BYTES)
        self.writer = BlobWriter(store.blob_path(package_id), self._key, purpose=PURPOSE)
        self.info: PackageInfo | None = None

    def commit(self, **facts) -> PackageInfo:
        self.writer.close()
        info = PackageInfo(
            package_id=self.package_id, size_bytes=self.writer.tell(), stored_bytes=self.writer.size_bytes, **facts
        )
        try:
            self._store._write_sidecar(info, self._key)
        except BaseException:
            self._store.blob_path(self.package_id).unlink(missing_ok=True)
            raise
        self.info = info
        return info

    def abort(self) -> None:
        self.writer.abort()

    def __enter__(self) -> PendingPackage:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.info is None:
            self.abort()


@dataclass(frozen=True)
class Member:
    """A file stored uncompressed in a package's ZIP: its bytes are ZIP bytes ``offset .. offset + size_bytes``."""

    name: str
    offset: int
    size_bytes: int


class _BlobFile(io.RawIOBase):
    """A read-only, seekable view of an encrypted blob's plaintext (for :mod:`zipfile`): each read decrypts
    and authenticates only the chunks it touches."""

    def __init__(self, path: Path, key: bytes, size: int):
        self._path, self._key, self._size, self._pos = path, key, size, 0
        self._window_at, self._window = 0, b""  # the last chunk-sized span decrypted (zipfile reads in small bits)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        if not (self._window_at <= self._pos and end <= self._window_at + len(self._window)):
            last = min(self._size, max(end, self._pos + DEFAULT_CHUNK_BYTES)) - 1
            self._window_at = self._pos
            self._window = b"".join(read_blob_range(self._path, self._key, self._size, self._pos, last))
        start = self._pos - self._window_at
        data = self._window[start:start + end - self._pos]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class PackageStore:
    def __init__(
        self,
        root: Path,
        keyring: MasterKeyring,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ):
        self.root = Path(root)
        self._keyring = keyring
        self._random = random_bytes

    # -- paths -----------------------------------------------------------------------

    def _check_id(self, package_id: str) -> str:
        if not isinstance(package_id, str) or not _ID.match(package_id):
            raise DomainError(Kind.INVALID, "package id must be 32 lower-case hex digits",
                              key=N_("export.err.package_id"))
        return package_id

    def blob_path(self, package_id: str) -> Path:
        return self.root / f"{self._check_id(package_id)}{BLOB_SUFFIX}"

    def sidecar_path(self, package_id: str) -> Path:
        return self.root / f"{self._check_id(package_id)}{SIDECAR_SUFFIX}"

    # -- writing ---------------------------------------------------------------------

    def create(self, package_id: str) -> PendingPackage:
        self._check_id(package_id)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.sidecar_path(package_id).exists() or self.blob_path(package_id).exists():
            raise DomainError(Kind.CONFLICT, f"package {package_id} already exists")
        return PendingPackage(self, package_id)

    def _write_sidecar(self, info: PackageInfo, key: bytes) -> None:
        doc = asdict(info)
        doc["cameras"] = list(info.cameras)
        doc["key"] = {
            "wrapped": base64.b64encode(wrap(self._keyring.current, key, f"package:{info.package_id}")).decode(),
            "master_id": self._keyring.current_id,
        }
        self._write_json(self.sidecar_path(info.package_id), doc)

    @staticmethod
    def _write_json(path: Path, doc: dict) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def rewrap_keys(self, ring: MasterKeyring, new_key: bytes, new_id: str) -> int:
        """Master key rotation: re-wrap every package key under ``new_key`` (each
        sidecar replaced atomically; ones already under ``new_id`` are left alone, so an
        interrupted rotation finishes when run again).  Returns how many were re-wrapped."""
        count = 0
        if not self.root.is_dir():
            return 0
        for path in sorted(self.root.glob(f"*{SIDECAR_SUFFIX}")):
            if not _ID.match(path.stem):
                continue
            doc = self._sidecar(path.stem)
            if doc["key"]["master_id"] == new_id:
                continue
            purpose = f"package:{path.stem}"
            key = unwrap(ring.get(doc["key"]["master_id"]), base64.b64decode(doc["key"]["wrapped"]), purpose)
            doc["key"] = {"wrapped": base64.b64encode(wrap(new_key, key, purpose)).decode(), "master_id": new_id}
            self._write_json(path, doc)
            count += 1
        return count

    # -- reading ---------------------------------------------------------------------

    def _sidecar(self, package_id: str) -> dict:
        try:
            return json.loads(self.sidecar_path(package_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DomainError(Kind.NOT_FOUND, f"package {package_id} does not exist (expired or deleted?)",
                              key=N_("export.err.package_gone"), params={"id": package_id}) from None
        except ValueError:
            raise DomainError(Kind.PRECONDITION, f"package {package_id}: its sidecar is damaged",
                              key=N_("export.err.package_damaged"), params={"id": package_id}) from None

    @staticmethod
    def _info(doc: dict) -> PackageInfo:
        fields = {k: v for k, v in doc.items() if k != "key"}
        fields["cameras"] = tuple(fields["cameras"])
        return PackageInfo(**fields)

    def info(self, package_id: str) -> PackageInfo:
        return self._info(self._sidecar(package_id))

    def list(self) -> list[PackageInfo]:
        out = []
        if self.root.is_dir():
            for path in sorted(self.root.glob(f"*{SIDECAR_SUFFIX}")):
                if _ID.match(path.stem):
                    try:
                        out.append(self.info(path.stem))
                    except DomainError:
                        continue
        return sorted(out, key=lambda i: i.created_us)

    def _key(self, package_id: str) -> bytes:
        doc = self._sidecar(package_id)
        try:
            wrapped = base64.b64decode(doc["key"]["wrapped"])
            return unwrap(self._keyring.get(doc["key"]["master_id"]), wrapped, f"package:{package_id}")
        except KeyError_ as exc:
            raise DomainError(Kind.PRECONDITION, f"package {package_id}: its key cannot be unwrapped ({exc})",
                              key=N_("export.err.package_damaged"), params={"id": package_id}) from None
        except (KeyError, ValueError):
            raise DomainError(Kind.PRECONDITION, f"package {package_id}: its sidecar has no valid key",
                              key=N_("export.err.package_damaged"), params={"id": package_id}) from None

    def open(self, package_id: str) -> Iterator[bytes]:
        """The ZIP's bytes, chunk by chunk, each authenticated before it is yielded.
        A damaged file raises :class:`storage.format.blobs.BlobError` (naming file and chunk)."""
        return read_blob(self.blob_path(package_id), self._key(package_id))

    def members(self, package_id: str, suffix: str = ".mp4") -> list[Member]:
        """Where the package's stored (uncompressed) files ending in ``suffix`` lie inside its ZIP, read from the
        ZIP's directory by decrypting only the chunks that hold it (the clear ZIP is never assembled)."""
        size = self.info(package_id).size_bytes
        zip_file = _BlobFile(self.blob_path(package_id), self._key(package_id), size)
        try:
            with zipfile.ZipFile(zip_file) as zf:
                out = []
                for zi in zf.infolist():
                    if zi.filename.endswith(suffix) and zi.compress_type == zipfile.ZIP_STORED:
                        zip_file.seek(zi.header_offset)
                        name_len, extra_len = struct.unpack("<HH", zip_file.read(30)[26:30])
                        out.append(Member(zi.filename, zi.header_offset + 30 + name_len + extra_len, zi.file_size))
                return out
        except (BlobError, zipfile.BadZipFile, struct.error) as exc:
            raise DomainError(Kind.PRECONDITION, f"package {package_id} cannot be read: {exc}",
                              key=N_("export.err.package_damaged"), params={"id": package_id}) from None

    def read_range(self, package_id: str, first: int, last: int) -> Iterator[bytes]:
        """Bytes ``first..last`` (inclusive) of the package's ZIP, decrypting only the chunks that hold them."""
        size = self.info(package_id).size_bytes
        return read_blob_range(self.blob_path(package_id), self._key(package_id), size, first, last)

    # -- expiry and deletion -----------------------------------------------------------

    def set_expiry(self, package_id: str, expires_us: int | None) -> PackageInfo:
        doc = self._sidecar(package_id)
        doc["expires_us"] = expires_us
        self._write_json(self.sidecar_path(package_id), doc)
        return self._info(doc)

    def expired(self, now_us: int) -> list[PackageInfo]:
        return [i for i in self.list() if i.expires_us is not None and i.expires_us <= now_us]

    def delete(self, package_id: str) -> PackageInfo:
        """Destroy the package's key (sidecar overwritten, fsynced, removed), then its file."""
        sidecar = self.sidecar_path(package_id)
        info = self.info(package_id)
        size = sidecar.stat().st_size
        with open(sidecar, "r+b") as fh:
            fh.write(b"\x00" * size)
            fh.flush()
            os.fsync(fh.fileno())
        sidecar.unlink()
        self.blob_path(package_id).unlink(missing_ok=True)
        return info

    def delete_expired(self, now_us: int) -> list[PackageInfo]:
        """Delete every package whose expiry has passed; returns what was deleted (for the audit trail)."""
        return [self.delete(i.package_id) for i in self.expired(now_us)]

    def remove_partials(self) -> int:
        """Remove what a crash left behind (partial blobs, temporary sidecars, blobs without sidecar)."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.iterdir():
            stem = path.name.split(".")[0]
            orphan = path.name.endswith(BLOB_SUFFIX) and not (self.root / f"{stem}{SIDECAR_SUFFIX}").exists()
            if path.name.endswith((".partial", ".tmp")) or orphan:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
