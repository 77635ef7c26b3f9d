"""The notification mails' words, in Danish (the default) and English.

Each mail is a subject and a body with ``{placeholders}``; :func:`text` picks the reader's language.  A mail
says what happened, when, which ticket or link by its number, and where to look; never footage, a ticket's
description, a delivery's recipient or a passcode (docs/operations.md, "Notifications").
``tests/unit/test_notify_texts.py`` checks that both languages have the same mails and placeholders.
"""

from __future__ import annotations

DEFAULT = "da"
LANGUAGES = ("da", "en")

_FOOT = {
    "da": "\n\nDenne mail er sendt automatisk af videoarkivet. Den indeholder ingen optagelser; alt om sagen står "
          "på siden, når du er logget ind.",
    "en": "\n\nThis mail was sent automatically by the video archive. It holds no footage; everything about the "
          "matter is on the page once you have signed in.",
}

MAILS: dict[str, dict[str, tuple[str, str]]] = {
    "da": {
        "ticket.waiting": (
            "Sag {ticket} venter på en afgørelse",
            "Hej {name}\n\nEn medarbejder har bedt om adgang til videooptagelser i sag {ticket}, oprettet {filed}. "
            "Sagen venter på, at en leder godkender eller afviser den.\n\nÅbn sagen: {link}"),
        "ticket.reminder": (
            "Påmindelse: sag {ticket} venter stadig",
            "Hej {name}\n\nSag {ticket}, oprettet {filed}, har nu ventet i {hours} timer på en afgørelse.\n\n"
            "Åbn sagen: {link}"),
        "ticket.escalation": (
            "Sag {ticket} har ventet i {hours} timer uden afgørelse",
            "Hej {name}\n\nSag {ticket}, oprettet {filed}, er endnu ikke godkendt eller afvist. Mailen går til "
            "alle ledere, så én af jer kan tage den.\n\nÅbn sagen: {link}"),
        "ticket.approved": (
            "Din sag {ticket} er godkendt",
            "Hej {name}\n\nDin sag {ticket} er godkendt {decided}. Du har adgang til optagelserne i sagen indtil "
            "{until}.\n\nÅbn sagen: {link}"),
        "ticket.denied": (
            "Din sag {ticket} er afvist",
            "Hej {name}\n\nDin sag {ticket} er afvist {decided}. Begrundelsen står på sagen.\n\nÅbn sagen: {link}"),
        "delivery.downloaded": (
            "Udtrækket i sag {ticket} er hentet",
            "Hej {name}\n\nModtageren har hentet udtrækket gennem link nr. {delivery} i sag {ticket} ({when}). "
            "Det var download {count} af {limit}.\n\nSe udtrækket: {link}"),
        "request.due": (
            "Anmodning om indsigt i sag {ticket} skal besvares senest {deadline}",
            "Hej {name}\n\nSag {ticket} er en anmodning om indsigt fra en person, der er blevet filmet. Den skal "
            "besvares senest {deadline}, og sagen er ikke afsluttet endnu.\n\nÅbn sagen: {link}"),
        "delivery.expired": (
            "Linket i sag {ticket} udløb uden at blive brugt",
            "Hej {name}\n\nLink nr. {delivery} i sag {ticket} udløb {when}, uden at modtageren hentede "
            "udtrækket. Lav et nyt link, hvis modtageren stadig skal have det.\n\nSe udtrækket: {link}"),
        "problem": (
            "Problem på videoarkivet: {what}",
            "Hej {name}\n\nVideoarkivet har fundet et problem ({when}):\n\n{message}\n\nDu får én mail pr. "
            "problem; den næste kommer først, når dette er løst og opstår igen.\n\nSe status: {link}"),
    },
    "en": {
        "ticket.waiting": (
            "Ticket {ticket} is waiting for a decision",
            "Hello {name}\n\nA member of staff has asked for access to recorded footage in ticket {ticket}, filed "
            "{filed}. It is waiting for a manager to approve or deny it.\n\nOpen the ticket: {link}"),
        "ticket.reminder": (
            "Reminder: ticket {ticket} is still waiting",
            "Hello {name}\n\nTicket {ticket}, filed {filed}, has now waited {hours} hours for a decision.\n\n"
            "Open the ticket: {link}"),
        "ticket.escalation": (
            "Ticket {ticket} has waited {hours} hours without a decision",
            "Hello {name}\n\nTicket {ticket}, filed {filed}, has been neither approved nor denied. This mail goes "
            "to every manager, so that one of you can take it.\n\nOpen the ticket: {link}"),
        "ticket.approved": (
            "Your ticket {ticket} was approved",
            "Hello {name}\n\nYour ticket {ticket} was approved on {decided}. You have access to its footage until "
            "{until}.\n\nOpen the ticket: {link}"),
        "ticket.denied": (
            "Your ticket {ticket} was denied",
            "Hello {name}\n\nYour ticket {ticket} was denied on {decided}. The reason is on the ticket.\n\n"
            "Open the ticket: {link}"),
        "delivery.downloaded": (
            "The package of ticket {ticket} was downloaded",
            "Hello {name}\n\nThe recipient downloaded the package through link no. {delivery} of ticket {ticket} "
            "({when}). That was download {count} of {limit}.\n\nSee the package: {link}"),
        "request.due": (
            "Request of access in ticket {ticket} must be answered by {deadline}",
            "Hello {name}\n\nTicket {ticket} is a request of access from a person who was filmed. It must be "
            "answered by {deadline}, and the ticket is not closed yet.\n\nOpen the ticket: {link}"),
        "delivery.expired": (
            "The link of ticket {ticket} expired unused",
            "Hello {name}\n\nLink no. {delivery} of ticket {ticket} expired on {when} without the recipient "
            "downloading the package. Make a new link if the recipient still needs it.\n\nSee the package: {link}"),
        "problem": (
            "Problem on the video archive: {what}",
            "Hello {name}\n\nThe video archive found a problem ({when}):\n\n{message}\n\nYou get one mail per "
            "problem; the next comes only once this one has cleared and happens again.\n\nSee the status: {link}"),
    },
}

#: what a problem is called in a subject, by the kind of its key
PROBLEMS: dict[str, dict[str, str]] = {
    "da": {"disk_forecast": "disken rækker ikke til opbevaringstiden", "camera_offline": "et kamera er offline",
           "retention_violation": "optagelser er ikke slettet til tiden",
           "audit_chain_broken": "revisionsloggen kan ikke verificeres", "disk_low": "disken er næsten fuld"},
    "en": {"disk_forecast": "the disk will not hold the retention", "camera_offline": "a camera is offline",
           "retention_violation": "footage was not deleted on time",
           "audit_chain_broken": "the audit trail does not verify", "disk_low": "the disk is nearly full"},
}


def language_of(preferred: str | None) -> str:
    return preferred if preferred in LANGUAGES else DEFAULT


def text(kind: str, language: str | None, **values) -> tuple[str, str]:
    """(subject, body) of mail ``kind`` in the reader's language (Danish when they have none)."""
    lang = language_of(language)
    subject, body = MAILS[lang][kind]
    return subject.format(**values)[:300], (body.format(**values) + _FOOT[lang])[:4000]


def problem_name(kind: str, language: str | None) -> str:
    names = PROBLEMS[language_of(language)]
    return names.get(kind, kind.replace("_", " "))
