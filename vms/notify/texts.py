"""The notification mails' words: keys of the ``vms`` gettext catalog, filled in the reader's language.

Each mail is a subject and a body, ``mail.<kind>.subject`` and ``mail.<kind>.body`` in
``vms/locale/{da,en}/LC_MESSAGES/vms.po``, with ``{placeholders}`` named the same in both languages
(tests/unit/test_catalogs.py), and the common foot ``mail.footer``.  :func:`render` picks the reader's language
(``users.language``, Danish when unset) and writes times (:class:`Moment`) and numbers as that language does
with Babel's locale data: ``3. dec. 2026 18:04`` / ``3 Dec 2026, 18:04`` in the appliance's time zone,
``1.234`` / ``1,234``.  Numbers that name something (a ticket's or a link's number) are passed as ``str`` and
shown as they are.

A mail says what happened, when, which ticket or link by its number, and where to look; never footage, a
ticket's description, a delivery's recipient or a passcode (docs/operations.md, "Notifications").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from vms.core.i18n import LANGUAGES, N_, language, translator

__all__ = ["LANGUAGES", "MAILS", "PROBLEMS", "Moment", "language", "problem_name", "render", "words"]

#: mail kind -> (subject key, body key); the keys are named here so that extraction (and the catalog test) sees them
MAILS: dict[str, tuple[str, str]] = {
    "ticket.waiting": (N_("mail.ticket_waiting.subject"), N_("mail.ticket_waiting.body")),
    "ticket.reminder": (N_("mail.ticket_reminder.subject"), N_("mail.ticket_reminder.body")),
    "ticket.escalation": (N_("mail.ticket_escalation.subject"), N_("mail.ticket_escalation.body")),
    "ticket.approved": (N_("mail.ticket_approved.subject"), N_("mail.ticket_approved.body")),
    "ticket.denied": (N_("mail.ticket_denied.subject"), N_("mail.ticket_denied.body")),
    "delivery.downloaded": (N_("mail.delivery_downloaded.subject"), N_("mail.delivery_downloaded.body")),
    "delivery.expired": (N_("mail.delivery_expired.subject"), N_("mail.delivery_expired.body")),
    "request.due": (N_("mail.request_due.subject"), N_("mail.request_due.body")),
    "problem": (N_("mail.problem.subject"), N_("mail.problem.body")),
}
FOOTER = N_("mail.footer")

#: what a problem is called in a subject, by the kind of its key
PROBLEMS: dict[str, str] = {
    "disk_forecast": N_("mail.problem.disk_forecast"),
    "camera_offline": N_("mail.problem.camera_offline"),
    "retention_violation": N_("mail.problem.retention_violation"),
    "audit_chain_broken": N_("mail.problem.audit_chain_broken"),
    "disk_low": N_("mail.problem.disk_low"),
}

SUBJECT_MAX, BODY_MAX = 300, 4000


@dataclass(frozen=True)
class Moment:
    """A time (UTC microseconds) to be written in the reader's language and the appliance's zone."""

    t_us: int


def _shown(value, lang: str, timezone: str):
    t = translator(lang)
    if isinstance(value, Moment):
        return t.datetime(datetime.fromtimestamp(value.t_us / 1e6, UTC).astimezone(ZoneInfo(timezone)))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return t.number(value, digits=0 if float(value).is_integer() else 1)


def words(key: str, lang: str | None, timezone: str = "UTC", **values) -> str:
    """The text of ``key`` in ``lang`` with its fields filled, times and numbers as the language writes them."""
    lang = language(lang)
    return translator(lang)(key).format(**{k: _shown(v, lang, timezone) for k, v in values.items()})


def render(kind: str, lang: str | None, timezone: str, **values) -> tuple[str, str]:
    """(subject, body) of mail ``kind`` in the reader's language (Danish when they have none)."""
    subject_key, body_key = MAILS[kind]
    subject = words(subject_key, lang, timezone, **values)
    body = words(body_key, lang, timezone, **values) + "\n\n" + words(FOOTER, lang)
    return subject[:SUBJECT_MAX], body[:BODY_MAX]


def problem_name(kind: str, lang: str | None) -> str:
    key = PROBLEMS.get(kind)
    return words(key, lang) if key else kind.replace("_", " ")
