"""Audit trail queries and the hash chain's canonical form.

An entry's hash is ``HMAC-SHA256(audit key, canonical(entry))`` in lower-case hex (entries
written before the trail had a key, and trails without one: ``SHA-256(canonical(entry))``), where
``canonical`` is the UTF-8 JSON object of the entry's fields ``seq, at_us,
actor, role, action, object, ticket_id, client, outcome, detail, prev_hash``
with sorted keys, no whitespace (``separators=(",", ":")``) and non-ASCII
characters kept as they are (``ensure_ascii=False``).  ``prev_hash`` of entry 1
is 64 zeros; of entry *n* the hash of entry *n-1*.  docs/design/access.md
shows how to recompute it with stock tools.

:func:`append` must run inside the caller's transaction (it neither commits
nor rolls back).  Its first statement updates the single ``audit_head`` row,
which takes the write lock on SQLite and the row lock on PostgreSQL: appenders
queue there until the appending transaction ends, so the chain never forks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring as _json_string
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from storage.sql.models import AuditEntry, AuditHead, ServiceState

GENESIS = "0" * 64
FIELDS = ("seq", "at_us", "actor", "role", "action", "object", "ticket_id", "client", "outcome", "detail")
LIMITS = {"actor": 64, "role": 16, "action": 64, "object": 255, "client": 64, "outcome": 500, "detail": 2000}


class AuditRow(NamedTuple):
    seq: int
    at_us: int
    actor: str
    role: str
    action: str
    object: str
    ticket_id: int | None
    client: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


_COLS = tuple(getattr(AuditEntry, name) for name in AuditRow._fields)


def _reference(fields: dict, prev_hash: str) -> bytes:
    """The definition of the canonical form (see the module docstring)."""
    doc = {name: fields[name] for name in FIELDS}
    doc["prev_hash"] = prev_hash
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical(seq, at_us, actor, role, action, object, ticket_id, client, outcome, detail, prev_hash) -> bytes:
    """:func:`_reference`, about four times faster (verification hashes every entry).

    The same bytes: keys written in sorted order, strings through the JSON
    module's own string encoder, ints as JSON writes them.  Any value of
    another type (which the appliance never writes) goes through
    :func:`_reference`.  tests/unit/test_audit_canonical.py compares the two."""
    if type(seq) is int and type(at_us) is int and (ticket_id is None or type(ticket_id) is int):
        try:
            q = _json_string
            return (
                f'{{"action":{q(action)},"actor":{q(actor)},"at_us":{at_us},"client":{q(client)},'
                f'"detail":{q(detail)},"object":{q(object)},"outcome":{q(outcome)},"prev_hash":{q(prev_hash)},'
                f'"role":{q(role)},"seq":{seq},"ticket_id":{"null" if ticket_id is None else ticket_id}}}'
            ).encode()
        except TypeError:  # a field that is not a string
            pass
    fields = {"seq": seq, "at_us": at_us, "actor": actor, "role": role, "action": action, "object": object,
              "ticket_id": ticket_id, "client": client, "outcome": outcome, "detail": detail}
    return _reference(fields, prev_hash)


def canonical(fields: dict, prev_hash: str) -> bytes:
    return _canonical(*(fields[name] for name in FIELDS), prev_hash)


def _digest(data: bytes, key: bytes | None) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest() if key else hashlib.sha256(data).hexdigest()


def entry_hash(fields: dict, prev_hash: str, key: bytes | None = None) -> str:
    """The entry's hash: keyed (HMAC-SHA256) with ``key``, plain SHA-256 without."""
    return _digest(canonical(fields, prev_hash), key)


def row_hash(row, key: bytes | None = None) -> str:
    """The hash an entry should have, from its stored fields: ``row`` is an
    :class:`AuditRow` or any sequence in its field order (``hash`` last, ignored).
    A field JSON cannot hold (bytes written into a text column behind the appliance's
    back, as SQLite allows) gives ``""``, which matches no stored hash."""
    try:
        return _digest(_canonical(*row[:11]), key)
    except (TypeError, ValueError):
        return ""


