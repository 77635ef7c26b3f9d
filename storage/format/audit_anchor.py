"""The audit trail's anchor: the last verified (seq, hash), kept outside the database.

The chain and its head row (``audit_head``) live in the database, so someone who
can write to the database directly (and drop the append-only triggers) could
delete the newest entries and rewind the head, or recompute every hash after a
change: the chain would then verify.  The anchor closes that gap.  Each
successful verification (``vms audit verify``, the integrity watch) writes the
head it verified to a small file next to the key files (mode 0600, outside the
storage root and outside the database); the next verification requires the
entry at the anchor's ``seq`` to exist and to carry the anchor's hash.  Each move is
also recorded in the trail (an ``audit.anchor`` entry, :mod:`vms.access.audit`), so that a
deleted or older anchor file is noticed too.

Format: one JSON object ``{"seq": int, "hash": "<64 hex>", "verified_us": int}``, plus
``"keyed_from": int`` (the first entry sealed with the audit key, :mod:`vms.access.audit_key`) and
``"sig"``: the appliance's Ed25519 signature (hex) over the same object without ``sig`` (sorted
keys, no spaces), when the node has a signing key.  A signed anchor is a checkpoint: someone who
can write the database cannot make one, and a replaced or edited file fails its signature.
Writes are atomic (temporary file, fsync, rename).  An anchor only moves forward:
:func:`advance` never replaces one with a lower ``seq``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storage.format.fsutil import fsync_dir

HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_SEQ = 2**63 - 1  # audit_log.seq is a BIGINT
MAX_US = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z: the last time a date can show


def _whole(value, limit: int) -> bool:
    return type(value) is int and 0 <= value <= limit  # not bool, not float


class AnchorError(Exception):
    """The anchor file exists but cannot be used (unreadable or malformed)."""


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    verified_us: int
    keyed_from: int | None = None
    signed: bool = False


def payload(anchor: Anchor) -> bytes:
    """The bytes a checkpoint's signature covers."""
    doc = {"seq": anchor.seq, "hash": anchor.hash, "verified_us": anchor.verified_us}
    if anchor.keyed_from is not None:
        doc["keyed_from"] = anchor.keyed_from
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def read(path: Path, check_signature: Callable[[bytes, bytes], bool] | None = None) -> Anchor | None:
    """The anchor at ``path``; None when there is none yet.  With ``check_signature(payload, sig)``, a
    signed anchor whose signature does not verify is an AnchorError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnchorError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        doc = json.loads(text)
        seq, digest, at = doc["seq"], doc["hash"], doc["verified_us"]
    except (ValueError, KeyError, TypeError):
        raise AnchorError(f"{path}: not an audit anchor (expected seq, hash, verified_us)") from None
    if not (_whole(seq, MAX_SEQ) and isinstance(digest, str) and HASH.match(digest) and _whole(at, MAX_US)):
        raise AnchorError(f"{path}: not an audit anchor (expected seq 0..{MAX_SEQ}, a 64-hex hash, "
                          "verified_us a time up to the year 9999)")
    keyed_from, sig = doc.get("keyed_from"), doc.get("sig")
    if keyed_from is not None and not _whole(keyed_from, MAX_SEQ):
        raise AnchorError(f"{path}: not an audit anchor (keyed_from must be an entry number)")
    anchor = Anchor(seq, digest, at, keyed_from, sig is not None)
    if sig is not None and check_signature is not None:
        try:
            good = isinstance(sig, str) and check_signature(payload(anchor), bytes.fromhex(sig))
        except ValueError:
            good = False
        if not good:
            raise AnchorError(f"{path}: its signature does not verify with this appliance's signing key: the "
                              "anchor file was edited or replaced")
    return anchor


def write(path: Path, anchor: Anchor, sign: Callable[[bytes], bytes] | None = None) -> None:
    """Write ``anchor`` atomically (0600), signed with ``sign(payload)`` when given."""
    doc = json.loads(payload(anchor))
    if sign is not None:
        doc["sig"] = sign(payload(anchor)).hex()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps(doc, sort_keys=True).encode() + b"\n")
        if os.geteuid() == 0:  # 'vms audit verify' run as root: the service (owner of the data dir) must read it
            owner = os.stat(path.parent)
            os.fchown(fd, owner.st_uid, owner.st_gid)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def advance(path: Path, anchor: Anchor, sign: Callable[[bytes], bytes] | None = None,
            check_signature: Callable[[bytes, bytes], bool] | None = None) -> bool:
    """Write ``anchor`` unless the one on disk is already at or beyond its ``seq``."""
    current = read(path, check_signature)  # read after a verification that read it: an AnchorError is new
    if current is not None and current.seq >= anchor.seq:
        return False
    write(path, anchor, sign)
    return True
