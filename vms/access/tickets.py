"""Incident tickets: filing, four-eyes decisions, holds, closing and expiry.

States and transitions (pure, see :data:`TRANSITIONS` and :func:`transition_problem`)::

    requested --approve--> approved --export--> exported --deliver--> delivered
        |                     |                    |                     |
        +--deny--> denied     +--------------------+---------------------+--close--> closed
        +--withdraw (close)--> closed              +-- access window over --------> expired

``denied``, ``closed`` and ``expired`` are final.  A manager who is not the
requester decides (four-eyes).  Approval opens the access window
(``api.access_window_days``) and places one hold per camera on exactly the
ticket's window; closing or expiry releases those holds
``api.hold_grace_days`` later.

Each use case runs in one transaction with its audit entry (vms/audit.py);
state changes are conditional updates, so of two managers deciding at once
only one succeeds and the other gets a conflict naming the new state.

Expiry is lazy (:func:`expire_due` runs before tickets are read or used) and
on a timer (:class:`ExpiryTimer`, started by the API app), so holds end on
time even when nobody signs in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import access_requests as request_store
from storage.sql import auth_store, index
from storage.sql import doorlog as door_store
from storage.sql import outbox as outbox_store
from storage.sql import tickets as store
from vms.access import policy, requests
from vms.access.audit import SYSTEM, Actor, audited, record
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.periodic import Periodic
from vms.notify import outbox

log = logging.getLogger(__name__)

STATES, TRANSITIONS, transition_problem = policy.STATES, policy.TRANSITIONS, policy.transition_problem
ACTIONS = ("view", "export")
RECIPIENTS = ("internal", "police", "ssp", "data_subject")
OPEN = policy.OPEN_STATES  # approved, exported, delivered: the access window applies
FINAL = policy.FINAL_STATES
US_PER_DAY = policy.US_PER_DAY
TEXT_LIMITS = {"description": 4000, "purpose": 1000, "legal_basis": 1000, "reason": 1000}


@dataclass(frozen=True)
class TicketView:
    id: int
    state: str
    requester_id: int
    requester: str
    action: str
    recipient: str
    description: str
    purpose: str
    legal_basis: str
    start_us: int
    end_us: int
    cameras: tuple[str, ...]
    created_us: int
    updated_us: int
    decided_by: str | None
    decided_us: int | None
    decision_reason: str | None
    access_until_us: int | None
    closed_us: int | None
    doors: tuple[str, ...] = ()  # door-log scope (docs/design/doorlog.md); filled by get(), not by listings
    door_id_lookup: bool = False  # the ticket also allows asking when one CPR or card number passed
    received_us: int | None = None  # a data subject's request of access: when it was received (else None)


# ---------------------------------------------------------------- pure rules


def check_transition(state: str, target: str) -> None:
    problem = transition_problem(state, target)
    if problem:
        key = N_("ticket.err.final") if state in FINAL else N_("ticket.err.transition")
        raise DomainError(Kind.CONFLICT, problem, key=key, params={"state": state, "target": target})


def check_text(field: str, value: str, *, min_length: int = 1) -> str:
    value = value.strip()
    limit = TEXT_LIMITS[field]
    if len(value) < min_length:
        raise DomainError(Kind.INVALID, f"{field}: at least {min_length} character(s) required",
                          key=N_("input.too_short"), params={"field": field, "min": min_length})
    if len(value) > limit:
        raise DomainError(Kind.INVALID, f"{field}: at most {limit} characters (got {len(value)})",
                          key=N_("input.too_long"), params={"field": field, "max": limit, "length": len(value)})
    if any(ord(c) < 32 and c not in "\n\t\r" for c in value):
        raise DomainError(Kind.INVALID, f"{field}: control characters are not allowed",
                          key=N_("input.control_chars"), params={"field": field})
    return value


def check_window(start_us: int, end_us: int, *, now_us: int, legal_max_days: int) -> None:
    """The policy's window rule (:func:`vms.access.policy.window_refusal`) as a DomainError."""
    policy.enforce(policy.window_refusal(start_us, end_us, now_us=now_us, legal_max_days=legal_max_days))


def scope_of(t, cameras: tuple[str, ...] = ()) -> policy.TicketScope:
    """What the policy needs of a ticket row."""
    return policy.TicketScope(t.id, t.state, t.requester_id, cameras, t.start_us, t.end_us, t.access_until_us,
                              t.action)


