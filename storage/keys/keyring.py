"""Key material: the master key file, key wrapping and segment key derivation.

* The master key is 32 random bytes in a key file (mode 0600, outside the
  storage root).  Its id is the first 8 bytes of SHA-256 over the key, in hex;
  every wrapped key records the id of the master key that wrapped it, so a
  rotation interrupted half-way can still be read with both files present.
* Day keys (one per camera per UTC day) and held segment keys are stored only
  wrapped: AES-256-GCM under the master key, random 96-bit nonce, the key's
  purpose string (``day:CAMERA:YYYY-MM-DD`` or ``segment:ID``) as associated
  data so a wrapped key cannot be moved to another row.  Hour keys are wrapped
  the same way by their day key (``hour:CAMERA:YYYY-MM-DD:HH``).
* A segment key is derived from its hour key (or, written before hour keys, its
  day key) by the segment format (:func:`storage.format.segment.derive_segment_key`).

Nothing here logs or formats key bytes; errors name files and key ids only.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
KEY_FILE_MAGIC = b"vms-master-key-v1\n"


class KeyError_(Exception):
    """Base for key problems (named with a trailing underscore to avoid the builtin)."""


class KeyFileError(KeyError_):
    """The key file is missing, malformed or has unsafe permissions."""


class UnwrapError(KeyError_):
    """A wrapped key could not be unwrapped (wrong master key or modified row)."""


class KeyShredded(KeyError_):
    """The key was destroyed by retention; the footage it protected is gone."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"vms-key-id" + key).hexdigest()[:16]


def wrap(master: bytes, key: bytes, purpose: str, *, nonce: bytes | None = None) -> bytes:
    nonce = nonce if nonce is not None else os.urandom(12)
    return nonce + AESGCM(master).encrypt(nonce, key, purpose.encode("utf-8"))


def unwrap(master: bytes, wrapped: bytes, purpose: str) -> bytes:
    if len(wrapped) != 12 + KEY_BYTES + 16:
        raise UnwrapError(f"wrapped key for {purpose} has the wrong length")
    try:
        return AESGCM(master).decrypt(wrapped[:12], wrapped[12:], purpose.encode("utf-8"))
    except InvalidTag:
        raise UnwrapError(f"wrapped key for {purpose} does not open with the master key (wrong key file or modified row)") from None


# ---------------------------------------------------------------- key files


def unsafe_mode_reason(path: Path) -> str | None:
    """Why the key file's permissions are unsafe, or None."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"key file {path} has mode {stat.S_IMODE(mode):04o}; it must not be accessible by group or others (chmod 600)"
    return None


def write_key_file(path: Path, key: bytes | None = None) -> bytes:
    """Create a new key file with mode 0600 (never overwrites).  Returns the key."""
    key = key if key is not None else os.urandom(KEY_BYTES)
    if len(key) != KEY_BYTES:
        raise ValueError("master key must be 32 bytes")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, KEY_FILE_MAGIC + key.hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def read_key_file(path: Path, *, check_mode: bool = True) -> bytes:
    try:
        if check_mode and (reason := unsafe_mode_reason(path)):
            raise KeyFileError(reason)
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist (run 'vms init' or restore it from backup)") from None
    except PermissionError:
        raise KeyFileError(f"key file {path} cannot be read by this user") from None
    if not data.startswith(KEY_FILE_MAGIC):
        raise KeyFileError(f"key file {path} is not a vms master key file (bad first line)")
    try:
        key = bytes.fromhex(data[len(KEY_FILE_MAGIC) :].strip().decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"key file {path} is damaged (second line is not hex)") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"key file {path} is damaged (key is {len(key)} bytes, expected {KEY_BYTES})")
    return key


class MasterKeyring:
    """The current master key, plus the next one while a rotation is in progress.

    ``PATH`` is the current key; ``PATH.new`` exists only between the two steps
    of :func:`storage.keys.keystore.rotate_master_key`.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.current = read_key_file(self.path)
        self.keys = {key_id(self.current): self.current}
        pending = self.pending_path
        if pending.exists():
            nxt = read_key_file(pending)
            self.keys[key_id(nxt)] = nxt

    @property
    def pending_path(self) -> Path:
        return self.path.with_name(self.path.name + ".new")

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def get(self, master_id: str) -> bytes:
        try:
            return self.keys[master_id]
        except KeyError:
            raise UnwrapError(
                f"key was wrapped by master key {master_id}, which is not in {self.path} (restore the right key file)"
            ) from None
