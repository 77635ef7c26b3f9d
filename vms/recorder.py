"""The recorder: one thread per camera copies packets into encrypted segments.

Contracts:

* Packets are copied as received (``vms.capture``: OpenCV raw-packet mode), never
  decoded.  A segment starts on a keyframe and is closed at the first keyframe
  after ``segment_seconds``; a sealed segment is indexed at once (its own
  transaction).
* Wall-clock stamps come from a :class:`StampClock`: monotonic within a
  camera, re-anchored to the wall clock only at segment starts and never
  backwards, so an NTP step neither reorders nor overlaps a camera's segments
  (a step forward shows up as a jump between two segments).
* A camera that fails (never answers, stream lost or ended, garbage bytes)
  gets a gap row and a reconnect with exponential back-off; it never disturbs
  the other cameras, and the process never exits because of one camera.
* One housekeeping thread seals chunks that have waited a second
  (``SegmentWriter.flush_due``) and saves every camera's state every
  ``STATE_INTERVAL_S``.
* :meth:`Recorder.stop` seals every open segment under the camera's lock and
  returns within the given timeout even if a capture is blocked in the network.
* Disk full (ENOSPC): the open segment is abandoned as ``.open`` (its sealed
  chunks stay authenticated), ``on_disk_full`` asks the retention side for
  space, the camera retries with back-off, and the abandoned file is recovered
  before recording resumes.

Source URLs may carry credentials: only ``redact_url(source)`` is ever logged or
stored; capture errors are redacted by ``vms.capture``.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from storage import index
from storage.packets import Packet, StreamInfo
from storage.segment import SegmentWriter
from vms.clock import Clock
from vms.config import CameraConfig

log = logging.getLogger(__name__)
STATE_INTERVAL_S = 2.0
FLUSH_INTERVAL_S = 0.25


class StampClock:
    """Per-camera wall-clock stamps: monotonic between anchors, never backwards."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._lock = threading.Lock()
        self._anchor_wall = clock.now_us()
        self._anchor_mono = clock.monotonic_s()

    def now_us(self) -> int:
        with self._lock:
            return self._anchor_wall + int((self._clock.monotonic_s() - self._anchor_mono) * 1_000_000)

    def reanchor(self, floor_us: int) -> None:
        """Follow the wall clock again, but never go below ``floor_us``."""
        with self._lock:
            self._anchor_wall = max(self._clock.now_us(), floor_us)
            self._anchor_mono = self._clock.monotonic_s()


@dataclass
class CameraStats:
    online: bool = False
    packets: int = 0
    bytes_received: int = 0
    reconnects: int = 0
    last_packet_us: int | None = None
    gap_since_us: int | None = None
    last_error: str | None = None
    skipped_before_keyframe: int = 0
    fps: float = 0.0
    bitrate_bps: float = 0.0
    _window: list = field(default_factory=lambda: [0.0, 0, 0])  # monotonic start, packets, bytes


