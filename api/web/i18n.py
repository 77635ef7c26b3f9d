"""The web UI's words in Danish (default) and English.

``translator(lang)("key")`` returns the text; a key missing from a language
falls back to English and then to the key itself, so a gap shows on screen
instead of failing (tests/e2e/test_web_i18n.py checks that both catalogues
have the same keys and that every key a template uses exists).  Messages from
the domain (why something was refused) are shown as the domain words them
(English).
"""

from __future__ import annotations

from collections.abc import Callable

from api.web import texts_notify
from api.web.texts_da import DA as _DA
from api.web.texts_en import EN as _EN

DA = {**_DA, **texts_notify.DA}  # notifications and the health page have a catalogue file of their own
EN = {**_EN, **texts_notify.EN}

DEFAULT = "da"
LANGUAGES = ("da", "en")

CATALOGUES = {"da": DA, "en": EN}


def translator(lang: str) -> Callable[..., str]:
    """``t(key)``; ``t(key, default)`` gives ``default`` for a key neither language has
    (for words from data, e.g. a deletion reason the catalogue does not know yet)."""
    primary = CATALOGUES.get(lang, DA)

    def t(key: str, default: str | None = None) -> str:
        return primary.get(key) or EN.get(key) or (key if default is None else default)

    return t
