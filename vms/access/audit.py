"""The audit trail: appending entries inside a use case's transaction, and verifying the chain.

Contract: every use case that changes something or reveals footage writes its
entry with :func:`record` *inside its own transaction*, so the entry exists
exactly when the change does.  :func:`audited` wraps that pattern and also
records refusals: when the use case raises a :class:`DomainError`, its
transaction is rolled back and the refusal is appended in a transaction of its
own before the error propagates.

Nothing here (or anywhere in the product) updates or deletes entries; the
database refuses it too (triggers, migration 0003).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.format import audit_anchor as anchors
from storage.format.audit_anchor import Anchor
from storage.sql import audit as store
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
    """Append one entry inside the caller's transaction."""
    return store.append(s, at_us=now_us, actor=actor.name, role=actor.role, action=action, object=obj,
                        ticket_id=ticket_id, client=actor.client, outcome=outcome, detail=detail)


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


def check_chain(rows, head: tuple[int, str] | None, anchor: Anchor | None = None) -> VerifyResult:
    """Walk entries in ``seq`` order; stop at the first one that does not fit.

    Pure: ``rows`` is any iterable of :class:`storage.sql.audit.AuditRow` (or of
    rows in its field order, as :func:`storage.sql.audit.iter_rows` gives), ``head``
    the (last_seq, last_hash) the appliance recorded (None: unknown, not compared), ``anchor`` the last head a
    verification saw (kept outside the database; :mod:`storage.format.audit_anchor`)."""
    expected, prev, n = 1, store.GENESIS, 0
    row_hash = store.row_hash
    anchor_seq = anchor.seq if anchor is not None else 0
    for row in rows:
        seq, prev_hash, digest = row[0], row[10], row[11]
        if seq != expected:
            return VerifyResult(n, prev, expected, f"entry {expected} is missing (the next entry present is {seq}): deleted")
        if row_hash(row) != digest:
            return VerifyResult(n, prev, seq, f"entry {seq} does not match its own hash: its contents were changed")
        if prev_hash != prev:
            return VerifyResult(
                n, prev, seq,
                f"entry {seq} does not follow entry {seq - 1} (previous-hash mismatch): an entry was "
                "inserted, deleted or reordered here",
            )
        if seq == anchor_seq and digest != anchor.hash:  # every hash fits, but not the one verified before
            return VerifyResult(n, prev, seq, f"entry {seq} is not the entry {seq} verified at "
                                f"{iso(anchor.verified_us)}: the trail was rewritten")
        prev, expected, n = digest, expected + 1, n + 1
    if anchor_seq > n:
        return VerifyResult(n, prev, n + 1, f"entries {n + 1}..{anchor_seq} were verified at "
                            f"{iso(anchor.verified_us)} and are missing now: deleted (and the head rewound)")
    if head is None:
        return VerifyResult(n, prev)
    last_seq, last_hash = head
    if last_seq > n:
        return VerifyResult(n, prev, n + 1, f"entries {n + 1}..{last_seq} are missing at the end: deleted")
    if last_hash != prev:
        return VerifyResult(n, prev, n, f"entry {n} differs from the last entry the appliance wrote")
    return VerifyResult(n, prev)


def verify(engine: Engine, anchor: Anchor | None = None) -> VerifyResult:
    """Check the whole chain (against ``anchor`` too, when given) and that the
    append-only triggers are installed.  Whatever was done to the tables, the answer is a named finding."""
    with engine.connect() as conn:
        head = store.head(conn)
        stored = store.max_seq(conn)
        if head is None:  # the head row is written once by the migration and only ever updated
            result = check_chain(store.iter_rows(conn), None, anchor)
            problem = ("the chain's head record (table audit_head) is missing: it was deleted behind the "
                       f"appliance's back; {stored} entries are stored")
            if result.problem:
                problem += f"; and {result.problem}"
            triggers = store.triggers_present(conn)
            return VerifyResult(result.entries, result.last_hash, result.bad_seq or max(1, result.entries),
                                problem, triggers)
        result = check_chain(store.iter_rows(conn, upto_seq=max(head[0], anchor.seq if anchor else 0)), head,
                             anchor)
        # an entry beyond the head that no append accounts for was inserted behind our back
        # (read the newest entry before the head again: appends update the head first)
        newest = store.max_seq(conn)
        head_now = store.head(conn) or head
        triggers = store.triggers_present(conn)
    if result.bad_seq is None and newest > head_now[0]:
        bad = head_now[0] + 1
        result = VerifyResult(result.entries, result.last_hash, bad, f"entry {bad} was not written by the appliance: inserted")
    if not triggers:
        return VerifyResult(result.entries, result.last_hash, result.bad_seq, result.problem, False)
    return result


def verify_anchored(app) -> VerifyResult:
    """:func:`verify` against this node's anchor file, which moves forward to the
    verified head when the chain is intact.  An anchor file that cannot be read is
    a failed verification (it is kept for a person to look at)."""
    path = app.config.audit_anchor_path
    try:
        anchor = anchors.read(path)
    except anchors.AnchorError as exc:
        return VerifyResult(0, store.GENESIS, 0, f"the audit anchor {exc}; if the database was restored from a "
                            "backup on purpose, remove the anchor file (docs/operations.md, \"Restore\")")
    result = verify(app.engine, anchor)
    if result.ok and result.entries:
        advance_anchor(path, result, app.clock.now_us())
    return result


def advance_anchor(path, result: VerifyResult, now_us: int) -> None:
    """Move the anchor to a verified head; a failure to write it is logged (the verification stands)."""
    try:
        anchors.advance(path, Anchor(result.entries, result.last_hash, now_us))
    except (OSError, anchors.AnchorError) as exc:
        log.warning("the audit anchor %s could not be updated (%s)", path, exc.__class__.__name__)


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
