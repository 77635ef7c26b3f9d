"""The pure parts of the pages: timeline placement, playback pieces, local time
in the date/time pickers (no browser)."""

from __future__ import annotations

from types import SimpleNamespace

from api.web import timeline
from api.web.render import fmt_local, input_local, parse_local

S = 1_000_000
COPENHAGEN = SimpleNamespace(config=SimpleNamespace(timezone="Europe/Copenhagen"))


def test_bars_are_placed_in_percent_of_the_window_and_clipped_to_it():
    window = (1000 * S, 2000 * S)
    bars = timeline.bars(window, recorded=[(900 * S, 1250 * S), (1500 * S, 1600 * S)],
                         gaps=[(1250 * S, 1500 * S, "stream lost"), (1900 * S, None, "offline")],
                         missing=[(1250 * S, 1500 * S), (1600 * S, 2000 * S)], now_us=1950 * S)
    by_kind = {}
    for b in bars:
        by_kind.setdefault(b.kind, []).append((b.left_pct, b.width_pct))
    assert by_kind["recorded"] == [(0.0, 25.0), (50.0, 10.0)]
    assert by_kind["gap"] == [(25.0, 25.0), (90.0, 5.0)]  # the open gap runs until now
    assert by_kind["missing"] == [(25.0, 25.0), (60.0, 40.0)]
    assert [b.kind for b in bars][:2] == ["missing", "missing"]  # drawn first, underneath


def test_tiny_spans_stay_visible_and_spans_outside_vanish():
    window = (0, 3600 * S)
    bar = timeline.place("recorded", 3599 * S, 3600 * S, window)
    assert bar.width_pct == timeline.MIN_WIDTH_PCT and bar.left_pct + bar.width_pct <= 100.0
    assert timeline.place("recorded", 4000 * S, 5000 * S, window) is None
    assert timeline.place("recorded", 10 * S, 10 * S, window) is None


def test_long_recordings_are_played_in_pieces_no_longer_than_the_limit():
    assert timeline.pieces([(0, 1500 * S), (2000 * S, 2100 * S)], 600) == [
        (0, 600 * S), (600 * S, 1200 * S), (1200 * S, 1500 * S), (2000 * S, 2100 * S)]
    assert timeline.coverage_pct((0, 1000 * S), [(0, 250 * S), (900 * S, 1200 * S)]) == 35.0


def test_picker_times_are_copenhagen_local_and_stored_in_utc():
    winter = parse_local(COPENHAGEN, "2026-01-15T10:30")  # CET, UTC+1
    assert winter == 1_768_469_400 * S
    assert input_local(COPENHAGEN, winter) == "2026-01-15T10:30"
    summer = parse_local(COPENHAGEN, "2026-07-01T12:00")  # CEST, UTC+2
    assert summer == 1_782_900_000 * S
    assert fmt_local(COPENHAGEN, summer) == "2026-07-01 12:00:00"
    assert parse_local(COPENHAGEN, "2026-07-01T12:00:30") == summer + 30 * S
    for bad in ("", "yesterday", "2026-13-01T10:00", "2026-01-15 10:30"):
        try:
            parse_local(COPENHAGEN, bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