def _enforce(principal, action: policy.Action, t, now_us: int | None = None) -> None:
    policy.enforce(policy.ticket_refusal(principal.role, principal.user_id, action, scope_of(t), now_us=now_us))


# ---------------------------------------------------------------- reading


def _view(s: Session, t, cameras: list[str] | None = None, names: dict[int, str] | None = None) -> TicketView:
    if names is None:
        names = auth_store.user_names(s, (t.requester_id, t.decided_by))
    decider = names.get(t.decided_by) if t.decided_by else None
    doors, id_lookup = door_store.ticket_doors(s, t.id)
    return TicketView(
        t.id, t.state, t.requester_id, names.get(t.requester_id, "?"), t.action, t.recipient, t.description,
        t.purpose, t.legal_basis, t.start_us, t.end_us,
        tuple(cameras if cameras is not None else store.ticket_cameras(s, t.id)), t.created_us, t.updated_us,
        decider, t.decided_us, t.decision_reason, t.access_until_us, t.closed_us, tuple(doors), id_lookup,
        request_store.received(s, [t.id]).get(t.id),
    )


def _view_row(row, cameras: list[str], names: dict[int, str], received: dict[int, int]) -> TicketView:
    """The view of a row of :data:`storage.sql.tickets.TICKET_COLUMNS` (by position: a listing builds many)."""
    (ticket_id, state, requester_id, action, recipient, description, purpose, legal_basis, start_us, end_us,
     created_us, updated_us, decided_by, decided_us, decision_reason, access_until_us, closed_us) = row
    return TicketView(
        ticket_id, state, requester_id, names.get(requester_id, "?"), action, recipient, description, purpose,
        legal_basis, start_us, end_us, tuple(cameras), created_us, updated_us,
        names.get(decided_by) if decided_by else None, decided_us, decision_reason, access_until_us, closed_us,
        received_us=received.get(ticket_id),
    )


def _load(s: Session, ticket_id: int):
    t = store.ticket(s, ticket_id)
    if t is None:
        policy.no_such_ticket(ticket_id).raise_()
    return t


def get(app, principal, ticket_id: int) -> TicketView:
    expire_due(app)
    with Session(app.engine) as s:
        t = _load(s, ticket_id)
        _enforce(principal, policy.Action.TICKET_READ, t)
        return _view(s, t)


def list_tickets(app, principal, *, states=None, camera_id=None, mine=False, limit=50, offset=0):
    """(tickets, total) visible to the principal, newest first."""
    policy.enforce(policy.role_refusal(principal.role, policy.Action.TICKET_READ))
    requester = principal.user_id if (mine or policy.own_tickets_only(principal.role)) else None
    with Session(app.engine) as s:
        if store.due_for_expiry(s, app.clock.now_us(), limit=1):  # rare: expire first, so the page shows it
            s.rollback()
            expire_due(app)
        rows, total, cams = store.list_tickets(s, states=states, requester_id=requester, camera_id=camera_id,
                                               limit=limit, offset=offset)
        names = auth_store.user_names(s, {u for row in rows for u in (row[2], row[12])})
        received = request_store.received(s, [row[0] for row in rows])
    return [_view_row(row, cams[row[0]], names, received) for row in rows], total


def waiting_count(app, principal) -> int:
    """Tickets waiting for a decision ``principal`` may make (the top bar's badge): 0 for a role that decides
    none; a manager's own tickets do not count (four-eyes)."""
    if not policy.may(principal.role, policy.Action.TICKET_DECIDE):
        return 0
    with Session(app.engine) as s:
        return outbox_store.waiting_count(s, excluding_requester=principal.user_id)


def holds(app, principal, ticket_id: int):
    get(app, principal, ticket_id)
    with Session(app.engine) as s:
        return store.holds_of(s, ticket_id)


# ---------------------------------------------------------------- use cases