class CameraRecorder:
    def __init__(self, app, cam: CameraConfig, *, clock: Clock, stop: threading.Event,
                 open_capture: Callable, on_disk_full: Callable[[str], None] | None = None):
        self.app, self.cam, self.clock, self._stop = app, cam, clock, stop
        self._open_capture = open_capture
        self._on_disk_full = on_disk_full
        self.lock = threading.Lock()
        self.stamps = StampClock(clock)
        self.stats = CameraStats()
        self.writer: SegmentWriter | None = None
        self._stream: StreamInfo | None = None
        self._segment_us = cam.segment_seconds * 1_000_000
        self._needs_recovery = False
        rc = app.config.recorder
        self._backoff_initial, self._backoff_max = rc.backoff_initial_s, rc.backoff_max_s
        self.thread = threading.Thread(target=self.run, name=f"rec-{cam.id}", daemon=True)

    # -- the camera's loop ----------------------------------------------------------

    def run(self) -> None:
        backoff = self._backoff_initial
        while not self._stop.is_set():
            try:
                got = self._session()
            except Exception as exc:  # one camera must never take the recorder down
                log.exception("camera %s: unexpected error (%s); reconnecting", self.cam.id, exc.__class__.__name__)
                self._set_offline(f"internal error: {exc.__class__.__name__}")
                got = False
            if self._stop.is_set():
                break
            backoff = self._backoff_initial if got else min(backoff * 2, self._backoff_max)
            self.stats.reconnects += 1
            self._stop.wait(backoff)

    def _session(self) -> bool:
        """Open the source and record until it fails; True if any packet arrived."""
        from vms.capture import CaptureError

        if self._needs_recovery and not self._recover():
            return False
        cap = self._open_capture(self.cam)
        got = False
        try:
            try:
                self._stream = cap.open()
            except CaptureError as exc:
                self._set_offline(str(exc))
                return False
            log.info("camera %s: connected (%s %dx%d)", self.cam.id, self._stream.codec,
                     self._stream.width, self._stream.height)
            reason = "stream ended"
            while not self._stop.is_set():
                try:
                    pkt = cap.read()
                except CaptureError as exc:
                    reason = str(exc)
                    break
                if pkt is None:
                    break
                got = True
                if not self._on_packet(pkt):
                    reason = "disk full"
                    break
            with self.lock:
                self._finish_segment()
            if not self._stop.is_set():
                self._set_offline(reason)
        finally:
            cap.close()
        return got

    # -- packets and segments (called with the lock held where noted) -----------------------

    def _on_packet(self, pkt: Packet) -> bool:
        with self.lock:
            if self._stop.is_set():
                return True
            st = self.stats
            try:
                if self.writer is None:
                    if not pkt.keyframe:
                        st.skipped_before_keyframe += 1
                        return True
                    self._start_segment(pkt)
                elif pkt.keyframe and pkt.wall_us - self.writer.start_us >= self._segment_us:
                    self._finish_segment()
                    self._start_segment(pkt)
                self.writer.write(pkt)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                self._disk_full()
                return False
            if not st.online:
                self._came_online(pkt.wall_us)
            st.packets += 1
            st.bytes_received += len(pkt.data)
            st.last_packet_us = pkt.wall_us
            st._window[1] += 1
            st._window[2] += len(pkt.data)
        return True

    def _start_segment(self, pkt: Packet) -> None:
        self.writer = self.app.store.open_writer(self.cam.id, self._stream, pkt.wall_us, now_us=self.clock.now_us())
        self.stamps.reanchor(pkt.wall_us)

    def _finish_segment(self) -> None:
        """Seal and index the open segment (lock held)."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            summary = writer.close()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            writer.abandon()
            self._needs_recovery = True
            return
        for attempt in range(5):
            try:
                self.app.store.index_sealed(summary)
                return
            except SQLAlchemyError as exc:  # the file is sealed; a later scan indexes it if we give up
                log.warning("camera %s: indexing %s failed (%s), attempt %d", self.cam.id, summary.path.name,
                            exc.__class__.__name__, attempt + 1)
                self._stop.wait(0.2 * (attempt + 1))

    def _disk_full(self) -> None:
        if self.writer is not None:
            self.writer.abandon()
            self.writer = None
        self._needs_recovery = True
        log.error("camera %s: disk full; segment left for recovery, asking retention for space", self.cam.id)
        if self._on_disk_full:
            try:
                self._on_disk_full(self.cam.id)
            except Exception:
                log.exception("camera %s: disk-full callback failed", self.cam.id)

    def _recover(self) -> bool:
        try:
            self.app.store.recover(self.cam.id)
        except OSError as exc:
            self._set_offline(f"disk full, waiting for space ({exc.__class__.__name__})")
            return False
        self._needs_recovery = False
        return True

    # -- state and gaps ---------------------------------------------------------------

    def _came_online(self, first_us: int) -> None:
        st = self.stats
        st.online, st.gap_since_us, st.last_error = True, None, None
        st._window = [self.clock.monotonic_s(), 0, 0]
        self._db(lambda s: index.close_gap(s, self.cam.id, first_us))

    def _set_offline(self, reason: str) -> None:
        st = self.stats
        was_online = st.online
        st.online, st.last_error, st.fps, st.bitrate_bps = False, reason[:500], 0.0, 0.0
        if st.gap_since_us is None:
            st.gap_since_us = st.last_packet_us if st.last_packet_us is not None else self.clock.now_us()
            start = st.gap_since_us
            self._db(lambda s: index.open_gap(s, self.cam.id, start, reason))
        if was_online:
            log.warning("camera %s: offline: %s", self.cam.id, reason)

    def note_restart_gap(self) -> None:
        """At start: the time since this camera's last segment (recorder not running) is a gap."""
        def run(s: Session) -> None:
            last = index.last_segment_end(s, self.cam.id)
            if last is not None:
                index.open_gap(s, self.cam.id, last, "recorder not running")
                self.stats.gap_since_us = last

        self._db(run)

    def _db(self, fn) -> None:
        try:
            with Session(self.app.engine) as s, s.begin():
                fn(s)
        except SQLAlchemyError as exc:
            log.warning("camera %s: could not record state (%s)", self.cam.id, exc.__class__.__name__)

    def save_state(self, s: Session, now_us: int) -> None:
        st = self.stats
        mono = self.clock.monotonic_s()
        start, pkts, nbytes = st._window
        if st.online and mono - start >= 1.0:
            st.fps, st.bitrate_bps = pkts / (mono - start), nbytes * 8 / (mono - start)
            st._window = [mono, 0, 0]
        index.save_camera_state(
            s, self.cam.id, node_id=self.app.config.node_id, now_us=now_us, online=st.online,
            last_packet_us=st.last_packet_us, packets=st.packets, bytes_received=st.bytes_received,
            fps=round(st.fps, 3), bitrate_bps=round(st.bitrate_bps), reconnects=st.reconnects,
            gap_since_us=st.gap_since_us, last_error=st.last_error,
        )

    def flush_due(self) -> None:
        with self.lock:
            if self.writer is not None:
                try:
                    self.writer.flush_due()
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    self._disk_full()

    def seal(self) -> None:
        with self.lock:
            self._finish_segment()


