"""Queries for notifications: the mail outbox, the problems mailed about, and who gets mail (migration 0008).

An outbox row is one mail to one user about one event; ``(event, user_id)`` is unique, so an event is mailed
to a user at most once however many nodes or rounds notice it.  Claiming a due row is a conditional update
(its ``next_attempt_us`` moved forward by a lease), so two mail workers never send the same row at once.
Functions take an open session and never commit.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from storage.sql.models import Delivery, MailOutbox, NoticeProblem, Ticket, User

QUEUED, SENT, FAILED = "queued", "sent", "failed"


class Reader(NamedTuple):
    """A user who receives mail: where and in which language."""

    user_id: int
    name: str
    role: str
    email: str
    language: str | None


class MailRow(NamedTuple):
    id: int
    event: str
    user_id: int
    recipient: str
    language: str
    subject: str
    body: str
    state: str
    attempts: int
    created_us: int
    next_attempt_us: int
    sent_us: int | None
    last_error: str | None


_MAIL_COLS = tuple(getattr(MailOutbox, f) for f in MailRow._fields)
_READER_COLS = (User.id, User.name, User.role, User.email, User.language)


# ---------------------------------------------------------------- readers


def readers_with_roles(s: Session, roles: tuple[str, ...], *, excluding_ids: tuple[int, ...] = ()) -> list[Reader]:
    """Enabled users of ``roles`` that have an e-mail address."""
    q = select(*_READER_COLS).where(User.role.in_(roles), User.disabled.is_(False), User.email.is_not(None))
    if excluding_ids:
        q = q.where(User.id.not_in(excluding_ids))
    return [Reader(*r) for r in s.execute(q.order_by(User.id))]


def reader(s: Session, user_id: int) -> Reader | None:
    """The user, if enabled and with an e-mail address."""
    row = s.execute(select(*_READER_COLS).where(User.id == user_id, User.disabled.is_(False),
                                                User.email.is_not(None))).first()
    return Reader(*row) if row else None


def set_contact(s: Session, user_id: int, *, email: str | None, language: str | None) -> None:
    s.execute(update(User).where(User.id == user_id).values(email=email, language=language))


def set_language(s: Session, user_id: int, language: str) -> None:
    s.execute(update(User).where(User.id == user_id).values(language=language))


# ---------------------------------------------------------------- the outbox


def has_event(s: Session, event: str) -> bool:
    return s.scalar(select(func.count()).select_from(MailOutbox).where(MailOutbox.event == event)) > 0


def queue(s: Session, *, event: str, user_id: int, recipient: str, language: str, subject: str, body: str,
          now_us: int) -> None:
    s.add(MailOutbox(event=event, user_id=user_id, recipient=recipient, language=language, subject=subject,
                     body=body, state=QUEUED, attempts=0, created_us=now_us, next_attempt_us=now_us))
    s.flush()


def due(s: Session, now_us: int, *, limit: int = 50) -> list[MailRow]:
    q = (select(*_MAIL_COLS).where(MailOutbox.state == QUEUED, MailOutbox.next_attempt_us <= now_us)
         .order_by(MailOutbox.next_attempt_us, MailOutbox.id).limit(limit))
    return [MailRow(*r) for r in s.execute(q)]


def claim(s: Session, row: MailRow, *, until_us: int) -> bool:
    """Take a due row for sending until ``until_us`` (a lease); False when another worker took it."""
    result = s.execute(update(MailOutbox).where(MailOutbox.id == row.id, MailOutbox.state == QUEUED,
                                                MailOutbox.next_attempt_us == row.next_attempt_us)
                       .values(next_attempt_us=until_us))
    return result.rowcount > 0


def mark_sent(s: Session, mail_id: int, *, now_us: int) -> None:
    s.execute(update(MailOutbox).where(MailOutbox.id == mail_id)
              .values(state=SENT, sent_us=now_us, attempts=MailOutbox.attempts + 1, last_error=None))


def mark_failed(s: Session, mail_id: int, *, error: str, next_attempt_us: int | None) -> None:
    """One more failed attempt; ``next_attempt_us`` None gives the mail up."""
    values = {"attempts": MailOutbox.attempts + 1, "last_error": error[:300]}
    if next_attempt_us is None:
        values["state"] = FAILED
    else:
        values["next_attempt_us"] = next_attempt_us
    s.execute(update(MailOutbox).where(MailOutbox.id == mail_id).values(**values))


def troubled(s: Session, *, limit: int = 100) -> list[MailRow]:
    """Mails given up, and mails still queued after a failed attempt: newest first."""
    q = (select(*_MAIL_COLS).where((MailOutbox.state == FAILED) |
                                   and_(MailOutbox.state == QUEUED, MailOutbox.attempts > 0))
         .order_by(MailOutbox.id.desc()).limit(limit))
    return [MailRow(*r) for r in s.execute(q)]


def counts(s: Session) -> dict[str, int]:
    rows = s.execute(select(MailOutbox.state, func.count()).group_by(MailOutbox.state))
    return {state: int(n) for state, n in rows}


def purge(s: Session, *, before_us: int) -> int:
    """Forget sent and failed mails created before ``before_us`` (they name people); returns how many."""
    result = s.execute(delete(MailOutbox).where(MailOutbox.state.in_((SENT, FAILED)),
                                                MailOutbox.created_us < before_us))
    return result.rowcount


# ---------------------------------------------------------------- what the notice rounds look for


def waiting_tickets(s: Session, *, filed_by_us: int, filed_after_us: int) -> list[tuple[int, int, int]]:
    """(id, requester_id, created_us) of requested tickets filed in (filed_after_us, filed_by_us]."""
    q = select(Ticket.id, Ticket.requester_id, Ticket.created_us).where(
        Ticket.state == "requested", Ticket.created_us <= filed_by_us, Ticket.created_us > filed_after_us)
    return [tuple(r) for r in s.execute(q.order_by(Ticket.id))]


def waiting_count(s: Session, *, excluding_requester: int | None = None) -> int:
    """Requested tickets (those filed by ``excluding_requester`` not counted: nobody decides their own)."""
    q = select(func.count()).select_from(Ticket).where(Ticket.state == "requested")
    if excluding_requester is not None:
        q = q.where(Ticket.requester_id != excluding_requester)
    return int(s.scalar(q) or 0)


def unused_expired_links(s: Session, *, now_us: int, since_us: int) -> list[tuple[int, int, int, int]]:
    """(id, ticket_id, created_by, expires_us) of links that expired in (since_us, now_us] never downloaded
    and not revoked."""
    q = select(Delivery.id, Delivery.ticket_id, Delivery.created_by, Delivery.expires_us).where(
        Delivery.expires_us <= now_us, Delivery.expires_us > since_us, Delivery.downloads == 0,
        Delivery.revoked_us.is_(None))
    return [tuple(r) for r in s.execute(q.order_by(Delivery.id))]


# ---------------------------------------------------------------- problems


class ProblemRow(NamedTuple):
    key: str
    message: str
    opened_us: int
    cleared_us: int | None


def open_problem(s: Session, key: str, message: str, *, now_us: int) -> bool:
    """Open ``key`` (or reopen it after it cleared); True only when this call opened it."""
    reopened = s.execute(update(NoticeProblem).where(NoticeProblem.key == key, NoticeProblem.cleared_us.is_not(None))
                         .values(message=message, opened_us=now_us, cleared_us=None))
    if reopened.rowcount:
        return True
    if s.get(NoticeProblem, key) is not None:
        return False
    s.add(NoticeProblem(key=key, message=message, opened_us=now_us, cleared_us=None))
    s.flush()  # a second node inserting the same key at once fails here (primary key): it did not open it
    return True


def clear_problem(s: Session, key: str, *, now_us: int) -> bool:
    result = s.execute(update(NoticeProblem).where(NoticeProblem.key == key, NoticeProblem.cleared_us.is_(None))
                       .values(cleared_us=now_us))
    return result.rowcount > 0


def problems(s: Session, *, limit: int = 200) -> list[ProblemRow]:
    """Open problems first, then cleared ones, newest first."""
    q = select(NoticeProblem.key, NoticeProblem.message, NoticeProblem.opened_us, NoticeProblem.cleared_us)
    rows = [ProblemRow(*r) for r in s.execute(q.order_by(NoticeProblem.opened_us.desc()).limit(limit))]
    return sorted(rows, key=lambda r: r.cleared_us is not None)


def open_keys(s: Session) -> set[str]:
    return set(s.scalars(select(NoticeProblem.key).where(NoticeProblem.cleared_us.is_(None))))