def file_ticket(app, principal, *, cameras: list[str], start_us: int, end_us: int, description: str, purpose: str,
                legal_basis: str, action: str, recipient: str, doors: list[str] = (),
                door_id_lookup: bool = False, received_us: int | None = None) -> TicketView:
    """File a ticket for ``cameras`` and/or ``doors`` (the door log's, when configured) in one window.

    With ``received_us`` the ticket answers a data subject's request of access (GDPR art. 15): an export
    for the data subject, holds placed at once on its cameras and window (the footage must not expire while
    the request is handled) until the ticket is closed, denied or expires (vms/access/requests.py)."""
    now = app.clock.now_us()
    with audited(app.engine, app.clock, principal.actor, "ticket.file") as (s, entry):
        policy.enforce(policy.role_refusal(principal.role, policy.Action.TICKET_FILE))
        texts = {k: check_text(k, v) for k, v in
                 (("description", description), ("purpose", purpose), ("legal_basis", legal_basis))}
        if action not in ACTIONS:
            raise DomainError(Kind.INVALID, f"action: {action!r} is not one of {', '.join(ACTIONS)}",
                              key=N_("input.not_one_of"),
                              params={"field": "action", "value": str(action)[:40], "allowed": ", ".join(ACTIONS)})
        if recipient not in RECIPIENTS:
            raise DomainError(Kind.INVALID, f"recipient: {recipient!r} is not one of {', '.join(RECIPIENTS)}",
                              key=N_("input.not_one_of"),
                              params={"field": "recipient", "value": str(recipient)[:40], "allowed": ", ".join(RECIPIENTS)})
        check_window(start_us, end_us, now_us=now, legal_max_days=app.config.legal_max_retain_days)
        wanted, wanted_doors = sorted(set(cameras)), sorted(set(doors))
        if not wanted and not wanted_doors:
            raise DomainError(Kind.INVALID, "cameras: at least one camera (or door) is required",
                              key=N_("ticket.err.no_cameras"))
        unknown = sorted(set(wanted) - store.known_cameras(s, wanted))
        if unknown:
            raise DomainError(Kind.INVALID, f"cameras: unknown camera(s): {', '.join(unknown)}",
                              key=N_("ticket.err.unknown_cameras"), params={"cameras": ", ".join(unknown)})
        _check_doors(app, s, wanted_doors, door_id_lookup)
        if received_us is not None:
            requests.check_request(action=action, recipient=recipient, received_us=received_us, now_us=now,
                                   cameras=wanted)
        ticket_id = store.insert_ticket(s, requester_id=principal.user_id, action=action, recipient=recipient,
                                        start_us=start_us, end_us=end_us, cameras=wanted, now_us=now, **texts)
        door_store.add_ticket_doors(s, ticket_id, wanted_doors, id_lookup=door_id_lookup)
        entry.ticket_id, entry.obj = ticket_id, f"ticket:{ticket_id}"
        entry.detail = f"cameras={','.join(wanted)} window={start_us}..{end_us} action={action} recipient={recipient}"
        if wanted_doors:
            entry.detail += f" doors={','.join(wanted_doors)} door_id_lookup={door_id_lookup}"
        if received_us is not None:
            request_store.add(s, ticket_id, received_us)
            t = store.ticket(s, ticket_id)
            for cam in wanted:
                _place_hold(s, cam, t, now)
            entry.detail += f" access_request received={received_us} holds={','.join(wanted)}"
        outbox.ticket_waiting(s, app.config, ticket_id=ticket_id, requester_id=principal.user_id, created_us=now,
                              now_us=now)  # mails to the managers, queued with the ticket (vms/notify)
    # the ticket as just inserted (storage.sql.tickets.insert_ticket), without reading it back
    return TicketView(ticket_id, "requested", principal.user_id, principal.name, action, recipient, texts["description"],
                      texts["purpose"], texts["legal_basis"], start_us, end_us, tuple(wanted), now, now, None, None,
                      None, None, None, tuple(wanted_doors), bool(wanted_doors) and door_id_lookup, received_us)


def _check_doors(app, s: Session, doors: list[str], id_lookup: bool) -> None:
    if not doors:
        if id_lookup:
            raise DomainError(Kind.INVALID, "door_id_lookup: a ticket without doors has no door log to search",
                              key=N_("ticket.err.lookup_without_doors"))
        return
    if app.config.doorlog is None:
        raise DomainError(Kind.INVALID, "doors: the door log is not configured on this appliance",
                          key=N_("doorlog.err.not_configured"))
    unknown = sorted(set(doors) - set(door_store.doors(s)))
    if unknown:
        raise DomainError(Kind.INVALID, f"doors: unknown door(s): {', '.join(unknown)} (doors are known once a "
                                        "door log file naming them was imported)",
                                        key=N_("ticket.err.unknown_doors"), params={"doors": ", ".join(unknown)})


