"""Door-log keys: one data key per UTC day, wrapped by the master key, and the sealing of identifiers.

The same hierarchy as footage (docs/design/keys.md): the master key wraps each door-log day key
(``aad = "doorlog:day:YYYY-MM-DD"``); a day's entries are sealed under keys derived from it (HKDF-SHA256):

* ``seal`` key: AES-256-GCM of the identifier, ``nonce(12) || ciphertext+tag``, aad ``vms-doorlog-id``;
* ``hash`` key: HMAC-SHA256 of the identifier, first 16 bytes, for equality lookups within the day.

Shredding a day key (``wrapped`` set to NULL) makes both unrecoverable: a copy of the rows can neither be
decrypted nor tested against a guessed CPR number (the hash is keyed).  Entries under a legal hold are re-sealed,
before their day is shredded, under a key of their own (label ``held:DAY:N``), shredded once the hold ends.
Methods take the caller's session and do not commit.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

from storage.keys.keyring import KEY_BYTES, KeyError_, KeyShredded, MasterKeyring, unwrap, wrap
from storage.sql import doorlog as q

SEAL_INFO, HASH_INFO, ID_AAD = b"vms-doorlog-seal-v1", b"vms-doorlog-hash-v1", b"vms-doorlog-id"
HASH_BYTES = 16


class SealError(KeyError_):
    """A sealed identifier does not open (modified row or wrong key)."""


def _purpose(label: str) -> str:
    return f"doorlog:{label}"


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


@dataclass
class DoorKey:
    """The usable form of one door-log key (memory only)."""

    key_id: int
    label: str
    data_key: bytes = field(repr=False)
    fresh: bool = False  # made in the caller's transaction: no stored entry is under it yet

    def __post_init__(self) -> None:
        self._aead = AESGCM(_derive(self.data_key, SEAL_INFO))
        self._mac = _derive(self.data_key, HASH_INFO)

    def digest(self, identifier: bytes) -> bytes:
        return hmac.digest(self._mac, identifier, "sha256")[:HASH_BYTES]

    def seal(self, identifier: bytes, nonce: bytes | None = None) -> bytes:
        nonce = nonce if nonce is not None else os.urandom(12)
        return nonce + self._aead.encrypt(nonce, identifier, ID_AAD)

    def seal_many(self, identifiers: Sequence[bytes]) -> list[bytes]:
        """:meth:`seal` of each identifier, each with its own random nonce (drawn in one call): the import's
        hot path, without a method call and a ``urandom`` call per entry."""
        nonces = os.urandom(12 * len(identifiers))
        encrypt = self._aead.encrypt
        return [nonces[j:j + 12] + encrypt(nonces[j:j + 12], ident, ID_AAD)
                for j, ident in zip(range(0, 12 * len(identifiers), 12), identifiers, strict=True)]

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], ID_AAD)
        except InvalidTag:
            raise SealError(f"a door-log identifier under key {self.key_id} does not open (modified row)") from None


class DoorlogKeys:
    def __init__(self, keyring: MasterKeyring, random_bytes: Callable[[int], bytes] = os.urandom):
        self.keyring = keyring
        self._random = random_bytes

    def _new(self, s: Session, label: str, day: str, now_us: int) -> DoorKey:
        key = self._random(KEY_BYTES)
        key_id = q.insert_key(s, label=label, day=day, wrapped=wrap(self.keyring.current, key, _purpose(label)),
                              master_id=self.keyring.current_id, now_us=now_us)
        return DoorKey(key_id, label, key, fresh=True)

    def _usable(self, row) -> DoorKey:
        if row.wrapped is None:
            raise KeyShredded(f"door-log key {row.label} was shredded")
        return DoorKey(row.id, row.label, unwrap(self.keyring.get(row.master_id), row.wrapped, _purpose(row.label)))

    def for_day(self, s: Session, day: str, *, now_us: int) -> DoorKey:
        """The day key of ``day`` (YYYY-MM-DD, UTC), made on first use; a shredded day is refused."""
        row = q.key_by_label(s, f"day:{day}")
        return self._new(s, f"day:{day}", day, now_us) if row is None else self._usable(row)

    def by_ids(self, s: Session, ids) -> dict[int, DoorKey]:
        """The live keys among ``ids`` (shredded ones are left out: their entries are unreadable)."""
        return {row.id: self._usable(row) for row in q.keys_by_ids(s, ids) if row.wrapped is not None}

    def live_between(self, s: Session, first_day: str, last_day: str) -> list[DoorKey]:
        """Every live key (day and held) of the days ``first_day``..``last_day``: an identifier's hash under
        each is what its entries in that span can carry."""
        return [self._usable(row) for row in q.live_keys_between(s, first_day, last_day)]

    def new_held(self, s: Session, day: str, *, now_us: int) -> DoorKey:
        """A fresh key for ``day``'s held entries, re-sealed before the day key is shredded."""
        return self._new(s, f"held:{day}:{q.count_keys_of_day(s, day)}", day, now_us)

    def shred(self, s: Session, key_id: int, *, now_us: int) -> bool:
        return q.shred_key(s, key_id, now_us=now_us)


def rewrap_all(s: Session, ring: MasterKeyring, new_key: bytes, new_id: str) -> int:
    """Re-wrap every live door-log key under ``new_key`` (master key rotation); returns how many."""
    n = 0
    for row in q.live_keys(s):
        if row.master_id == new_id:
            continue
        plain = unwrap(ring.get(row.master_id), row.wrapped, _purpose(row.label))
        q.rewrap_key(s, row.id, wrap(new_key, plain, _purpose(row.label)), new_id)
        n += 1
    return n
