"""The retention rules are pure functions: tested without disk, database or clock.
(Unit tests by nature; they live here because tests/unit/ is shared.)"""

from __future__ import annotations

from vms.retention.rules import (
    DAY_US,
    HOUR_US,
    SHRED_MARGIN_US,
    VIOLATION_GRACE_US,
    HoldIndex,
    bytes_to_free,
    copy_unreadable_by_us,
    cutoff_us,
    expires_at_us,
    free_space_floor,
    hour_start_us,
    is_expired,
    is_violation,
    shred_before_day,
    shred_hours_ended_by_us,
)

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def test_a_segment_expires_when_its_first_frame_reaches_the_maximum_age():
    start = T0 + 123
    assert expires_at_us(start, 14) == start + 14 * DAY_US
    assert not is_expired(start, 14, start + 14 * DAY_US - 1)
    assert is_expired(start, 14, start + 14 * DAY_US)
    assert cutoff_us(start + 14 * DAY_US, 14) == start  # "start <= cutoff" is the same rule


def test_a_violation_needs_the_grace_to_pass_and_no_hold():
    at = expires_at_us(T0, 30)
    assert not is_violation(T0, 30, at + VIOLATION_GRACE_US - 1, held=False)
    assert is_violation(T0, 30, at + VIOLATION_GRACE_US, held=False)
    assert not is_violation(T0, 30, at + 10 * DAY_US, held=True)


def test_holds_cover_overlapping_segments_of_their_camera_only():
    holds = HoldIndex([("a", 100, 200)])
    assert holds.covers("a", 150, 160) and holds.covers("a", 50, 101) and holds.covers("a", 199, 300)
    assert not holds.covers("a", 200, 300) and not holds.covers("a", 0, 100) and not holds.covers("b", 150, 160)
    assert not HoldIndex([]) and holds


def test_watermark_floor_is_the_larger_setting():
    assert free_space_floor(1000, 10, 5) == 50
    assert free_space_floor(1000, 100, 5) == 100
    assert free_space_floor(1001, 0, 5) == 51  # rounded up
    assert bytes_to_free(1000, 30, 10, 5) == 20
    assert bytes_to_free(1000, 60, 10, 5) == 0


def test_days_are_shredded_only_an_hour_after_they_ended():
    assert shred_before_day(T0 + 30 * 60 * 1_000_000) == "2025-12-31"  # 00:30: yesterday still protected
    assert shred_before_day(T0 + 61 * 60 * 1_000_000) == "2026-01-01"  # 01:01: yesterday may go


def test_a_copy_is_unreadable_at_most_an_hour_after_its_expiry():
    for offset in (0, 1, 10_000_000, 59 * 60_000_000, HOUR_US - 1, HOUR_US, 5 * HOUR_US + 7):
        start = T0 + offset
        assert hour_start_us(start) <= start < hour_start_us(start) + HOUR_US
        late_us = copy_unreadable_by_us(start, 14) - expires_at_us(start, 14)
        assert 0 < late_us <= HOUR_US
    assert copy_unreadable_by_us(T0, 14) == T0 + 14 * DAY_US + HOUR_US  # the hour's first segment: a full hour


def test_hours_are_shredded_only_an_hour_after_they_ended_which_never_delays_age_expiry():
    now = T0 + 2 * HOUR_US + 30 * 60_000_000  # 02:30: hour 00 (ended 01:00) may go, hour 01 (ended 02:00) not yet
    ended_by = shred_hours_ended_by_us(now)
    assert T0 + HOUR_US <= ended_by < T0 + 2 * HOUR_US
    # the last segment of an hour expires retain_days (>= 1 day) after the hour ended, past the margin
    assert SHRED_MARGIN_US <= 1 * DAY_US


# ---------------------------------------------------------------- the sweep's planner (pure)

from types import SimpleNamespace  # noqa: E402

from storage.sql.index import SegmentRef  # noqa: E402
from vms.retention import planner  # noqa: E402


def _ref(i: int, start_s: int, size: int = 100, camera: str = "cam") -> SegmentRef:
    return SegmentRef(i, camera, "n1", 1, start_s * 1_000_000, (start_s + 60) * 1_000_000, size, 900, f"p{i}",
                      "sealed", False)


def test_planner_deletes_unheld_in_batches_and_keeps_held():
    refs = [_ref(i, i * 60) for i in range(7)]
    holds = HoldIndex([("cam", 120 * 1_000_000, 130 * 1_000_000)])  # overlaps segment 2 only
    steps = list(planner.evictions(refs, holds, batch=3))
    assert [type(s).__name__ for s in steps] == ["Keep", "Delete", "Delete"]
    assert steps[0].ref.id == 2
    assert [[r.id for r in s.refs] for s in steps[1:]] == [[0, 1, 3], [4, 5, 6]]


def test_planner_stops_once_enough_bytes_are_freed():
    refs = [_ref(i, i * 60, size=100) for i in range(10)]
    steps = list(planner.evictions(refs, HoldIndex([]), batch=100, need_bytes=250))
    assert [[r.id for r in s.refs] for s in steps] == [[0, 1, 2]] and steps[0].size_bytes == 300


def test_planner_age_cutoffs():
    cams = [SimpleNamespace(camera_id="a", retain_days=14), SimpleNamespace(camera_id="b", retain_days=30)]
    now = 100 * DAY_US
    assert planner.age_cutoffs(cams, now) == [("a", 86 * DAY_US), ("b", 70 * DAY_US)]
