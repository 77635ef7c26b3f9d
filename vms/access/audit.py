"""The audit trail: appending entries inside a use case's transaction, and verifying the chain.

Contract: every use case that changes something or reveals footage writes its
entry with :func:`record` *inside its own transaction*, so the entry exists
exactly when the change does.  :func:`audited` wraps that pattern and also
records refusals: when the use case raises a :class:`DomainError`, its
transaction is rolled back and the refusal is appended in a transaction of its
own before the error propagates.

Nothing here (or anywhere in the product) updates or deletes entries; the
database refuses it too (triggers, migration 0003).

Verification (:func:`verify_against`) reads the chain in its own connection and, when the
chain is intact and has grown, appends one ``audit.anchor`` entry in a transaction of its own
before moving the node's anchor file forward (docs/design/access.md, "Tampering").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.format import audit_anchor as anchors
from storage.format.audit_anchor import Anchor
from storage.sql import audit as store
from vms.access import audit_key
from vms.core.errors import DomainError
from vms.core.times import iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user's name and role, or ``system``; ``client`` is the client address."""

    name: str
    role: str
    client: str = ""


SYSTEM = Actor("system", "system", "")


def record(s: Session, actor: Actor, action: str, *, now_us: int, obj: str = "", ticket_id: int | None = None,
           outcome: str = "ok", detail: str = "") -> store.AuditRow:
    """Append one entry inside the caller's transaction, sealed with the trail's audit key when this
    process has it (:mod:`vms.access.audit_key`)."""
    mac = audit_key.key_for(s.get_bind())
    return store.append(s, at_us=now_us, actor=actor.name, role=actor.role, action=action, object=obj,
                        ticket_id=ticket_id, client=actor.client, outcome=outcome, detail=detail,
                        key=mac.key if mac else None)


@dataclass
class Entry:
    """The entry a use case will write; the use case may fill in details as it goes."""

    action: str
    obj: str = ""
    ticket_id: int | None = None
    outcome: str = "ok"
    detail: str = ""
    extra: dict = field(default_factory=dict)


@contextmanager
def audited(engine: Engine, clock, actor: Actor, action: str, *, obj: str = "",
            ticket_id: int | None = None) -> Iterator[tuple[Session, Entry]]:
    """One transaction for one use case, with its audit entry appended at the end.

    On :class:`DomainError` the work is rolled back, ``refused: <message>`` is
    appended in a separate transaction, and the error is re-raised."""
    entry = Entry(action, obj, ticket_id)
    try:
        with Session(engine) as s, s.begin():
            yield s, entry
            record(s, actor, entry.action, now_us=clock.now_us(), obj=entry.obj, ticket_id=entry.ticket_id,
                   outcome=entry.outcome, detail=entry.detail)
    except DomainError as exc:
        with Session(engine) as s, s.begin():
            record(s, actor, entry.action, now_us=clock.now_us(), obj=entry.obj, ticket_id=entry.ticket_id,
                   outcome=f"refused: {exc.message}", detail=entry.detail)
        raise


def record_system_event(app, *, action: str, obj: str = "", outcome: str = "ok", detail: str = "",
                        ticket_id: int | None = None) -> store.AuditRow:
    """Append an entry by the appliance itself (alarms, sweeps, expiries) in its own transaction."""
    with Session(app.engine) as s, s.begin():
        return record(s, SYSTEM, action, now_us=app.clock.now_us(), obj=obj, ticket_id=ticket_id,
                      outcome=outcome, detail=detail)


# ---------------------------------------------------------------- verification

ANCHOR_ACTION = "audit.anchor"  # the entry that records each move of a node's anchor file (object "node:<id>")
_ANCHORED = re.compile(r"^entries 1\.\.(\d+) verified")
RENUMBER_SPAN = 64  # how far a changed entry's own hash is looked for at other seqs (renumbered rows)


@dataclass(frozen=True)
class VerifyResult:
    entries: int
    last_hash: str
    bad_seq: int | None = None
    problem: str = ""
    triggers_present: bool = True

    @property
    def ok(self) -> bool:
        return self.bad_seq is None and not self.problem and self.triggers_present


