"""Data subjects' requests of access (GDPR art. 15): the rules a request's ticket follows.

A request of access is a ticket (vms/access/tickets.py) with the date the request was received: it exports
footage for the data subject (``action = "export"``, ``recipient = "data_subject"``), its holds are placed
when it is filed (the footage must not expire while the request is handled, even before a manager
decides) and released when it is closed, denied or expires (after ``api.hold_grace_days``), and it is
answered within one month of receipt (article 12(3)): :func:`deadline_us`.  Its export keeps the data
subject visible and hides everyone else (vms/evidence/subject.py), and a manager other than the requester
approves the export after reviewing it before any delivery link can be made (vms/evidence/release.py).
"""

from __future__ import annotations

from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import month_later_end_of_day_us

US_PER_DAY = 86_400_000_000
MAX_AGE_DAYS = 92  # a request received longer ago than this is a typing error (its deadline passed long ago)


def check_request(*, action: str, recipient: str, received_us: int, now_us: int, cameras) -> None:
    if action != "export" or recipient != "data_subject":
        raise DomainError(Kind.INVALID, "received: a request of access exports footage for the data subject; "
                                        "use action 'export' and recipient 'data_subject'",
                                        key=N_("request.err.not_export"))
    if not cameras:
        raise DomainError(Kind.INVALID, "cameras: a request of access names the cameras to search",
                          key=N_("request.err.no_cameras"))
    if received_us > now_us:
        raise DomainError(Kind.INVALID, "received: the date the request was received cannot be in the future",
                          key=N_("request.err.future"))
    if received_us < now_us - MAX_AGE_DAYS * US_PER_DAY:
        raise DomainError(Kind.INVALID, f"received: more than {MAX_AGE_DAYS} days ago; check the date (the answer "
                                        "was due one month after it)",
                                        key=N_("request.err.too_old"), params={"days": MAX_AGE_DAYS})


def deadline_us(received_us: int, zone: str = "UTC") -> int:
    """The end of the day one calendar month after receipt, in the appliance's time zone (31 January ->
    28/29 February); article 12(3) allows an extension, which the ticket's description must then explain."""
    return month_later_end_of_day_us(received_us, zone)


def days_left(received_us: int, now_us: int, zone: str = "UTC") -> int:
    """Whole days until the deadline (negative: overdue)."""
    return (deadline_us(received_us, zone) - now_us) // US_PER_DAY
