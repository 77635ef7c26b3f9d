"""Time as the appliance keeps it: integer microseconds since the Unix epoch, UTC.

:func:`iso` is the one way microseconds become ISO 8601 text (``Z`` for UTC); it uses exact integer
arithmetic (``t_us / 1e6`` in floating point can be off by a microsecond).  Local time is for screens
only (api/web/render.py) and the manifests people read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_datetime(t_us: int) -> datetime:
    """The aware UTC datetime of ``t_us``, exact to the microsecond."""
    return EPOCH + timedelta(microseconds=t_us)


def iso(t_us: int, timespec: str = "microseconds") -> str:
    """``2026-03-01T10:00:00.000000Z``; ``timespec`` as :meth:`datetime.isoformat` (e.g. ``"seconds"``)."""
    return utc_datetime(t_us).isoformat(timespec=timespec).replace("+00:00", "Z")
