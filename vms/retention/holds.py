"""Legal holds placed and released by hand (``vms hold``): each one audited, in the same transaction.

Tickets place and release their own holds (vms/access/tickets.py).  A hold placed by hand names who placed
it and why: the actor is ``cli:<os user>`` (the user behind ``sudo`` when there is one), the reason is
required (10-500 characters), and the entry (``hold.add`` / ``hold.release``) joins the audit chain that
``vms audit verify`` checks.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql.models import Hold
from vms.access.audit import Actor, record
from vms.core.errors import DomainError, Kind
from vms.core.times import iso
from vms.retention import rules

REASON_CHARS = (10, 500)


@dataclass(frozen=True)
class HoldRow:
    id: int
    camera_id: str
    start_us: int
    end_us: int
    reason: str


def cli_actor() -> Actor:
    """The person at the terminal: ``cli:<user>`` (``$SUDO_USER`` when run through sudo)."""
    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (e.g. a container)
        user = f"uid{os.getuid()}"
    return Actor(f"cli:{user}"[:64], "cli", "")


def _check_reason(reason: str) -> str:
    reason = reason.strip()
    low, high = REASON_CHARS
    if not low <= len(reason) <= high or any(ord(c) < 32 for c in reason):
        raise DomainError(Kind.INVALID, f"--reason must be {low}-{high} characters on one line "
                                        "(why the footage must be kept, or why the hold ends)")
    return reason


def place(app, actor: Actor, camera_id: str, start_us: int, end_us: int, reason: str) -> int:
    """Hold ``camera_id``'s footage in [start_us, end_us); returns the hold's id."""
    reason = _check_reason(reason)
    if end_us <= start_us:
        raise DomainError(Kind.INVALID, "--to must be after --from")
    now = app.clock.now_us()
    with Session(app.engine) as s, s.begin():
        if not any(c.id == camera_id for c in index.cameras(s)):
            raise DomainError(Kind.NOT_FOUND, f"camera {camera_id!r} is unknown to the index")
        hold_id = index.add_hold(s, camera_id=camera_id, start_us=start_us, end_us=end_us, reason=reason,
                                 now_us=now)
        record(s, actor, "hold.add", now_us=now, obj=f"hold:{hold_id}",
               detail=f"camera={camera_id} from={iso(start_us)} to={iso(end_us)} reason={reason!r}")
    return hold_id


def release(app, actor: Actor, hold_id: int, reason: str) -> None:
    """End hold ``hold_id`` now; its footage then expires by its camera's retention."""
    reason = _check_reason(reason)
    now = app.clock.now_us()
    with Session(app.engine) as s, s.begin():
        hold = s.get(Hold, hold_id)
        if hold is None:
            raise DomainError(Kind.NOT_FOUND, f"hold {hold_id} does not exist")
        if hold.released_us is not None and hold.released_us <= now:
            raise DomainError(Kind.CONFLICT, f"hold {hold_id} was already released")
        index.release_hold(s, hold_id, at_us=now)
        record(s, actor, "hold.release", now_us=now, obj=f"hold:{hold_id}", ticket_id=hold.ticket_id,
               detail=f"camera={hold.camera_id} reason={reason!r}")


def active(app) -> list[HoldRow]:
    with Session(app.engine) as s:
        return sorted(HoldRow(h.id, h.camera_id, h.start_us, h.end_us, h.reason)
                      for h in index.active_holds(s, app.clock.now_us(), rules.grace_us(app.config)))
