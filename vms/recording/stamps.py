"""Stream timestamps that keep the camera's frame order (B-frames included).

OpenCV gives each packet its pts (``CAP_PROP_POS_MSEC``) and nothing else: no
per-packet dts, and ``CAP_PROP_DTS_DELAY`` reads 0 over RTSP even for a stream
with B-frames (measured with x264 ``bframes=3`` and x265 over GStreamer's RTSP
server).  With B-frames the pts of packets in decode order go back and forth
(I0 P4 B2 b1 b3 P8 ...), so the recorder derives the rest itself:

* :func:`reorder_depth` learns from the first packets of a connection how far
  frames are reordered: the largest number of earlier packets with a later pts
  (0 without B-frames, 1 for ``bframes`` without pyramid, 2 with pyramid).
* :class:`DecodeTimes` gives each packet a dts in decode order by FFmpeg's rule:
  with depth *D*, a packet's dts is the (D+1)-th largest pts seen so far (the
  first *D* packets are placed one frame apart before that).  Then
  ``dts <= pts`` and dts strictly increases, so players and muxers get the
  composition offsets right.  Without B-frames (D = 0) dts equals pts.
  A packet reordered deeper than learned cannot be stamped correctly: it is
  counted in ``misordered`` (the recorder raises an alarm naming the camera)
  and its pts is lifted to its dts, so the file stays valid.
* :func:`infer_first_pts`: over RTSP FFmpeg's parser leaves the first packet
  (the keyframe) without pts, which reads as 0; it is placed one frame before
  the earliest pts that follows it, where a closed GOP's keyframe belongs.
* :class:`PtsTrack` turns the raw 90 kHz pts into continuous ones: a jump
  forward by more than ``max_step`` or back by more than ``max_back`` (further
  than any reordering), or a pts equal to the largest so far, is a
  discontinuity (a camera that restarts its clock; a file that loops says so
  with :meth:`PtsTrack.restart`) and
  re-bases the offset so that the packet lands one frame after the largest pts.
"""

from __future__ import annotations

import bisect

MAX_REORDER = 16  # H.264/H.265 never reorder deeper than the DPB (16 frames)
LEARN_PACKETS = 16  # packets read before the depth is decided: several B-frame patterns
ORDER_CLEAN_PACKETS = 300  # packets of a connection without misordering before a stream problem ends


def order_problem(misordered: int, depth: int | None) -> str:
    """What a person reads (alarm, doctor) when frames could not be kept in order."""
    return (f"{misordered} frame(s) arrived reordered deeper than the {depth} seen at connect, so their order "
            "could not be kept. On the camera, use a fixed GOP with a fixed number of B-frames (or none), "
            "and no 'smart' or dynamic GOP")


def reorder_depth(pts: list[int], *, cap: int = MAX_REORDER) -> int:
    """The largest number of earlier packets (decode order) with a later pts."""
    depth = 0
    for i, p in enumerate(pts):
        depth = max(depth, sum(1 for q in pts[:i] if q > p))
    return min(depth, cap)


def infer_first_pts(raw: list[int], frame_ticks: int) -> list[int]:
    """``raw`` with the first packet's pts moved one frame before the earliest later
    pts when it is not already before all of them (the parser left it unset)."""
    if len(raw) < 2:
        return list(raw)
    earliest = min(raw[1:])
    if raw[0] < earliest:
        return list(raw)
    return [earliest - frame_ticks, *raw[1:]]


class DecodeTimes:
    """dts in decode order from pts, for a stream reordered at most ``depth`` frames."""

    def __init__(self, depth: int, frame_ticks: int):
        if not 0 <= depth <= MAX_REORDER:
            raise ValueError(f"reorder depth {depth} outside 0..{MAX_REORDER}")
        self.depth, self.frame_ticks = depth, frame_ticks
        self._top: list[int] = []  # the depth+1 largest pts so far, ascending
        self._head: list[int] = []  # pts of the first depth packets, until their dts are known
        self.last_dts: int | None = None
        self.misordered = 0

    def start(self, first: list[int]) -> list[tuple[int, int]]:
        """The first packets of a connection (at least ``depth + 1`` unless the stream is
        that short): their (pts, dts) pairs."""
        out = []
        if self.depth and first:
            base = min(first[: self.depth + 1])
            lead = min(self.depth, len(first))
            for i in range(lead):
                dts = base - (self.depth - i) * self.frame_ticks
                out.append((first[i], dts))
                bisect.insort(self._top, first[i])
                self.last_dts = dts
            first = first[lead:]
        out.extend(self.next(p) for p in first)
        return out

    def next(self, pts: int) -> tuple[int, int]:
        """(pts, dts) of the next packet in decode order."""
        if self.last_dts is not None and pts <= self.last_dts:
            # reordered deeper than learned: no dts <= pts keeps decode order; keep the file valid
            self.misordered += 1
            dts = self.last_dts + 1
            self.last_dts = dts
            bisect.insort(self._top, dts)
            del self._top[: max(0, len(self._top) - self.depth - 1)]
            return dts, dts
        bisect.insort(self._top, pts)
        del self._top[: max(0, len(self._top) - self.depth - 1)]
        dts = self._top[0]
        if self.last_dts is not None and dts <= self.last_dts:  # fewer than depth+1 packets so far
            dts = self.last_dts + 1
        self.last_dts = dts
        return pts, dts


class PtsTrack:
    """Raw 90 kHz pts (decode order, possibly reordered) -> continuous pts starting at 0.

    ``next(raw)`` returns ``raw + offset``; a pts equal to the largest so far, more than
    ``max_back`` ticks before it or more than ``max_step`` after it re-bases the offset
    so the packet lands ``frame_ticks`` after the largest pts."""

    def __init__(self, frame_ticks: int, max_step: int, max_back: int | None = None):
        self.frame_ticks, self.max_step = frame_ticks, max_step
        self.max_back = (MAX_REORDER + 1) * frame_ticks if max_back is None else max_back
        self.offset: int | None = None
        self.top: int | None = None  # the largest pts so far
        self.last: int | None = None
        self._restart = False

    def restart(self) -> None:
        """The source starts again (a file that loops): the next packet follows the largest pts."""
        self._restart = True

    def next(self, raw: int) -> int:
        if self.top is None:
            self.offset = -raw
        else:
            step = raw + self.offset - self.top
            if self._restart or step == 0 or step > self.max_step or step < -self.max_back:
                self.offset = self.top + self.frame_ticks - raw
                self._restart = False
        self.last = raw + self.offset
        self.top = self.last if self.top is None else max(self.top, self.last)
        return self.last
