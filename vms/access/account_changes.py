"""Four eyes on accounts: changes that wait for a second person, and their confirmation or rejection.

A change to an account that grants or restores access to footage or administration (a new operator,
manager or administrator, a raised role, a re-enabled account, a new password for a manager or an
administrator; :func:`vms.access.policy.needs_confirmation`) takes effect only when another
administrator or the auditor confirms it (:func:`vms.access.policy.confirm_refusal`: never the person
who asked, never the account's owner), as tickets do.  The change's own audit entry is the request
(outcome ``pending: ...``, its detail the change as JSON); confirming or rejecting it is an entry of its
own (``account.confirm`` / ``account.reject``, object ``entry:<seq>``), so the list of open changes is
read from the tamper-evident trail itself.  When nobody else could confirm (a site with one
administrator and no auditor), the change is made but its entry says ``ok: unconfirmed`` and it stays on
this list, and on the auditor's pages, until someone confirms it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.sql import audit as store
from storage.sql import auth_store, index
from vms.access import policy
from vms.access.audit import Actor, audited
from vms.core.clock import Clock
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_


@dataclass(frozen=True)
class AccountChange:
    seq: int  # the change's audit entry
    at_us: int
    requester: str
    change: str  # add, role, enable, reset
    user: str
    detail: dict
    made: bool  # True: made already without a second person (flagged until confirmed); False: waits

    def describe(self) -> str:
        if self.change == "role":
            return f"role of {self.user}: {self.detail.get('from')} -> {self.detail.get('to')}"
        if self.change == "add":
            return f"new account {self.user} ({self.detail.get('role')})"
        return {"enable": f"account {self.user} enabled again",
                "reset": f"new one-time password for {self.user}"}.get(self.change, self.change)


def _parse(row: store.AuditRow) -> AccountChange | None:
    try:
        detail = json.loads(row.detail)
        change, user = detail["change"], detail["user"]
    except (ValueError, KeyError, TypeError):
        return None
    return AccountChange(row.seq, row.at_us, row.actor, change, user, detail, row.outcome.startswith(store.UNCONFIRMED))


def open_changes(engine: Engine) -> list[AccountChange]:
    """Changes waiting for a second person, and changes made without one, oldest first."""
    with engine.connect() as conn:
        return [c for c in map(_parse, store.open_account_changes(conn)) if c is not None]


def state_of(engine: Engine, user: str) -> str:
    """How the newest change to ``user``'s account took effect: ``pending`` (waits for a second person),
    ``unconfirmed`` (made without one, flagged) or ``done``."""
    for change in reversed(open_changes(engine)):
        if change.user == user:
            return "unconfirmed" if change.made else "pending"
    return "done"


def _open_change(s: Session, seq: int) -> AccountChange:
    for row in store.open_account_changes(s):
        if row.seq == seq and (change := _parse(row)) is not None:
            return change
    raise DomainError(Kind.NOT_FOUND, f"no change to an account waits at entry {seq} (it does not exist, is "
                                      "not a change to an account, or was confirmed or rejected already)",
                                      key=N_("changes.err.unknown"), params={"seq": seq})


def decide(engine: Engine, clock: Clock, actor: Actor, seq: int, *, confirm: bool, reason: str = "") -> AccountChange:
    """Confirm (the change takes effect now, or its flag is cleared) or reject (nothing happens, or a change made
    unconfirmed is undone) the change recorded at entry ``seq``; audited, refusals too."""
    action = "account.confirm" if confirm else "account.reject"
    with audited(engine, clock, actor, action, obj=f"entry:{seq}") as (s, entry):
        change = _open_change(s, seq)
        policy.enforce(policy.confirm_refusal(actor.role, actor.name, change.requester, change.user))
        user = index.user_by_name(s, change.user)
        if user is None:
            raise DomainError(Kind.CONFLICT, f"user {change.user!r} no longer exists",
                              key=N_("users.err.gone"), params={"name": change.user})
        entry.detail = f"{change.describe()}; asked for by {change.requester}" + (f"; {reason}" if reason else "")
        if confirm and not change.made:
            _apply(s, clock, user, change)
        elif not confirm and change.made:
            _undo(s, clock, user, change)
    return change


def _apply(s: Session, clock: Clock, user, change: AccountChange) -> None:
    if change.change == "role":
        auth_store.set_role(s, user.id, change.detail["to"])
        auth_store.revoke_all_of_user(s, user.id, clock.now_us())
    else:  # add, enable, reset: the account was kept disabled until now
        auth_store.set_disabled(s, user.id, False)


def _undo(s: Session, clock: Clock, user, change: AccountChange) -> None:
    if change.change == "role" and change.detail.get("from"):
        auth_store.set_role(s, user.id, change.detail["from"])
    else:  # a new, re-enabled or reset account that nobody else vouched for is shut again
        auth_store.set_disabled(s, user.id, True)
    auth_store.revoke_all_of_user(s, user.id, clock.now_us())
