"""Queue notification mails: one row per reader in the outbox, inside the caller's transaction.

A use case (a ticket filed or decided, a download) calls one of these with its own session, so the mail exists
exactly when the event does and the request never waits for a mail server: :mod:`vms.notify.sender` sends the
rows later.  With no ``[mail]`` section nothing is queued.  Readers without an e-mail address get nothing
(their pages still show everything).  Each mail is written in its reader's language (``users.language``,
Danish when unset) from the ``vms`` catalog, with times and numbers as that language writes them, and names the
event by numbers and times only (:mod:`vms.notify.texts`).

Recipients:

* a ticket filed, and its reminder: every enabled manager with an address except the requester (who cannot
  decide their own ticket); its escalation: every manager with an address;
* a decision: the requester;
* a download, or a link that expired unused: the manager who made the link;
* a problem (:func:`problem`): every administrator and auditor with an address;
* a request of access a week before its deadline (:func:`request_due`): its requester and every manager.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.sql import outbox as store
from vms.notify import texts
from vms.notify.texts import Moment

MANAGER, ADMIN, AUDITOR = "manager", "admin", "auditor"
REQUEST_DUE_DAYS = 7  # a request of access not answered this close to its deadline is mailed about, once


def enabled(config) -> bool:
    return getattr(config, "mail", None) is not None


def base_url(config) -> str:
    return (config.mail.public_url or config.delivery.public_url or "").rstrip("/")


def _send(s: Session, config, readers, event: str, kind: str, now_us: int, **values) -> int:
    for r in readers:
        lang = texts.language(r.language)
        subject, body = texts.render(kind, lang, config.timezone, name=r.name, **values)
        store.queue(s, event=event, user_id=r.user_id, recipient=r.email, language=lang, subject=subject,
                    body=body, now_us=now_us)
    return len(readers)


def _ticket_values(config, ticket_id: int, created_us: int) -> dict:
    return {"ticket": str(ticket_id), "filed": Moment(created_us), "link": f"{base_url(config)}/tickets/{ticket_id}"}


def ticket_waiting(s: Session, config, *, ticket_id: int, requester_id: int, created_us: int, now_us: int) -> int:
    """A ticket was filed: the managers who may decide it."""
    if not enabled(config):
        return 0
    readers = store.readers_with_roles(s, (MANAGER,), excluding_ids=(requester_id,))
    return _send(s, config, readers, f"ticket.waiting:{ticket_id}", "ticket.waiting", now_us,
                 **_ticket_values(config, ticket_id, created_us))


def ticket_reminder(s: Session, config, *, ticket_id: int, requester_id: int, created_us: int, now_us: int,
                    escalate: bool) -> int:
    """A ticket still waits: a reminder to who may decide it, or the escalation to every manager."""
    kind = "ticket.escalation" if escalate else "ticket.reminder"
    hours = config.mail.escalation_hours if escalate else config.mail.reminder_hours
    readers = store.readers_with_roles(s, (MANAGER,), excluding_ids=() if escalate else (requester_id,))
    return _send(s, config, readers, f"{kind}:{ticket_id}", kind, now_us, hours=hours,
                 **_ticket_values(config, ticket_id, created_us))


def ticket_decided(s: Session, config, *, ticket_id: int, requester_id: int, approved: bool, decided_us: int,
                   access_until_us: int | None) -> int:
    """A ticket was approved or denied: its requester."""
    if not enabled(config) or (reader := store.reader(s, requester_id)) is None:
        return 0
    kind = "ticket.approved" if approved else "ticket.denied"
    until = Moment(access_until_us) if access_until_us else ""
    return _send(s, config, [reader], f"{kind}:{ticket_id}", kind, decided_us, ticket=str(ticket_id),
                 decided=Moment(decided_us), until=until, link=f"{base_url(config)}/tickets/{ticket_id}")


def delivery_downloaded(s: Session, config, *, delivery_id: int, ticket_id: int, created_by: int, count: int,
                        limit: int, now_us: int) -> int:
    """A recipient downloaded through a link: the manager who made it (one mail per download)."""
    if not enabled(config) or (reader := store.reader(s, created_by)) is None:
        return 0
    return _send(s, config, [reader], f"delivery.downloaded:{delivery_id}:{count}", "delivery.downloaded", now_us,
                 ticket=str(ticket_id), delivery=str(delivery_id), when=Moment(now_us), count=count, limit=limit,
                 link=f"{base_url(config)}/exports")


def delivery_expired(s: Session, config, *, delivery_id: int, ticket_id: int, created_by: int, expires_us: int,
                     now_us: int) -> int:
    """A link expired without a download: the manager who made it."""
    if (reader := store.reader(s, created_by)) is None:
        return 0
    return _send(s, config, [reader], f"delivery.expired:{delivery_id}", "delivery.expired", now_us,
                 ticket=str(ticket_id), delivery=str(delivery_id), when=Moment(expires_us),
                 link=f"{base_url(config)}/exports")


def request_due(s: Session, config, *, ticket_id: int, requester_id: int, deadline_us: int, now_us: int) -> int:
    """A request of access is due within :data:`REQUEST_DUE_DAYS` days: its requester and the managers."""
    readers = {r.user_id: r for r in store.readers_with_roles(s, (MANAGER,))}
    if (requester := store.reader(s, requester_id)) is not None:
        readers.setdefault(requester.user_id, requester)
    return _send(s, config, list(readers.values()), f"request.due:{ticket_id}", "request.due", now_us,
                 ticket=str(ticket_id), deadline=Moment(deadline_us), link=f"{base_url(config)}/tickets/{ticket_id}")


def problem(s: Session, config, *, key: str, kind: str, messages: dict[str, str], now_us: int) -> int:
    """A problem was found (once per problem until it clears): every administrator and auditor.
    ``messages``: the problem in words, per language."""
    readers = store.readers_with_roles(s, (ADMIN, AUDITOR))
    n = 0
    for r in readers:
        lang = texts.language(r.language)
        subject, body = texts.render("problem", lang, config.timezone, name=r.name,
                                     what=texts.problem_name(kind, lang), when=Moment(now_us),
                                     message=messages.get(lang) or messages["en"], link=f"{base_url(config)}/health")
        store.queue(s, event=f"problem:{key}:{now_us}"[:128], user_id=r.user_id, recipient=r.email, language=lang,
                    subject=subject, body=body, now_us=now_us)
        n += 1
    return n