def _move(s: Session, t, target: str, now_us: int, **values) -> None:
    check_transition(t.state, target)
    if not store.move(s, t.id, from_state=t.state, to_state=target, now_us=now_us, **values):
        s.expire(t)
        raise DomainError(Kind.CONFLICT, f"ticket {t.id} changed meanwhile (it is now {_load(s, t.id).state}); reload it",
                          key=N_("ticket.err.changed"), params={"id": t.id, "state": _load(s, t.id).state})


def decide(app, principal, ticket_id: int, *, approve: bool, reason: str) -> TicketView:
    """Approve (opening the access window and placing the holds) or deny."""
    action = "ticket.approve" if approve else "ticket.deny"
    expire_due(app)
    api = app.config.api
    with audited(app.engine, app.clock, principal.actor, action, obj=f"ticket:{ticket_id}", ticket_id=ticket_id) as (s, entry):
        now = app.clock.now_us()
        t = _load(s, ticket_id)
        _enforce(principal, policy.Action.TICKET_DECIDE, t)
        reason = check_text("reason", reason)
        held_since_filing = request_store.get(s, ticket_id) is not None  # an access request: holds placed at filing
        if not approve:
            _move(s, t, "denied", now, decided_by=principal.user_id, decided_us=now, decision_reason=reason)
            entry.detail = f"reason={reason[:200]!r}"
            if held_since_filing:
                release_at = now + api.hold_grace_days * US_PER_DAY
                entry.detail += f" holds_released={store.release_holds_of(s, ticket_id, at_us=release_at)}"
            outbox.ticket_decided(s, app.config, ticket_id=ticket_id, requester_id=t.requester_id, approved=False,
                                  decided_us=now, access_until_us=None)
            return get_in(s, ticket_id)
        until = now + api.access_window_days * US_PER_DAY
        _move(s, t, "approved", now, decided_by=principal.user_id, decided_us=now, decision_reason=reason,
              access_until_us=until)
        cameras = store.ticket_cameras(s, ticket_id)
        for cam in cameras if not held_since_filing else ():
            _place_hold(s, cam, t, now)
        doors, _ = door_store.ticket_doors(s, ticket_id)
        for door in doors:
            door_store.add_hold(s, door_id=door, start_us=t.start_us, end_us=t.end_us, reason=f"ticket {t.id}",
                                now_us=now, ticket_id=t.id)
        entry.detail = f"access_until={until} holds={','.join(cameras)} window={t.start_us}..{t.end_us}"
        if doors:
            entry.detail += f" door_holds={','.join(doors)}"
        outbox.ticket_decided(s, app.config, ticket_id=ticket_id, requester_id=t.requester_id, approved=True,
                              decided_us=now, access_until_us=until)
        return get_in(s, ticket_id)


def _place_hold(s: Session, camera_id: str, t, now_us: int) -> None:
    index.add_hold(s, camera_id=camera_id, start_us=t.start_us, end_us=t.end_us, reason=f"ticket {t.id}",
                   now_us=now_us, ticket_id=t.id)


def get_in(s: Session, ticket_id: int) -> TicketView:
    s.expire_all()
    return _view(s, _load(s, ticket_id))


def close(app, principal, ticket_id: int, *, reason: str) -> TicketView:
    """Close (or withdraw) a ticket: the requester or a manager; holds end after the grace period."""
    expire_due(app)
    with audited(app.engine, app.clock, principal.actor, "ticket.close", obj=f"ticket:{ticket_id}", ticket_id=ticket_id) as (s, entry):
        now = app.clock.now_us()
        t = _load(s, ticket_id)
        _enforce(principal, policy.Action.TICKET_CLOSE, t)
        reason = check_text("reason", reason)
        _move(s, t, "closed", now, closed_us=now)
        release_at = now + app.config.api.hold_grace_days * US_PER_DAY
        released = store.release_holds_of(s, ticket_id, at_us=release_at)
        released += door_store.release_holds_of(s, ticket_id, at_us=release_at)
        entry.detail = f"reason={reason[:200]!r} holds_released={released} at={release_at}"
        return get_in(s, ticket_id)


