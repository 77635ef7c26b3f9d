"""The words of ``vms doctor``'s findings: ``doctor.*`` keys of the ``vms`` catalog, filled in the reader's language.

A finding keeps its key and fields; its English text is the ``message`` of ``--json`` (unchanged for scripts), and
:func:`words` says it in Danish or English for people (the command, the health page).  Numbers are :class:`Num`:
``12.3`` in English, ``12,3`` in Danish, never grouped (they sit in sentences next to units).
"""

from __future__ import annotations

from dataclasses import dataclass

from vms.core.i18n import N_, translator


@dataclass(frozen=True)
class Num:
    """A number in a finding, written as the reader's language writes it (``digits=None``: as few as needed)."""

    value: float
    digits: int | None = 1

    def shown(self, lang: str) -> str:
        text = f"{self.value:g}" if self.digits is None else f"{self.value:.{self.digits}f}"
        return text.replace(".", translator(lang).number(0.5, digits=1)[1])  # the language's decimal sign


def words(key: str, params: dict, lang: str) -> str:
    """The text of a ``doctor.*`` key in ``lang`` with its fields filled (the ``vms`` catalog)."""
    return translator(lang)(key).format(**{k: v.shown(lang) if hasattr(v, "shown") else v for k, v in params.items()})


@dataclass(frozen=True)
class Parts:
    """Each camera's share of the retention: (camera, GB, Mbit/s or None for a quota, days)."""

    parts: list

    def shown(self, lang: str) -> str:
        return "; ".join(words(N_("doctor.disk.part_quota") if rate is None else N_("doctor.disk.part"),
                               {"camera": cam, "gb": gb, "rate": rate, "days": days}, lang)
                         for cam, gb, rate, days in self.parts)
