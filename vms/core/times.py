"""Time as the appliance keeps it: integer microseconds since the Unix epoch, UTC.

:func:`iso` is the one way microseconds become ISO 8601 text (``Z`` for UTC); it uses exact integer
arithmetic (``t_us / 1e6`` in floating point can be off by a microsecond).  Local time is for screens
only (api/web/render.py) and the manifests people read.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_datetime(t_us: int) -> datetime:
    """The aware UTC datetime of ``t_us``, exact to the microsecond."""
    return EPOCH + timedelta(microseconds=t_us)


def iso(t_us: int, timespec: str = "microseconds") -> str:
    """``2026-03-01T10:00:00.000000Z``; ``timespec`` as :meth:`datetime.isoformat` (e.g. ``"seconds"``)."""
    return utc_datetime(t_us).isoformat(timespec=timespec).replace("+00:00", "Z")


def month_later_end_of_day_us(t_us: int, zone: str = "UTC") -> int:
    """The end (23:59:59) of the day one calendar month after ``t_us``'s day in ``zone`` (31 January -> 28/29
    February): GDPR's "within one month" for a request received at ``t_us``."""
    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(t_us / 1e6, UTC).astimezone(tz).date()
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    end = datetime(year, month, min(day.day, calendar.monthrange(year, month)[1]), 23, 59, 59, tzinfo=tz)
    return int(end.timestamp()) * 1_000_000
