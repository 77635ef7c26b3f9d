"""Notices that are due by the clock, not by a request: ticket reminders and escalations, requests of access a
week before their deadline, links that expired unused.

:func:`due_notices` is one round (tests call it with a moved clock); :class:`NoticeTimer` runs it every
``interval_s`` (started by ``vms serve`` when ``[mail]`` is set).  Each notice is queued at most once: the
outbox's ``(event, user)`` is unique, and a round first asks whether the event was queued already.  Each event is
its own transaction, so two nodes at once cost at most a refused duplicate, never a second mail.  Only events of
the last :data:`LOOK_BACK_DAYS` are looked at (a ticket waiting longer than that was reminded long ago).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.sql import access_requests as request_store
from storage.sql import outbox as store
from vms.core.periodic import Periodic
from vms.core.times import month_later_end_of_day_us
from vms.notify import outbox

log = logging.getLogger(__name__)

US_PER_H = 3_600_000_000
LOOK_BACK_DAYS = 30


def _once(app, event: str, queue) -> int:
    """Queue ``event`` (via ``queue(session)``) unless it was queued before; returns the mails queued."""
    try:
        with Session(app.engine) as s, s.begin():
            if store.has_event(s, event):
                return 0
            return queue(s)
    except IntegrityError:  # another node queued it at the same moment
        return 0


def due_notices(app) -> int:
    """Reminders, escalations and expired links due now; returns how many mails were queued."""
    config = app.config
    if not outbox.enabled(config):
        return 0
    now = app.clock.now_us()
    since = now - LOOK_BACK_DAYS * 24 * US_PER_H
    queued = 0
    for escalate, hours in ((False, config.mail.reminder_hours), (True, config.mail.escalation_hours)):
        kind = "ticket.escalation" if escalate else "ticket.reminder"
        with Session(app.engine) as s:
            waiting = store.waiting_tickets(s, filed_by_us=now - int(hours * US_PER_H), filed_after_us=since)
        for ticket_id, requester_id, created_us in waiting:
            queued += _once(app, f"{kind}:{ticket_id}", lambda s, t=ticket_id, r=requester_id, c=created_us, e=escalate:
                            outbox.ticket_reminder(s, config, ticket_id=t, requester_id=r, created_us=c, now_us=now,
                                                   escalate=e))
    with Session(app.engine) as s:
        requests = request_store.open_requests(s)
    for ticket_id, requester_id, received_us in requests:
        deadline = month_later_end_of_day_us(received_us, config.timezone)
        if deadline - now <= outbox.REQUEST_DUE_DAYS * 24 * US_PER_H:
            queued += _once(app, f"request.due:{ticket_id}", lambda s, t=ticket_id, r=requester_id, d=deadline:
                            outbox.request_due(s, config, ticket_id=t, requester_id=r, deadline_us=d, now_us=now))
    with Session(app.engine) as s:
        expired = store.unused_expired_links(s, now_us=now, since_us=since)
    for delivery_id, ticket_id, created_by, expires_us in expired:
        queued += _once(app, f"delivery.expired:{delivery_id}", lambda s, d=delivery_id, t=ticket_id, c=created_by,
                        x=expires_us: outbox.delivery_expired(s, config, delivery_id=d, ticket_id=t, created_by=c,
                                                              expires_us=x, now_us=now))
    return queued


class NoticeTimer(Periodic):
    def __init__(self, app, *, interval_s: float = 60.0):
        super().__init__("mail-notices", interval_s, lambda: due_notices(app), run_first=True)