def clip(name: str, value: str) -> str:
    """Cut a text field to its column width (an entry is never refused for length)."""
    limit = LIMITS[name]
    value = value.replace("\x00", "\ufffd")  # an entry is never refused: PostgreSQL text cannot hold NUL
    return value if len(value) <= limit else value[: limit - 1] + "…"


# Statements built once, on table columns (an audited request runs all three; see storage.sql.tickets.TICKET_COLUMNS)
_HEAD = AuditHead.__table__
_TAKE_SEQ = (update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=_HEAD.c.last_seq + 1)
             .returning(_HEAD.c.last_seq, _HEAD.c.last_hash))
_INSERT = AuditEntry.__table__.insert()
_SET_HASH = update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=bindparam("digest"))


def append(
    s: Session, *, at_us: int, actor: str, role: str, action: str, object: str = "", ticket_id: int | None = None,
    client: str = "", outcome: str = "ok", detail: str = "", key: bytes | None = None,
) -> AuditRow:
    """Append one entry (inside the caller's transaction) and return it; ``key``: the audit key."""
    conn = s.connection()
    # the UPDATE comes first: it serialises appenders (see module docstring); RETURNING reads the head it locked
    seq, prev = conn.execute(_TAKE_SEQ).one()
    fields = {
        "seq": int(seq), "at_us": int(at_us), "actor": clip("actor", actor), "role": clip("role", role),
        "action": clip("action", action), "object": clip("object", object), "ticket_id": ticket_id,
        "client": clip("client", client), "outcome": clip("outcome", outcome), "detail": clip("detail", detail),
    }
    digest = entry_hash(fields, prev, key)
    conn.execute(_INSERT, {**fields, "prev_hash": prev, "hash": digest})
    conn.execute(_SET_HASH, {"digest": digest})
    return AuditRow(**fields, prev_hash=prev, hash=digest)


def head(conn: Connection | Session) -> tuple[int, str] | None:
    """(last_seq, last_hash) as the appliance last wrote them; None when the head row is gone (it is made by
    the migration and only ever updated, so a missing row means someone deleted it)."""
    row = conn.execute(select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1)).one_or_none()
    if row is None:
        return None
    last_seq = row[0] if type(row[0]) is int else -1  # SQLite keeps whatever was written: -1 fits no chain
    return last_seq, row[1] if isinstance(row[1], str) else ""


def latest(conn: Connection | Session, *, action: str, object: str, outcome: str | None = None) -> AuditRow | None:
    """The newest entry with this ``action`` and ``object`` (and ``outcome``, when given; index
    ``ix_audit_log_action``)."""
    q = select(*_COLS).where(AuditEntry.action == action, AuditEntry.object == object)
    if outcome is not None:
        q = q.where(AuditEntry.outcome == outcome)
    q = q.order_by(AuditEntry.seq.desc()).limit(1)
    row = conn.execute(q).one_or_none()
    return None if row is None else AuditRow(*row)


def iter_rows(conn: Connection, *, upto_seq: int | None = None, batch: int = 10_000) -> Iterator[Sequence]:
    """Every entry (up to ``upto_seq``) in ``seq`` order as plain rows in
    :class:`AuditRow` field order, read in batches by key (memory stays flat).
    Verification reads a million of these; building an AuditRow of each
    would add a third to its time."""
    after = None
    while True:
        q = select(*_COLS).order_by(AuditEntry.seq).limit(batch)
        if upto_seq is not None:
            q = q.where(AuditEntry.seq <= upto_seq)
        if after is not None:
            q = q.where(AuditEntry.seq > after)
        rows = conn.execute(q).all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1][0]


