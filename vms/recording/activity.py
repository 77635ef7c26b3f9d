"""Activity from the compressed stream alone: a per-second level for each camera, no picture decoded.

A camera's encoder spends few bytes on a predicted (non-key) frame of a still scene and many on one where
something moves.  :class:`ActivityMeter` averages the sizes of each second's non-key frames (keyframes
are excluded: their size says how detailed the picture is, not whether it changed) and compares that mean
with a rolling baseline of the camera's own still scene, which follows a quieter second within about
20 s (the scene calmed down, or the encoder changed its quality) and a busier one ten times more slowly
(a minute of motion barely moves it).  The level is
``14 * log2(mean / baseline) / 2`` rounded and clamped to 0..14: 0 for up to 1.5 times the baseline,
14 at four times it.  B-frames are smaller than P-frames, but each second holds about the same mix, so
the mean is still comparable from second to second.

Cost: :meth:`ActivityMeter.add` is a division, a comparison and two additions per packet; a little
arithmetic once a second.  The recorder calls it under the camera's lock; the levels of a segment are
sealed with it (``SegmentWriter.close(activity_levels=...)``, encrypted under the hour key).
"""

from __future__ import annotations

import math

MAX_LEVEL = 14  # storage/format/activity.py keeps 0..14 per second
STILL_RATIO = 1.5  # up to this many times the baseline counts as still (a still scene's seconds vary ~15 %)
WARM_S = 5  # the baseline starts as the mean of the first seconds measured (their levels are 0)
FULL_RATIO = 4.0  # this many times the baseline is the highest level
FALL = 0.05  # how fast the baseline follows a quieter second (about 20 s)
RISE = 0.005  # how fast it follows a busier one (about 200 s to move most of the way)
_SCALE = MAX_LEVEL / math.log2(FULL_RATIO)


class ActivityMeter:
    """One camera's meter; :meth:`start` at each segment's first packet, :meth:`finish` at its end."""

    __slots__ = ("baseline", "levels", "_sec", "_sum", "_n", "_seen", "_warm")

    def __init__(self) -> None:
        self.baseline: float | None = None  # mean non-key frame size of the still scene (bytes)
        self.levels: list[int | None] = []  # the open segment's levels, from its first second on
        self._sec: int | None = None  # the second being counted
        self._sum = self._n = 0
        self._seen = False
        self._warm = 0  # seconds measured so far, up to WARM_S

    def start(self, wall_us: int) -> None:
        """A new segment starts with the packet stamped ``wall_us``.  A second the previous segment ended in
        goes on being counted: the new segment's record gives it in full (the previous one's last level was
        provisional)."""
        self.levels = []
        sec = wall_us // 1_000_000
        if sec != self._sec:
            self._sec, self._sum, self._n, self._seen = sec, 0, 0, False

    def add(self, wall_us: int, size: int, keyframe: bool) -> None:
        sec = wall_us // 1_000_000
        if sec != self._sec:
            self._next(sec)
        self._seen = True
        if not keyframe:
            self._sum += size
            self._n += 1

    def finish(self) -> list[int | None]:
        """The open segment's levels; the second it ends in is given provisionally (counted on, and given
        in full by the next segment's record if that starts in the same second)."""
        if self._sec is not None and self._seen:
            self.levels.append(self._level(provisional=True))
        levels, self.levels = self.levels, []
        while levels and levels[-1] is None:
            levels.pop()
        return levels

    def _next(self, sec: int) -> None:
        if self._sec is None:  # no segment started (the recorder always starts one first)
            self._sec = sec
            return
        self.levels.append(self._level() if self._seen else None)
        if sec > self._sec + 1:
            self.levels.extend([None] * min(sec - self._sec - 1, 7200))
        self._sec, self._sum, self._n, self._seen = sec, 0, 0, False

    def _level(self, provisional: bool = False) -> int:
        if not self._n:
            return 0  # only a keyframe in this second: nothing to compare
        mean = self._sum / self._n
        base = self.baseline
        if provisional:  # part of a second: compare, but leave the baseline to the whole second
            return 0 if not base or self._warm < WARM_S else _scale(mean / base)
        if self._warm < WARM_S or not base:
            self._warm += 1
            self.baseline = mean if base is None else base + (mean - base) / self._warm
            return 0
        self.baseline = base + (mean - base) * (FALL if mean < base else RISE)
        return _scale(mean / base)


def _scale(ratio: float) -> int:
    return 0 if ratio <= STILL_RATIO else min(MAX_LEVEL, round(_SCALE * math.log2(ratio)))


def levels_of(packets, start_us: int) -> list[int | None]:
    """The levels of a run of packets (``wall_us``, ``data``, ``keyframe``) starting at ``start_us``, by a
    meter of its own: what the recorder would have sealed, for a segment without a record."""
    meter = ActivityMeter()
    meter.start(start_us)
    for p in packets:
        meter.add(p.wall_us, len(p.data), p.keyframe)
    return meter.finish()
