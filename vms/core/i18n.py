"""Texts people read, from gettext catalogs managed with Babel: Danish (the default) and English.

Catalogs are ``.po`` files, one per language and domain: ``vms/locale/{da,en}/LC_MESSAGES/vms.po`` for the
texts the domain writes itself (the evidence package's README, the CLI) and ``api/locale/.../messages.po``
for the web UI and the API's refusals.  Message ids are symbolic keys (``ticket.state``,
``refused.four_eyes``); every language, English included, gives the text as its ``msgstr``.  Placeholders
are ``str.format`` fields (``{days}``); both languages name the same ones (tests/unit/test_catalogs.py).

A ``.po`` file is compiled when it is first read (Babel's ``read_po`` and ``write_mo`` into memory, then the
standard library's :class:`gettext.GNUTranslations`), once per process: there is no ``.mo`` file to build,
to ship or to forget after an edit.  A text missing from a language falls back to English, then to the key
(a gap shows on screen; the catalog test fails on it first).

Dates and numbers on screens use Babel's locale data: ``3. dec. 2026 18:04`` in Danish, ``3 Dec 2026, 18:04``
in English, always in the time zone the caller gives (the appliance's).  docs/design/i18n.md says how to add
a text.
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

DEFAULT = "da"
LANGUAGES = ("da", "en")
FALLBACK = "en"
VMS_LOCALE = Path(__file__).resolve().parent.parent / "locale"
VMS_DOMAIN = "vms"

#: how a local time is written on screen, per language (Unicode/CLDR patterns)
DATETIME = {"da": "d. MMM y HH:mm", "en": "d MMM y, HH:mm"}
DATETIME_S = {"da": "d. MMM y HH:mm:ss", "en": "d MMM y, HH:mm:ss"}


def N_(key: str) -> str:  # noqa: N802 -- gettext's name for "a message id, translated later"
    """Marks ``key`` as a message id for extraction (``pybabel extract`` finds ``N_``) without translating it."""
    return key


def language(code: str | None) -> str:
    """``code`` when it is a language of ours, else the default (Danish)."""
    return code if code in LANGUAGES else DEFAULT


def po_path(directory: Path, domain: str, lang: str) -> Path:
    return Path(directory) / lang / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def catalog(directory: Path, domain: str, lang: str) -> gettext.GNUTranslations:
    """The compiled catalog of ``domain`` in ``lang`` (fuzzy and empty entries left out, as msgfmt does)."""
    with po_path(directory, domain, lang).open("rb") as f:
        po = read_po(f, locale=lang, domain=domain)
    mo = io.BytesIO()
    write_mo(mo, po, use_fuzzy=False)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


class Translator:
    """``t(key)`` in one language, looking through the given catalogs (first found wins), then English."""

    def __init__(self, lang: str, sources: Sequence[tuple[Path, str]] = ((VMS_LOCALE, VMS_DOMAIN),)):
        self.lang = language(lang)
        order = [self.lang] + ([FALLBACK] if self.lang != FALLBACK else [])
        self._catalogs = [catalog(Path(d), dom, lg) for lg in order for d, dom in sources]

    def has(self, key: str) -> bool:
        return any(c.gettext(key) != key for c in self._catalogs)

    def __call__(self, key: str, default: str | None = None) -> str:
        """The text of ``key``; ``default`` (else the key) when no catalog has it, e.g. a word from data."""
        for c in self._catalogs:
            text = c.gettext(key)
            if text != key:
                return text
        return key if default is None else default

    gettext = __call__

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self(singular if n == 1 else plural)

    def format(self, key: str, params: dict | None = None, default: str | None = None) -> str:
        """The text of ``key`` with its ``{fields}`` filled from ``params``."""
        text = self(key, default)
        try:
            return text.format(**(params or {}))
        except (KeyError, IndexError, ValueError):
            return default if default is not None else text

    def datetime(self, moment: datetime, *, seconds: bool = False) -> str:
        """A local time (an aware datetime in the zone to show) as people in this language write it."""
        pattern = (DATETIME_S if seconds else DATETIME)[self.lang]
        return format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=self.lang)

    def number(self, value: float | int, *, digits: int = 0) -> str:
        """``1.234,5`` in Danish, ``1,234.5`` in English, with ``digits`` decimals."""
        fmt = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=fmt, locale=self.lang)


@functools.cache
def translator(lang: str) -> Translator:
    """The domain's own texts (vms/locale) in ``lang``."""
    return Translator(lang)
