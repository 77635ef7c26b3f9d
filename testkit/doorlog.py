"""Door controller exports for tests and benchmarks: CSV files in the documented format or a vendor's."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

#: a fake CPR number whose digits appear nowhere else (tests search every byte for them)
FAKE_CPR = "310771-9876"
FAKE_CPR_DIGITS = "3107719876"


def iso(t_us: int, offset_h: int = 1) -> str:
    tz = timezone(timedelta(hours=offset_h))
    return datetime.fromtimestamp(t_us / 1e6, UTC).astimezone(tz).isoformat(timespec="seconds")


def csv_default(rows: list[tuple[int, str, str]]) -> bytes:
    """The documented format: time (ISO 8601 with offset), door, CPR or card number; UTF-8, commas."""
    return ("time,door,id\n" + "".join(f"{iso(t)},{door},{ident}\n" for t, door, ident in rows)).encode()


def csv_vendor_1252(rows: list[tuple[int, str, str]], tz_name: str = "Europe/Copenhagen") -> bytes:
    """A Danish vendor's export: ';', Windows-1252, local time as DD-MM-YYYY HH:MM:SS, Danish headers."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    lines = ["Tidspunkt;Dør;CPR-nr."]
    for t, door, ident in rows:
        local = datetime.fromtimestamp(t / 1e6, UTC).astimezone(tz).strftime("%d-%m-%Y %H:%M:%S")
        lines.append(f"{local};{door};{ident}")
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


VENDOR_1252 = {"delimiter": ";", "encoding": "windows-1252", "time_format": "%d-%m-%Y %H:%M:%S",
               "columns": {"time": "Tidspunkt", "door": "Dør", "id": "CPR-nr."}}


def random_rows(n: int, start_us: int, span_us: int, *, doors: int = 8, people: int = 5000,
                seed: int = 1) -> list[tuple[int, str, str]]:
    """``n`` passages spread over [start_us, start_us + span_us) at ``doors`` doors by ``people`` people (fake
    CPR numbers, none equal to :data:`FAKE_CPR`)."""
    rnd = random.Random(seed)
    ids = [f"{rnd.randint(1, 28):02d}{rnd.randint(1, 12):02d}{rnd.randint(0, 99):02d}-{rnd.randint(0, 9999):04d}"
           for _ in range(people)]
    ids = [i for i in ids if i != FAKE_CPR]
    step = span_us // n
    return [(start_us + k * step + rnd.randint(0, max(step - 1, 0)), f"door-{rnd.randrange(doors)}",
             rnd.choice(ids)) for k in range(n)]
