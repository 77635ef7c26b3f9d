"""vms.recording.stamps: decode-order timestamps for streams with B-frames."""

from __future__ import annotations

import pytest

from vms.recording.stamps import DecodeTimes, PtsTrack, infer_first_pts, reorder_depth

FT = 6000  # one frame at 15 fps in 90 kHz ticks

# x264 bframes=3 b-pyramid=normal, decode order, presentation index of each frame
PYRAMID = [0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11, 16, 14, 13, 15]
# x264 bframes=2 without pyramid
PLAIN_B = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]


def _stamp(order: list[int], learn: int = 16) -> tuple[DecodeTimes, list[tuple[int, int]]]:
    pts = [i * FT for i in order]
    times = DecodeTimes(reorder_depth(pts[:learn]), FT)
    out = times.start(pts[:learn])
    out += [times.next(p) for p in pts[learn:]]
    return times, out


@pytest.mark.parametrize(("order", "depth"), [(list(range(20)), 0), (PLAIN_B, 1), (PYRAMID, 2)])
def test_reorder_depth(order, depth):
    assert reorder_depth([i * FT for i in order]) == depth


@pytest.mark.parametrize("order", [list(range(30)), PLAIN_B, PYRAMID])
@pytest.mark.parametrize("learn", [5, 16])  # one B-frame pattern is enough to learn from
def test_dts_in_decode_order_never_after_pts(order, learn):
    times, out = _stamp(order, learn=min(learn, len(order)))
    pts = [p for p, _ in out]
    dts = [d for _, d in out]
    assert pts == [i * FT for i in order]  # the camera's presentation times are kept
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False))
    assert all(d <= p for p, d in out)
    assert times.misordered == 0


def test_without_b_frames_dts_is_pts():
    _, out = _stamp(list(range(10)))
    assert all(p == d for p, d in out)


def test_pyramid_dts_are_the_sorted_pts_two_frames_late():
    _, out = _stamp(PYRAMID)
    assert [d // FT for _, d in out] == list(range(-2, len(PYRAMID) - 2))


def test_deeper_reordering_than_learned_is_counted_and_the_file_stays_valid():
    times = DecodeTimes(0, FT)  # learned from a stretch without B-frames
    out = times.start([0, FT, 2 * FT])
    out += [times.next(p) for p in (5 * FT, 3 * FT, 4 * FT, 6 * FT)]
    assert times.misordered == 2
    dts = [d for _, d in out]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False))
    assert all(d <= p for p, d in out)


def test_the_untimestamped_first_rtsp_packet_goes_before_its_b_frames():
    # as measured over RTSP (x264 bframes=3, pyramid): the IDR reads 0, the P after it also 0
    raw = [0, 0, -12001, -18000, -6001, 23999, 11999, 5999, 18000]
    fixed = infer_first_pts(raw, FT)
    assert fixed[0] == -24000 and fixed[1:] == raw[1:]
    track = PtsTrack(FT, 90_000 * 60)
    pts = [track.next(r) for r in fixed]
    assert pts[0] == 0 and min(pts) == 0 and len(set(pts)) == len(pts)
    assert reorder_depth(pts) == 2


def test_a_first_packet_with_its_own_pts_is_kept():
    assert infer_first_pts([0, 4 * FT, 2 * FT, FT], FT) == [0, 4 * FT, 2 * FT, FT]
    assert infer_first_pts([0, 0, FT], FT) == [-FT, 0, FT]  # no B-frames: one frame before


def test_reordering_is_not_a_discontinuity_but_a_loop_is():
    track = PtsTrack(FT, 90_000 * 60)
    assert [track.next(r) for r in (0, 4 * FT, 2 * FT, FT)] == [0, 4 * FT, 2 * FT, FT]
    assert track.next(-10**6) == 5 * FT  # far back: a restarted clock lands one frame after the largest
