"""Reading a door controller's CSV export as a whole (pure: bytes and settings in, rows or problems out).

The documented default: a header line ``time,door,id``, then one passage per line: an ISO 8601 time with a
UTC offset, a door id, and a CPR number (``DDMMYY-SSSS`` or ten digits) or a card number (4-32 letters or
digits), UTF-8, comma-separated.  ``[doorlog]`` maps vendor exports (column names, time format, ``;``,
Windows-1252).

Every problem names its line and what is wrong, and never repeats a field's value: a CPR number in the wrong
column must not end up in a log or a report.  A file with any problem yields no rows.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from vms.core.doorlog_config import DOOR_ID, DoorlogConfig

CPR = re.compile(r"^(\d{6})-?(\d{4})$")
CARD = re.compile(r"^[A-Za-z0-9]{4,32}$")
MAX_PROBLEMS = 50  # named in a report; the count says how many more
FUTURE_SLACK_US = 3_600_000_000  # a controller's clock may run an hour ahead


class Passage(NamedTuple):  # a tuple: a file has a million of them
    at_us: int
    door_id: str
    identifier: bytes  # b"cpr:DDMMYYSSSS" or b"card:..." (never logged)


@dataclass
class Parsed:
    passages: list[Passage] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def report(self) -> str:
        """The problems as text for people (no field values)."""
        shown = [f"line {n}: {why}" for n, why in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more line(s) with problems")
        return "\n".join(shown)


def normalise_identifier(value: str) -> bytes | None:
    """``cpr:DDMMYYSSSS`` for a CPR number (with or without the dash), ``card:X`` for a card number, else None."""
    value = value.strip()
    if m := CPR.match(value):
        return f"cpr:{m[1]}{m[2]}".encode()
    if CARD.match(value):
        return f"card:{value.upper()}".encode()
    return None


def display_identifier(identifier: bytes) -> str:
    """An identifier as people read it: a CPR number as DDMMYY-SSSS, a card number as is."""
    kind, _, value = identifier.decode().partition(":")
    return f"{value[:6]}-{value[6:]}" if kind == "cpr" else value


_SIXTY = {f"{n:02d}": n for n in range(60)}  # minutes and seconds as ISO 8601 writes them


class _TimeReader:
    """Reads a time per line.  ISO 8601 times of the common form ``YYYY-MM-DDTHH:MM:SS`` with an offset (or
    without: then refused as before) are read by the hour: the date, hour and offset are parsed once per
    distinct hour of the file (``datetime``, so they are checked exactly as before) and the minutes and seconds
    are added; ``timestamp()`` per line cost more than the rest of the line.  Any other form (fractions,
    basic format, a vendor's ``strptime`` format) is parsed line by line."""

    def __init__(self, fmt: str, tz: ZoneInfo):
        self.fmt, self.tz = fmt, tz
        self._hours: dict[str, int | str] = {}

    def __call__(self, value: str) -> int | str:
        """UTC microseconds, or the reason the value is not a time (without the value)."""
        value = value.strip()
        if (self.fmt == "iso8601" and len(value) >= 19 and value[13] == ":" and value[16] == ":"
                and value[4] == "-" and value[7] == "-" and (len(value) == 19 or value[19] in "+-Z")):
            minute, second = _SIXTY.get(value[14:16]), _SIXTY.get(value[17:19])
            if minute is not None and second is not None:
                hour = value[:13] + value[19:]  # what the hour's parse depends on: date, hour, offset
                base = self._hours.get(hour)
                if base is None:
                    base = self._hours[hour] = self._parse(value[:13] + ":00:00" + value[19:])
                if not isinstance(base, str):
                    return base + (minute * 60 + second) * 1_000_000
        return self._parse(value)

    def _parse(self, value: str) -> int | str:
        try:
            t = datetime.fromisoformat(value) if self.fmt == "iso8601" else datetime.strptime(value, self.fmt)
        except ValueError:
            if self.fmt == "iso8601":
                return "time: not an ISO 8601 time (expected e.g. 2026-12-03T21:04:05+01:00)"
            return f"time: does not match the time format {self.fmt!r}"
        if t.tzinfo is None:
            if self.fmt == "iso8601":
                return "time: has no UTC offset (expected e.g. 2026-12-03T21:04:05+01:00 or ...Z)"
            t = t.replace(tzinfo=self.tz)
        return int(t.timestamp()) * 1_000_000 + t.microsecond


def _decode(data: bytes, encoding: str, parsed: Parsed) -> str | None:
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8" else "cp1252")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = " (is it Windows-1252? set [doorlog] encoding)" if encoding == "utf-8" else ""
        parsed.problems.append((line, f"not valid {encoding} text{hint}"))
        return None


def _columns(header: list[str], cfg: DoorlogConfig) -> tuple[int, int, int] | str:
    names = [h.strip().lower() for h in header]
    wanted = {"time": cfg.columns.time, "door": cfg.columns.door, "id": cfg.columns.id}
    out = []
    for what, name in wanted.items():
        if name.strip().lower() not in names:
            return (f"header: no column {name!r} (the {what} column, [doorlog.columns] {what}); the header names "
                    f"{len(names)} column(s); is the delimiter {cfg.delimiter!r} right?")
        out.append(names.index(name.strip().lower()))
    return tuple(out)


def parse(data: bytes, cfg: DoorlogConfig, *, tz: ZoneInfo, now_us: int) -> Parsed:
    """Every passage of the file, or every problem (a file with problems yields no passages)."""
    parsed = Parsed()
    text = _decode(data, cfg.encoding, parsed)
    if text is None:
        return parsed
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=cfg.delimiter, strict=True)
    try:
        header = next(reader, None)
        while header is not None and not any(f.strip() for f in header):
            header = next(reader, None)
    except csv.Error:
        parsed.problems.append((reader.line_num, "header: not valid CSV (unbalanced quotes?)"))
        return parsed
    if header is None:
        parsed.problems.append((1, "the file is empty (expected a header line, e.g. time,door,id)"))
        return parsed
    cols = _columns(header, cfg)
    if isinstance(cols, str):
        parsed.problems.append((reader.line_num, cols))
        return parsed
    t_col, d_col, i_col = cols
    width = max(cols) + 1
    read_time = _TimeReader(cfg.time_format, tz)
    passages, problems = parsed.passages, parsed.problems
    doors_ok: dict[str, bool] = {}  # doors and people repeat: each distinct value is checked once
    idents: dict[str, bytes | None] = {}
    latest, lines, new_passage = now_us + FUTURE_SLACK_US, 0, tuple.__new__  # a Passage without its __new__
    try:
        for fields in reader:  # the hot loop of an import: a million lines a day at a large site
            if len(fields) < width or not fields[t_col].strip():
                if not "".join(fields).strip():
                    continue  # a blank line
                lines += 1
                if len(fields) < width:
                    problems.append((reader.line_num, f"{len(fields)} field(s), expected at least {width} "
                                                      f"(delimiter {cfg.delimiter!r})"))
                    continue
            else:
                lines += 1
            at_us = read_time(fields[t_col])
            door = fields[d_col].strip()
            raw = fields[i_col]
            ident = idents[raw] if raw in idents else idents.setdefault(raw, normalise_identifier(raw))
            door_ok = doors_ok[door] if door in doors_ok else doors_ok.setdefault(door, DOOR_ID.match(door) is not None)
            if isinstance(at_us, str):
                problems.append((reader.line_num, at_us))
            elif at_us > latest:
                problems.append((reader.line_num, "time: lies in the future (is the controller's clock right?)"))
            elif not door_ok:
                problems.append((reader.line_num, "door: must be 1-64 letters, digits, spaces (not first or last), "
                                                  "'.', '-' or '_'"))
            elif ident is None:
                problems.append((reader.line_num, "id: neither a CPR number (DDMMYY-SSSS) nor a card number "
                                                  "(4-32 letters/digits)"))
            else:
                passages.append(new_passage(Passage, (at_us, door, ident)))
    except csv.Error:
        problems.append((reader.line_num, "not valid CSV (unbalanced quotes?)"))
    parsed.lines = lines
    if not passages and not problems:
        problems.append((reader.line_num or 1, "the file has a header but no passages"))
    if problems:
        parsed.passages = []
    return parsed
