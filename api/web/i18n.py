"""The web pages' name for :mod:`api.i18n` (the texts, from the gettext catalogs in api/locale)."""

from api.i18n import DEFAULT, LANGUAGES, accept_language, error_text, reason, translator, words

__all__ = ["DEFAULT", "LANGUAGES", "accept_language", "error_text", "reason", "translator", "words"]