def default_capture(app) -> Callable:
    def open_capture(cam: CameraConfig):
        from vms.capture import Capture

        rc = app.config.recorder
        return Capture(cam.source, transport=cam.transport, open_timeout_s=rc.open_timeout_s,
                       read_timeout_s=rc.read_timeout_s, loop=cam.loop)

    return open_capture


class Recorder:
    """All cameras of this node.  ``start()`` recovers open files first."""

    def __init__(self, app, *, clock: Clock | None = None, open_capture: Callable | None = None,
                 on_disk_full: Callable[[str], None] | None = None):
        self.app = app
        self.clock = clock or app.clock
        self._stop = threading.Event()
        open_capture = open_capture or default_capture(app)
        self.cameras = {
            cam.id: CameraRecorder(app, cam, clock=self.clock, stop=self._stop, open_capture=open_capture,
                                   on_disk_full=on_disk_full)
            for cam in app.config.cameras if cam.enabled
        }
        self._house = threading.Thread(target=self._housekeeping, name="rec-house", daemon=True)

    def start(self) -> None:
        recovered = self.app.store.recover()
        if recovered:
            log.info("recovered %d segment(s) left open by a previous run", len(recovered))
        for cam in self.cameras.values():
            cam.note_restart_gap()
            cam.thread.start()
        self._house.start()

    def _housekeeping(self) -> None:
        last_state = 0.0
        while not self._stop.wait(FLUSH_INTERVAL_S):
            for cam in self.cameras.values():
                try:
                    cam.flush_due()
                except Exception:
                    log.exception("camera %s: flushing failed", cam.cam.id)
            mono = self.clock.monotonic_s()
            if mono - last_state >= STATE_INTERVAL_S:
                last_state = mono
                self.save_states()

    def save_states(self) -> None:
        try:
            with Session(self.app.engine) as s, s.begin():
                now = self.clock.now_us()
                for cam in self.cameras.values():
                    cam.save_state(s, now)
        except SQLAlchemyError as exc:
            log.warning("could not save camera state (%s)", exc.__class__.__name__)

    def stop(self, timeout_s: float = 4.0) -> None:
        """Seal every open segment and stop; returns within about ``timeout_s``."""
        self._stop.set()
        for cam in self.cameras.values():
            cam.seal()
        self.save_states()
        per = max(0.1, timeout_s / max(1, len(self.cameras) + 1))
        for cam in self.cameras.values():
            cam.thread.join(per)
        self._house.join(per)