def _mark(app, actor: Actor, ticket_id: int, target: str, detail: str) -> TicketView:
    expire_due(app)
    with audited(app.engine, app.clock, actor, f"ticket.{target}", obj=f"ticket:{ticket_id}", ticket_id=ticket_id) as (s, entry):
        now = app.clock.now_us()
        t = _load(s, ticket_id)
        if t.action != "export":
            raise DomainError(Kind.CONFLICT, f"ticket {ticket_id} asks only to view footage; file an export ticket to export",
                              key=N_("refused.view_only"), params={"id": ticket_id})
        check_open(t, now)
        if t.state != target:
            _move(s, t, target, now)
        entry.detail = detail
        return get_in(s, ticket_id)


def mark_exported(app, actor: Actor, ticket_id: int, *, detail: str = "") -> TicketView:
    """Record that a package was made from the ticket (called by the export service)."""
    return _mark(app, actor, ticket_id, "exported", detail)


def mark_delivered(app, actor: Actor, ticket_id: int, *, detail: str = "") -> TicketView:
    """Record that a recipient downloaded the ticket's package (called by the download service)."""
    view = get_unchecked(app, ticket_id)
    if view.state == "approved":
        raise DomainError(Kind.CONFLICT, f"ticket {ticket_id} has not been exported yet; export it before delivering",
                          key=N_("refused.not_exported"), params={"id": ticket_id})
    return _mark(app, actor, ticket_id, "delivered", detail)


def delivery_check(app, principal, ticket_id: int) -> TicketView:
    """The ticket, if ``principal`` may make a delivery link for its package now (the policy's
    ``Action.DELIVERY_MANAGE`` on the ticket); otherwise a DomainError saying why."""
    expire_due(app)
    with Session(app.engine) as s:
        t = _load(s, ticket_id)
        _enforce(principal, policy.Action.DELIVERY_MANAGE, t, app.clock.now_us())
        return _view(s, t)


def check_open(t, now_us: int) -> None:
    if t.state not in OPEN:
        raise DomainError(Kind.CONFLICT if t.state in FINAL else Kind.PRECONDITION,
                          f"ticket {t.id} is {t.state}; footage is available only while a ticket is approved",
                          key=N_("refused.not_open"), params={"id": t.id, "state": t.state})
    if t.access_until_us is None or now_us >= t.access_until_us:
        raise DomainError(Kind.FORBIDDEN, f"the access window of ticket {t.id} has ended",
                          key=N_("refused.window_over"), params={"id": t.id})


def get_unchecked(app, ticket_id: int) -> TicketView:
    with Session(app.engine) as s:
        return _view(s, _load(s, ticket_id))


def export_check(app, principal, ticket_id: int) -> TicketView:
    """The ticket, if ``principal`` may export from it now; otherwise a DomainError
    saying why (wrong role/person, a view-only ticket, not approved, window over)."""
    expire_due(app)
    with Session(app.engine) as s:
        t = _load(s, ticket_id)
        _enforce(principal, policy.Action.EXPORT, t, app.clock.now_us())
        return _view(s, t)


# ---------------------------------------------------------------- expiry


def expire_due(app) -> list[int]:
    """Expire open tickets whose access window has ended; their holds end
    ``hold_grace_days`` after the window did.  Returns the ids expired."""
    now = app.clock.now_us()
    with Session(app.engine) as s:
        due = [(t.id, t.state, t.access_until_us) for t in store.due_for_expiry(s, now)]
    done = []
    grace = app.config.api.hold_grace_days * US_PER_DAY
    for ticket_id, state, until in due:
        with Session(app.engine) as s, s.begin():
            if not store.move(s, ticket_id, from_state=state, to_state="expired", now_us=now, closed_us=until):
                continue  # someone else moved it meanwhile
            released = store.release_holds_of(s, ticket_id, at_us=until + grace)
            released += door_store.release_holds_of(s, ticket_id, at_us=until + grace)
            record(s, SYSTEM, "ticket.expire", now_us=now, obj=f"ticket:{ticket_id}", ticket_id=ticket_id,
                   detail=f"access window ended at {until}; holds_released={released} at={until + grace}")
        done.append(ticket_id)
    return done


class ExpiryTimer(Periodic):
    """Runs :func:`expire_due` every ``interval_s`` in a daemon thread."""

    def __init__(self, app, *, interval_s: float = 60.0):
        self.app = app
        super().__init__("ticket-expiry", interval_s, lambda: expire_due(app))


def cameras(app) -> list:
    """Cameras a ticket may name (removed ones too, while their footage lasts)."""
    with Session(app.engine) as s:
        return index.cameras(s)