def _entries(first: int, last: int, *, were: bool = False) -> str:
    if first == last:
        return f"entry {first} {'was' if were else 'is'}"
    return f"entries {first}..{last} {'were' if were else 'are'}"


def _short(digest: str) -> str:
    return f"{digest[:12]}…" if digest else "(none)"


def _not_its_hash(row, prev: str, mac: audit_key.MacKey | None = None) -> str:
    """Why an entry that does not match its own hash fails: renumbered, replaced, or changed."""
    seq, digest = row[0], row[11]

    def key_at(n: int) -> bytes | None:
        return mac.key if mac is not None and n >= mac.keyed_from else None

    if type(seq) is int:
        for other in range(max(1, seq - RENUMBER_SPAN), seq + RENUMBER_SPAN + 1):
            if other != seq and store.row_hash((other, *row[1:11]), key_at(other)) == digest:
                how = ("an entry was inserted before it, or entries were reordered" if other < seq
                       else "an entry before it was deleted, or entries were reordered")
                return f"entry {seq} is entry {other} renumbered (its hash fits seq {other}, not {seq}): {how}"
    if row[10] != prev:
        return (f"entry {seq} matches neither its own hash nor entry {seq - 1} (it names {_short(row[10])} as "
                f"its predecessor's hash, entry {seq - 1}'s is {_short(prev)}): it was replaced or inserted")
    own = key_at(seq) if type(seq) is int else None
    if own is not None and store.row_hash(row) == digest:
        return (f"entry {seq} is not sealed with the audit key: its hash is a plain SHA-256 of its fields, which "
                f"anyone who can write the database can compute, but every entry from {mac.keyed_from} on is "
                "sealed: it was forged")
    return (f"entry {seq} does not match its own {'seal' if own else 'hash'} (it stores {_short(digest)}, its "
            f"fields give {_short(store.row_hash(row, own))}): its contents were changed")


def check_chain(rows, head: tuple[int, str] | None, anchor: Anchor | None = None,
                mac: audit_key.MacKey | None = None) -> VerifyResult:
    """Walk entries in ``seq`` order; stop at the first one that does not fit.

    Pure: ``rows`` is any iterable of :class:`storage.sql.audit.AuditRow` (or of
    rows in its field order, as :func:`storage.sql.audit.iter_rows` gives), ``head``
    the (last_seq, last_hash) the appliance recorded (None: unknown, not compared), ``anchor`` the last head a
    verification saw (kept outside the database; :mod:`storage.format.audit_anchor`), ``mac`` the trail's
    audit key: entries from ``mac.keyed_from`` on must be sealed with it, earlier ones are plain SHA-256."""
    expected, prev, n = 1, store.GENESIS, 0
    row_hash = store.row_hash
    anchor_seq = anchor.seq if anchor is not None else 0
    keyed_from, key = (mac.keyed_from, mac.key) if mac is not None else (None, None)
    for row in rows:
        seq, prev_hash, digest = row[0], row[10], row[11]
        if seq != expected:
            return VerifyResult(n, prev, expected, f"entry {expected} is missing (the next entry present is {seq}): deleted")
        if row_hash(row, key if keyed_from is not None and seq >= keyed_from else None) != digest:
            return VerifyResult(n, prev, seq, _not_its_hash(row, prev, mac))
        if prev_hash != prev:
            return VerifyResult(
                n, prev, seq,
                f"entry {seq} does not follow entry {seq - 1} (previous-hash mismatch: it names "
                f"{_short(prev_hash)}, entry {seq - 1}'s hash is {_short(prev)}): an entry was inserted, "
                "deleted or reordered here",
            )
        if seq == anchor_seq and digest != anchor.hash:  # every hash fits, but not the one verified before
            return VerifyResult(n, prev, seq, f"entry {seq} is not the entry {seq} verified at "
                                f"{iso(anchor.verified_us)} (its hash is {_short(digest)}, the audit anchor "
                                f"records {_short(anchor.hash)}): the trail was rewritten, or the anchor file "
                                "replaced")
        prev, expected, n = digest, expected + 1, n + 1
    if anchor_seq > n:
        gone = "is" if anchor_seq == n + 1 else "are"
        return VerifyResult(n, prev, n + 1, f"{_entries(n + 1, anchor_seq, were=True)} verified at "
                            f"{iso(anchor.verified_us)} and {gone} missing now: deleted (and the head rewound), "
                            "or the anchor file replaced")
    if head is None:
        return VerifyResult(n, prev)
    last_seq, last_hash = head
    if last_seq > n:
        return VerifyResult(n, prev, n + 1, f"{_entries(n + 1, last_seq)} missing at the end: deleted (the head, "
                            f"table audit_head, says the appliance wrote {last_seq} entries)")
    if last_hash != prev:
        return VerifyResult(n, prev, n, f"entry {n} differs from the last entry the appliance wrote (table "
                            f"audit_head records the hash {_short(last_hash)}, entry {n}'s is {_short(prev)})")
    return VerifyResult(n, prev)


