"""The ``vms`` command's words for people, from the ``vms`` catalog (``cli.*`` keys), in Danish or English.

The language, chosen at each call (tests change the environment):

1. ``$VMS_LANG`` when set: ``da`` or ``en`` (``da_DK.UTF-8`` and ``en-GB`` count too); any other value is refused
   with exit status 2 (:class:`LanguageError`), so a typing error does not pass unnoticed;
2. else the locale: the first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is set, when it names Danish or English
   (``da_DK.UTF-8``, ``en_GB.UTF-8``);
3. else Danish (also for ``C``, ``C.UTF-8`` and ``POSIX``, the usual locale of a server and of a service).

The configuration has no language of its own: it is shared by every node and every person, while the language is
the reader's.  What scripts read does not change with the language: ``--json`` output, the JSON line of ``vms janitor
--once``, exit statuses, and logs (English).  docs/design/i18n.md, "The command line".
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

from vms.core.i18n import DEFAULT, LANGUAGES, Translator, translator

ENV = "VMS_LANG"
LOCALE_ENV = ("LC_ALL", "LC_MESSAGES", "LANG")


class LanguageError(ValueError):
    """``$VMS_LANG`` names no language of ours."""


def _code(value: str) -> str:
    return re.split(r"[._@-]", value.strip().lower(), maxsplit=1)[0]


def choose(environ: Mapping[str, str] | None = None) -> str:
    """``da`` or ``en`` by the rule in the module's docstring."""
    environ = os.environ if environ is None else environ
    if wanted := environ.get(ENV, "").strip():
        if _code(wanted) not in LANGUAGES:
            raise LanguageError(f"{ENV}={wanted!r}: the language must be da or en / sproget skal være da eller en")
        return _code(wanted)
    for name in LOCALE_ENV:
        if value := environ.get(name, "").strip():
            return _code(value) if _code(value) in LANGUAGES else DEFAULT
    return DEFAULT


def t() -> Translator:
    """The catalog in the chosen language."""
    return translator(choose())


def say(key: str, /, **params) -> str:
    """The text of ``key`` in the chosen language with its ``{fields}`` filled."""
    return t()(key).format(**params)


def out(key: str, /, **params) -> None:
    print(say(key, **params))


def err(key: str, /, **params) -> None:
    print(say(key, **params), file=sys.stderr)
