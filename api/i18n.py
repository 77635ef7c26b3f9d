"""The web UI's words in Danish (default) and English, from gettext catalogs.

The texts are in ``api/locale/{da,en}/LC_MESSAGES/messages.po`` (msgid: a key such as ``nav.signout``;
msgstr: the text), read through :mod:`vms.core.i18n` (Babel compiles them when first read), with the
domain's own catalog (``vms/locale``) behind them.  ``translator(lang)("key")`` returns the text; a key
missing from a language falls back to English and then to the key itself, so a gap shows on screen
instead of failing (tests/unit/test_catalogs.py fails first: every key the code names has a non-empty
Danish text, and Danish and English use the same placeholders).

A refusal from the domain (:class:`vms.core.errors.DomainError`) carries a ``key`` and ``params``;
:func:`error_text` shows it in the reader's language, and its English ``message`` when the catalog has no
text for the key.  How to add a text: docs/design/i18n.md.
"""

from __future__ import annotations

import functools
from pathlib import Path

from vms.core import i18n as core
from vms.core.errors import DomainError

DEFAULT = core.DEFAULT
LANGUAGES = core.LANGUAGES
LOCALE = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
SOURCES = ((LOCALE, DOMAIN), (core.VMS_LOCALE, core.VMS_DOMAIN))


def accept_language(header: str | None) -> str:
    """The language of ours an ``Accept-Language`` header prefers most (``da`` when it names neither)."""
    best, best_q = DEFAULT, 0.0
    for part in (header or "")[:500].split(","):
        tag, _, q = part.strip().partition(";q=")
        code = tag.strip().lower().split("-")[0]
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if code in LANGUAGES and weight > best_q:
            best, best_q = code, weight
    return best


def translator(lang: str | None) -> core.Translator:
    """``t(key)``; ``t(key, default)`` gives ``default`` for a key neither language has (for words from
    data, e.g. a deletion reason the catalog does not know yet).  Unknown languages get Danish."""
    return _translator(core.language(lang))


@functools.cache
def _translator(lang: str) -> core.Translator:
    return core.Translator(lang, SOURCES)


#: params that hold domain words, shown through the catalog (``state`` "approved" -> "godkendt"; ``field``
#: "purpose" -> "formål": the name of an input field, shown as its name when the catalog has no ``field.*``)
WORDS = {"state": "state.", "target": "state.", "role": "role.", "roles": "role.", "field": "field."}


def words(t: core.Translator, params: dict) -> dict:
    """``params`` with the domain words in the reader's language (a list or tuple becomes "a, b")."""
    out = dict(params)
    for name, prefix in WORDS.items():
        value = out.get(name)
        if isinstance(value, list | tuple):
            out[name] = ", ".join(t(prefix + str(v), str(v)) for v in value)
        elif isinstance(value, str):
            out[name] = t(prefix + value, value)
    return out


def reason(t: core.Translator, refusal) -> str:
    """A refusal's (or domain error's) reason as the reader reads it, as written in the catalog (often a
    clause that follows "Not possible now: "): the text of its key with its params, else its English message."""
    if refusal.key and t.has(refusal.key):
        return t.format(refusal.key, words(t, refusal.params), default=refusal.message)
    return refusal.message


def error_text(t: core.Translator, exc: DomainError) -> str:
    """A domain error shown on its own, as a sentence: :func:`reason` with a capital letter and a full stop (an
    error without a catalog text: its English message as it is, e.g. "max_downloads: ...")."""
    if not (exc.key and t.has(exc.key)):
        return exc.message
    text = reason(t, exc).strip()
    if not text:
        return exc.message
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?)" else text + "."