def _trail_key(conn, engine: Engine, anchor: Anchor | None) -> tuple[audit_key.MacKey | None, str]:
    """The audit key to check the chain with, and what is wrong with its record ("" when nothing is)."""
    value = store.mac_key_record(conn)
    loaded = audit_key.key_for(engine)
    record = "the audit key's record (service_state 'audit.mac_key')"
    if value is None:
        if anchor is not None and anchor.keyed_from is not None:
            return None, (f"{record} is missing, but the audit anchor records that every entry from "
                          f"{anchor.keyed_from} on is sealed with it: it was deleted")
        if loaded is not None:
            return loaded, f"{record} is missing, but this process loaded it at start: it was deleted"
        return None, ""  # a trail that never had a key (no appliance has opened it since the upgrade)
    try:
        doc = audit_key.parse_record(value)
    except audit_key.RecordError as exc:
        return loaded, str(exc)
    if loaded is None:
        return None, ("this process has not loaded the audit key (it opens with the appliance), so the sealed "
                      "entries cannot be checked")
    if doc["keyed_from"] != loaded.keyed_from:
        return loaded, (f"{record} says entries are sealed from {doc['keyed_from']} on, but it said "
                        f"{loaded.keyed_from} when this process started: it was changed")
    if anchor is not None and anchor.keyed_from not in (None, loaded.keyed_from):
        return loaded, (f"the audit anchor records that entries are sealed from {anchor.keyed_from} on, the "
                        f"database says from {loaded.keyed_from}: {record} was changed, or the anchor replaced")
    return loaded, ""


def verify(engine: Engine, anchor: Anchor | None = None) -> VerifyResult:
    """Check the whole chain (against ``anchor`` too, when given) and that the
    append-only triggers are installed.  Whatever was done to the tables, the answer is a named finding."""
    with engine.connect() as conn:
        mac, key_problem = _trail_key(conn, engine, anchor)
        result = _verify_chain(conn, anchor, mac)
    if key_problem:
        problem = key_problem + (f"; and {result.problem}" if result.problem else "")
        return VerifyResult(result.entries, result.last_hash, result.bad_seq, problem, result.triggers_present)
    return result


def _verify_chain(conn, anchor: Anchor | None, mac: audit_key.MacKey | None) -> VerifyResult:
    head = store.head(conn)
    stored = store.max_seq(conn)
    anchor_seq = min(anchor.seq, stored) if anchor else 0  # no entry lies beyond the newest one stored
    if head is None:  # the head row is written once by the migration and only ever updated
        result = check_chain(store.iter_rows(conn), None, anchor, mac)
        problem = ("the chain's head record (table audit_head) is missing: it was deleted behind the "
                   f"appliance's back; {stored} entries are stored")
        if result.problem:
            problem += f"; and {result.problem}"
        triggers = store.triggers_present(conn)
        return VerifyResult(result.entries, result.last_hash, result.bad_seq or max(1, result.entries),
                            problem, triggers)
    result = check_chain(store.iter_rows(conn, upto_seq=max(head[0], anchor_seq)), head, anchor, mac)
    # an entry beyond the head that no append accounts for was inserted behind our back
    # (read the newest entry before the head again: appends update the head first)
    newest = store.max_seq(conn)
    head_now = store.head(conn) or head
    triggers = store.triggers_present(conn)
    if result.bad_seq is None and newest > head_now[0]:
        bad = head_now[0] + 1
        result = VerifyResult(result.entries, result.last_hash, bad, f"entry {bad} was not written by the "
                              f"appliance: inserted (table audit_head says the appliance wrote {head_now[0]} entries)")
    if not triggers:
        return VerifyResult(result.entries, result.last_hash, result.bad_seq, result.problem, False)
    return result


