"""The timeline of a ticket's window: where footage was recorded, where the
recorder logged a gap, and which parts have no footage.  Pure functions.

A bar is placed in percent of the window (``left_pct``, ``width_pct``), so the
page draws it with plain CSS; a bar too narrow to see gets a minimum width.
Playback is asked for in pieces of at most ``max_s`` seconds (the API's
``playback_max_s``), so a long recorded span becomes several playable parts.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_WIDTH_PCT = 0.4


@dataclass(frozen=True)
class Bar:
    kind: str  # "recorded" | "gap" | "missing"
    start_us: int
    end_us: int
    left_pct: float
    width_pct: float
    note: str = ""


def place(kind: str, start_us: int, end_us: int, window: tuple[int, int], note: str = "") -> Bar | None:
    w_start, w_end = window
    a, b = max(start_us, w_start), min(end_us, w_end)
    if b <= a or w_end <= w_start:
        return None
    total = w_end - w_start
    left = min(100.0 * (a - w_start) / total, 100.0 - MIN_WIDTH_PCT)
    width = min(max(MIN_WIDTH_PCT, 100.0 * (b - a) / total), 100.0 - left)
    return Bar(kind, a, b, round(left, 3), round(width, 3), note)


def bars(window: tuple[int, int], recorded, gaps, missing, *, now_us: int) -> list[Bar]:
    """Missing parts first (drawn underneath), then logged gaps, then recordings."""
    out = [place("missing", a, b, window) for a, b in missing]
    out += [place("gap", a, now_us if b is None else b, window, reason) for a, b, reason in gaps]
    out += [place("recorded", a, b, window) for a, b in recorded]
    return [b for b in out if b is not None]


def pieces(recorded, max_s: int) -> list[tuple[int, int]]:
    """Recorded spans cut into consecutive parts no longer than ``max_s`` seconds."""
    step = max_s * 1_000_000
    out = []
    for a, b in recorded:
        at = a
        while at < b:
            out.append((at, min(b, at + step)))
            at += step
    return out


def coverage_pct(window: tuple[int, int], recorded) -> float:
    total = window[1] - window[0]
    if total <= 0:
        return 0.0
    return round(100.0 * sum(min(b, window[1]) - max(a, window[0]) for a, b in recorded) / total, 1)
