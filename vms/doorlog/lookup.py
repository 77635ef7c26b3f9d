"""Reading the door log: only inside an approved ticket's doors, window and access period.

Two questions (docs/design/doorlog.md, "Lookups"):

* :func:`at_doors` -- who passed these doors in this span (times and identifiers);
* :func:`of_identifier` -- when did this CPR or card number pass the ticket's doors in this span, only when the
  ticket says so (``door_id_lookup``).

The policy decides (:func:`vms.access.policy.door_lookup_refusal`); every lookup, permitted or refused, is one
audit entry with its scope (ticket, doors, span, how many passages), never an identifier in clear: a search by
identifier is recorded as its kind and a reference (the first 8 bytes of its keyed hash under the window's first
live day key, which the day's shred makes meaningless).  Nothing is written but the audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.keys.doorlog_keys import DoorlogKeys
from storage.sql import doorlog as q
from storage.sql import tickets as ticket_store
from vms.access import policy, tickets
from vms.access.audit import audited
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.doorlog import csvfile
from vms.doorlog.ingest import utc_day

MAX_ROWS = 10_000


@dataclass(frozen=True)
class PassageView:
    at_us: int
    door_id: str
    identifier: str  # as people read it (DDMMYY-SSSS or the card number); None-safe: "" when unreadable
    kind: str  # cpr or card


def _open_all(app, s: Session, rows) -> list[PassageView]:
    keys = DoorlogKeys(app.keys.keyring).by_ids(s, {r.key_id for r in rows})
    out = []
    for r in rows:
        key = keys.get(r.key_id)
        if key is None:  # shredded between the query and now: the passage is gone
            continue
        ident = key.open(r.id_sealed)
        out.append(PassageView(r.at_us, r.door_id, csvfile.display_identifier(ident), ident.split(b":")[0].decode()))
    return out


def _ticket_scope(s: Session, principal, ticket_id: int):
    t = ticket_store.ticket(s, ticket_id)
    if t is None:
        policy.no_such_ticket(ticket_id).raise_()
    doors, id_lookup = q.ticket_doors(s, ticket_id)
    return t, tuple(doors), id_lookup


def _check(app, s, principal, ticket_id, wanted_doors, start_us, end_us, *, by_identifier: bool):
    if app.config.doorlog is None:
        raise DomainError(Kind.PRECONDITION, "the door log is not configured ([doorlog] in the config file)",
                          key=N_("doorlog.err.not_configured"))
    t, doors, id_lookup = _ticket_scope(s, principal, ticket_id)
    start_us = t.start_us if start_us is None else start_us
    end_us = t.end_us if end_us is None else end_us
    wanted = tuple(sorted(set(wanted_doors))) if wanted_doors else doors
    policy.enforce(policy.door_lookup_refusal(
        principal.role, principal.user_id, tickets.scope_of(t), doors, id_lookup, wanted, start_us, end_us,
        by_identifier=by_identifier, now_us=app.clock.now_us()))
    return wanted, start_us, end_us


def at_doors(app, principal, ticket_id: int, *, doors: list[str] | None = None, start_us: int | None = None,
             end_us: int | None = None) -> list[PassageView]:
    """Passages at ``doors`` (default: all the ticket's) in [start_us, end_us) (default: the ticket's window)."""
    tickets.expire_due(app)
    with audited(app.engine, app.clock, principal.actor, "doorlog.lookup", obj=f"ticket:{ticket_id}",
                 ticket_id=ticket_id) as (s, entry):
        entry.detail = f"by=door doors={','.join(doors or [])} span={start_us}..{end_us}"
        wanted, start_us, end_us = _check(app, s, principal, ticket_id, doors, start_us, end_us, by_identifier=False)
        found = _open_all(app, s, q.entries_at_doors(s, wanted, start_us, end_us, limit=MAX_ROWS))
        entry.detail = f"by=door doors={','.join(wanted)} span={start_us}..{end_us} passages={len(found)}"
        return found


def of_identifier(app, principal, ticket_id: int, identifier: str, *, doors: list[str] | None = None,
                  start_us: int | None = None, end_us: int | None = None) -> list[PassageView]:
    """When ``identifier`` (a CPR or card number) passed the ticket's doors in the span; the ticket must allow it."""
    tickets.expire_due(app)
    ident = csvfile.normalise_identifier(identifier or "")
    with audited(app.engine, app.clock, principal.actor, "doorlog.lookup", obj=f"ticket:{ticket_id}",
                 ticket_id=ticket_id) as (s, entry):
        entry.detail = f"by=identifier doors={','.join(doors or [])} span={start_us}..{end_us}"
        wanted, start_us, end_us = _check(app, s, principal, ticket_id, doors, start_us, end_us, by_identifier=True)
        if ident is None:
            raise DomainError(Kind.INVALID, "identifier: neither a CPR number (DDMMYY-SSSS) nor a card number "
                                            "(4-32 letters or digits)", key=N_("doorlog.err.identifier"))
        keys = DoorlogKeys(app.keys.keyring).live_between(s, utc_day(start_us), utc_day(end_us - 1))
        hashes = [k.digest(ident) for k in keys]
        found = _open_all(app, s, q.entries_with_hashes(s, hashes, wanted, start_us, end_us, limit=MAX_ROWS))
        kind = ident.split(b":")[0].decode()
        ref = hashes[0][:8].hex() if hashes else "-"
        entry.detail = (f"by=identifier kind={kind} ref={ref} doors={','.join(wanted)} span={start_us}..{end_us} "
                        f"passages={len(found)}")
        return found


def door_ids(app) -> list[str]:
    """The doors known to the door log (for the ticket form)."""
    with Session(app.engine) as s:
        return q.doors(s)