def check_anchor(engine: Engine, anchor: Anchor | None, path, node_id: str) -> str:
    """What is wrong with this node's anchor file, judged by the trail's own record of it
    (the newest ``audit.anchor`` entry of the node); ``""`` when nothing is.  A trail with no such
    entry has never been anchored on this node (a fresh install): no anchor file is fine then."""
    with engine.connect() as conn:
        marker = store.latest(conn, action=ANCHOR_ACTION, object=f"node:{node_id}")
    if marker is None:
        return ""
    found = _ANCHORED.match(marker.detail) if isinstance(marker.detail, str) else None
    verified = int(found.group(1)) if found else 0
    written = iso(marker.at_us) if type(marker.at_us) is int and 0 <= marker.at_us <= anchors.MAX_US else "?"
    if anchor is None:
        return (f"the audit anchor {path} is missing, but entry {marker.seq} records that it was written at "
                f"{written} (entries 1..{verified} verified): the file was deleted or moved; if the "
                "database was restored from a backup on purpose, run 'vms audit verify --new-anchor' "
                "(docs/operations.md, \"Restore\")")
    if anchor.seq < verified:
        return (f"the audit anchor {path} names entry {anchor.seq} (verified at {iso(anchor.verified_us)}), but "
                f"entry {marker.seq} records that entries 1..{verified} were verified and anchored at "
                f"{written}: the anchor file was replaced by an older one (or could not be written; "
                "see the log)")
    return ""


def checkpoint_signing(signing_key_path) -> tuple:
    """(sign, check) for checkpoints with the node's Ed25519 signing key; (None, None) without one."""
    path = Path(signing_key_path) if signing_key_path is not None else None
    if path is None or not path.is_file():
        return None, None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        log.warning("audit checkpoints are not signed: the signing key %s cannot be read (%s)", path,
                    exc.__class__.__name__)
        return None, None
    if not isinstance(key, Ed25519PrivateKey):
        return None, None
    public = key.public_key()

    def check(data: bytes, sig: bytes) -> bool:
        try:
            public.verify(sig, data)
            return True
        except InvalidSignature:
            return False

    return key.sign, check


def verify_against(engine: Engine, path, node_id: str, clock, signing_key_path=None) -> VerifyResult:
    """:func:`verify` against the node's anchor file at ``path``, which moves forward to the
    verified head when the chain is intact.  An anchor file that cannot be read, is missing
    or is older than the trail records is a failed verification (it is kept for a person to look at)."""
    sign, check = checkpoint_signing(signing_key_path)
    try:
        anchor = anchors.read(path, check)
    except anchors.AnchorError as exc:
        alone = verify(engine)  # said too, so that the reader knows whether the database looks intact on its own
        problem = (f"the audit anchor {exc}; if the database was restored from a backup on purpose, run "
                   "'vms audit verify --new-anchor' (docs/operations.md, \"Restore\")")
        if alone.problem:
            problem += f"; and {alone.problem}"
        return VerifyResult(0, store.GENESIS, None, problem, alone.triggers_present)
    result = verify(engine, anchor)
    if result.bad_seq is None:
        problem = check_anchor(engine, anchor, path, node_id)
        if problem:
            return VerifyResult(result.entries, result.last_hash, None, problem, result.triggers_present)
    if result.ok and result.entries:
        advance_anchor(engine, path, node_id, result, clock.now_us(), sign=sign, check=check)
    return result


