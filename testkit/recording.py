"""Helpers for the recorder tests: a wall clock the test can step, reading back
what the recorder stored (through the index and the store's reader), decoding
it with PyAV, and waiting for conditions with a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import av
from sqlalchemy.orm import Session

from storage.format.packets import Packet
from storage.sql import index
from vms.core.clock import Clock

ALL_TIME = (0, 2**62)


class SteppableClock(Clock):
    """The real clock, whose wall-clock reading the test can step like NTP does;
    the monotonic clock is never stepped."""

    def __init__(self):
        self._offset_us = 0
        self._lock = threading.Lock()

    def now_us(self) -> int:
        with self._lock:
            return time.time_ns() // 1000 + self._offset_us

    def step(self, seconds: float) -> None:
        with self._lock:
            self._offset_us += int(seconds * 1_000_000)


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.1):
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


def segments(app, camera_id: str) -> list[index.SegmentRef]:
    with Session(app.engine) as s:
        return index.timeline(s, camera_id, *ALL_TIME, max_segment_us=ALL_TIME[1])


def segment_packets(app, ref: index.SegmentRef) -> list[Packet]:
    with Session(app.engine) as s:
        reader = app.store.reader(s, ref)
        return list(reader.packets())


def stored(app, camera_id: str) -> list[tuple[index.SegmentRef, list[Packet]]]:
    """Every indexed segment of a camera with its packets, in time order."""
    return [(ref, segment_packets(app, ref)) for ref in segments(app, camera_id)]


def gaps(app, camera_id: str) -> list:
    with Session(app.engine) as s:
        return [(g.start_us, g.end_us, g.reason) for g in index.gaps(s, camera_id, *ALL_TIME)]


def camera_state(app, camera_id: str) -> dict | None:
    with Session(app.engine) as s:
        for row in index.camera_states(s):
            if row.camera_id == camera_id:
                return {c: getattr(row, c) for c in ("online", "last_packet_us", "packets", "bytes_received", "fps",
                                                      "bitrate_bps", "reconnects", "gap_since_us", "last_error", "updated_us")}
    return None


def decode_each(app, ref: index.SegmentRef, packets: list[Packet]) -> int:
    """Decode a segment's packets frame by frame with PyAV from its own header's
    extradata; returns the number of frames (every packet must give one)."""
    with Session(app.engine) as s:
        stream = app.store.reader(s, ref).header.stream
    ctx = av.CodecContext.create(stream.codec, "r")
    ctx.extradata = stream.extradata
    frames = 0
    for pkt in packets:
        frames += len(ctx.decode(av.Packet(pkt.data)))
    return frames + len(ctx.decode(None))


@contextmanager
def recording(recorder):
    """Start a recorder; stop it (sealing everything) on the way out, whatever happened."""
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()