def search(
    s: Session, *, actor: str | None = None, action: str | None = None, ticket_id: int | None = None,
    since_us: int | None = None, until_us: int | None = None, after_seq: int | None = None, limit: int = 100,
) -> list[AuditRow]:
    """Entries matching every given filter, oldest first, at most ``limit``;
    ``after_seq`` continues a previous page.  ``action`` ending in '.' matches a prefix."""
    q = select(*_COLS).order_by(AuditEntry.seq).limit(limit)
    if actor is not None:
        q = q.where(AuditEntry.actor == actor)
    if action is not None:
        q = q.where(AuditEntry.action.startswith(action, autoescape=True) if action.endswith(".")
                    else AuditEntry.action == action)
    if ticket_id is not None:
        q = q.where(AuditEntry.ticket_id == ticket_id)
    if since_us is not None:
        q = q.where(AuditEntry.at_us >= since_us)
    if until_us is not None:
        q = q.where(AuditEntry.at_us < until_us)
    if after_seq is not None:
        q = q.where(AuditEntry.seq > after_seq)
    return [AuditRow(*row) for row in s.connection().execute(q).all()]


# ---------------------------------------------------------------- changes to accounts awaiting a second person

ACCOUNT_CHANGES = ("user.add", "user.role", "user.enable", "user.reset-password")
ACCOUNT_DECISIONS = ("account.confirm", "account.reject")
PENDING, UNCONFIRMED = "pending: ", "ok: unconfirmed"  # outcomes of a change not yet confirmed


def open_account_changes(conn: Connection | Session) -> list[AuditRow]:
    """Changes to accounts that wait for a second person (pending, or made unconfirmed), oldest first."""
    q = select(*_COLS).where(AuditEntry.action.in_(ACCOUNT_CHANGES),
                             AuditEntry.outcome.startswith(PENDING) | AuditEntry.outcome.startswith(UNCONFIRMED))
    rows = [AuditRow(*r) for r in conn.execute(q.order_by(AuditEntry.seq)).all()]
    decided = set(conn.execute(select(AuditEntry.object).where(AuditEntry.action.in_(ACCOUNT_DECISIONS),
                                                               AuditEntry.outcome == "ok")).scalars())
    return [r for r in rows if f"entry:{r.seq}" not in decided]


def entry(conn: Connection | Session, seq: int) -> AuditRow | None:
    row = conn.execute(select(*_COLS).where(AuditEntry.seq == seq)).first()
    return AuditRow(*row) if row is not None else None


def max_seq(conn: Connection | Session) -> int:
    return int(conn.execute(select(func.coalesce(func.max(AuditEntry.seq), 0))).scalar_one())


def count(conn: Connection | Session) -> int:
    return int(conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def triggers_present(conn: Connection) -> bool:
    """Whether the append-only triggers are installed (verify reports their absence)."""
    if conn.dialect.name == "postgresql":
        q = text("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal")
        return int(conn.execute(q).scalar_one()) >= 2
    q = text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
    return int(conn.execute(q).scalar_one()) >= 2


# ---------------------------------------------------------------- the audit key's record

MAC_KEY_STATE = "audit.mac_key"


def mac_key_record(conn: Connection | Session) -> str | None:
    """The stored record of the audit key (JSON: wrapped key, master key id, first keyed entry), or None."""
    return conn.execute(select(ServiceState.value).where(ServiceState.name == MAC_KEY_STATE)).scalar()


def insert_mac_key_record(s: Session, value: str, now_us: int) -> None:
    """Store the audit key's record (inside the caller's transaction; a second one fails on the key)."""
    s.add(ServiceState(name=MAC_KEY_STATE, value=value, updated_us=now_us))
    s.flush()


def replace_mac_key_record(s: Session, value: str, now_us: int) -> None:
    """Store the record again (a master key rotation re-wraps the key)."""
    row = s.get(ServiceState, MAC_KEY_STATE)
    row.value, row.updated_us = value, now_us