def entries_since_checkpoint(app) -> int:
    """How many entries the trail has beyond this node's last checkpoint (the anchor file)."""
    try:
        anchor = anchors.read(app.config.audit_anchor_path)
    except anchors.AnchorError:
        anchor = None
    with app.engine.connect() as conn:
        return store.max_seq(conn) - (anchor.seq if anchor is not None else 0)


def verify_anchored(app) -> VerifyResult:
    """:func:`verify_against` this node's anchor file (the integrity watch, the API)."""
    return verify_against(app.engine, app.config.audit_anchor_path, app.config.node_id, app.clock,
                          app.config.signing_key_path)


def advance_anchor(engine: Engine, path, node_id: str, result: VerifyResult, now_us: int, *,
                   replacing: str = "", sign=None, check=None) -> None:
    """Move the anchor to a verified head.  The move is recorded first in the trail (an
    ``audit.anchor`` entry naming the verified head), and the anchor then names that entry
    when it directly follows the head (so an idle trail is not anchored again and again).
    A failure to write the file is logged (the verification stands)."""
    try:
        current = None if replacing else anchors.read(path, check)
    except anchors.AnchorError:
        current = None  # read just before: a new problem, for the next verification to name
    if current is not None and current.seq >= result.entries:
        return
    detail = f"entries 1..{result.entries} verified (last hash {result.last_hash}); anchor of node {node_id} " + (
        f"made anew, {replacing}" if replacing else "moved forward")
    with Session(engine) as s, s.begin():
        row = record(s, SYSTEM, ANCHOR_ACTION, now_us=now_us, obj=f"node:{node_id}", detail=detail)
    mac = audit_key.key_for(engine)
    keyed_from = mac.keyed_from if mac is not None else None
    target = (Anchor(row.seq, row.hash, now_us, keyed_from) if row.prev_hash == result.last_hash
              else Anchor(result.entries, result.last_hash, now_us, keyed_from))
    try:
        if replacing:
            anchors.write(path, target, sign)
        else:
            anchors.advance(path, target, sign, check)
        log.info("audit checkpoint: %s", anchors.payload(target).decode())  # to the journal too
    except (OSError, anchors.AnchorError) as exc:
        log.warning("the audit anchor %s could not be updated (%s)", path, exc.__class__.__name__)


def new_anchor(engine: Engine, path, node_id: str, now_us: int, signing_key_path=None) -> VerifyResult:
    """Start the anchor again on purpose (after restoring the database from a backup): the chain
    must verify on its own; the old anchor file, if any, is kept beside as ``<name>.replaced-<now_us>``
    and the trail records the replacement with the old anchor's content."""
    result = verify(engine)
    if not result.ok or not result.entries:
        return result
    replacing = "no anchor file before"
    if path.exists() or path.is_symlink():
        try:
            old = anchors.read(path)
            was = f"seq {old.seq}, hash {old.hash}, verified at {iso(old.verified_us)}" if old else "unreadable"
        except anchors.AnchorError:
            was = "unreadable"
        aside = path.with_name(f"{path.name}.replaced-{now_us}")
        path.rename(aside)
        replacing = f"the previous anchor ({was}) kept as {aside.name}"
    sign, check = checkpoint_signing(signing_key_path)
    advance_anchor(engine, path, node_id, result, now_us, replacing=replacing, sign=sign, check=check)
    return result


# ---------------------------------------------------------------- reading (auditors)

AuditRow = store.AuditRow


def latest_page_start(engine: Engine, page: int) -> int:
    """The ``after_seq`` that shows the newest ``page`` entries."""
    with engine.connect() as conn:
        return max(0, store.max_seq(conn) - page)


def search(engine: Engine, **filters) -> list[store.AuditRow]:
    """Entries matching ``filters`` (see :func:`storage.sql.audit.search`), oldest first."""
    with Session(engine) as s:
        return store.search(s, **filters)


def iter_search(engine: Engine, *, page: int = 5000, **filters) -> Iterator[store.AuditRow]:
    """Every entry matching ``filters``, page by page (for CSV export)."""
    after = filters.pop("after_seq", None)
    while True:
        rows = search(engine, after_seq=after, limit=page, **filters)
        yield from rows
        if len(rows) < page:
            return
        after = rows[-1].seq
