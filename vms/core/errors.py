"""One error vocabulary for the domain.

A :class:`DomainError` carries a ``kind``; the API maps kinds to HTTP status and
problem+json, the CLI to a message and an exit code.  Messages are written for
the person who must act on them and never contain footage, keys or passwords.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    INVALID = "invalid-input"
    NOT_FOUND = "not-found"
    FORBIDDEN = "permission-denied"
    CONFLICT = "conflict"
    PRECONDITION = "failed-precondition"
    UNAUTHENTICATED = "unauthenticated"


EXIT_CODES = {
    Kind.INVALID: 2,
    Kind.NOT_FOUND: 3,
    Kind.FORBIDDEN: 4,
    Kind.CONFLICT: 5,
    Kind.PRECONDITION: 6,
    Kind.UNAUTHENTICATED: 4,
}


class DomainError(Exception):
    """``message``: English, for logs, scripts and the API's ``detail``.  ``key`` and ``params``: the same
    message as a catalog text (a msgid of api/locale or vms/locale, with the values of its ``{fields}``), so
    pages, the API and the CLI can say it in the reader's language (vms.core.i18n); no key: ``message`` is
    shown as it is."""

    def __init__(self, kind: Kind, message: str, *, key: str = "", params: dict | None = None):
        self.kind = kind
        self.message = message
        self.key = key
        self.params = dict(params or {})
        super().__init__(message)
