"""The activity meter (pure: packet sizes in, levels out) and the activity record format."""

from __future__ import annotations

import pytest

from storage.format import activity as fmt
from storage.format.packets import Packet
from vms.recording.activity import MAX_LEVEL, ActivityMeter, levels_of

T0 = 1_767_225_600_000_000


def _packets(sizes_per_second: list[int], fps: int = 15, gop: int = 15, start_us: int = T0) -> list[Packet]:
    out = []
    for sec, size in enumerate(sizes_per_second):
        for f in range(fps):
            i = sec * fps + f
            out.append(Packet(b"\0" * (50_000 if i % gop == 0 else size), start_us + i * 1_000_000 // fps, i, i,
                              i % gop == 0, 1))
    return out


def test_still_is_zero_and_motion_is_high():
    sizes = [200] * 20 + [800] * 10 + [200] * 20
    lv = levels_of(_packets(sizes), T0)
    assert len(lv) == 50
    assert set(lv[:20]) == {0} and set(lv[30:]) == {0}
    assert all(v >= MAX_LEVEL - 2 for v in lv[20:30])  # four times the (slowly rising) baseline: near the top


def test_keyframes_do_not_count():
    lv = levels_of(_packets([200] * 30, gop=5), T0)  # three big keyframes a second
    assert set(lv) == {0}


def test_small_wobble_stays_still():
    sizes = [200 + (37 * i) % 60 for i in range(60)]  # +-15 %
    assert set(levels_of(_packets(sizes), T0)) == {0}


def test_seconds_without_packets_are_none():
    pk = _packets([200] * 10)
    pk += [Packet(p.data, p.wall_us + 15_000_000, p.pts, p.dts, p.keyframe, 1) for p in _packets([200] * 3)]
    lv = levels_of(pk, T0)
    assert lv[10:15] == [None] * 5 and lv[15:] == [0, 0, 0]


def test_a_second_split_by_a_segment_boundary_is_given_whole_by_the_next_segment():
    meter, pk = ActivityMeter(), _packets([200] * 20 + [800] * 4, start_us=T0 + 500_000)
    cut = 150 + 7  # the boundary in the middle of a second
    meter.start(pk[0].wall_us)
    for p in pk[:cut]:
        meter.add(p.wall_us, len(p.data), p.keyframe)
    first = meter.finish()
    meter.start(pk[cut].wall_us)
    for p in pk[cut:]:
        meter.add(p.wall_us, len(p.data), p.keyframe)
    second = meter.finish()
    assert len(first) == 11 and first[-1] == 0  # the provisional last second
    assert second[0] == 0 and min(second[-4:]) >= MAX_LEVEL - 1


def test_record_round_trip_and_size():
    key = fmt.activity_key(bytes(range(32)), "cam1", "2026-01-01", 0)
    levels = [0, 3, None, 14] * 15
    rec = fmt.seal(key, T0, levels)
    assert len(rec) == 30 + 16  # a minute: 46 bytes
    assert fmt.open_record(key, T0, rec) == levels
    with pytest.raises(fmt.ActivityUnreadable):
        fmt.open_record(key, T0 + 1, rec)  # another segment's start
    with pytest.raises(fmt.ActivityUnreadable):
        fmt.open_record(fmt.activity_key(bytes(range(32)), "cam1", "2026-01-01", 1), T0, rec)  # another hour
    assert fmt.unpack_levels(fmt.pack_levels([1, 2, 3])) == [1, 2, 3]
    with pytest.raises(ValueError, match="0..14"):
        fmt.pack_levels([15])
