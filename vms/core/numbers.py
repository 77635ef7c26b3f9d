"""Numbers typed by people or sent by clients, read strictly.

``str.isdigit`` accepts "²" and Arabic-Indic digits, which ``int`` then refuses (an error) or reads (the
wrong ticket); and ``int`` refuses texts of more than 4,300 digits.  These read ASCII digits only, of a
bounded length, and say None for anything else.
"""

from __future__ import annotations

MAX_ID = 2**62  # ids of tickets, links, entries: what the database's BIGINT keys hold


def decimal(text: str, *, max_digits: int = 19) -> int | None:
    """The number ``text`` writes in at most ``max_digits`` ASCII digits, or None."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def id_number(text: str) -> int | None:
    """An id (1 .. 2**62) written in ASCII digits, or None."""
    n = decimal(text)
    return n if n is not None and 1 <= n <= MAX_ID else None
