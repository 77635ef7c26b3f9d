"""The recorder: one thread per camera copies packets into encrypted segments.

Contracts:

* Packets are copied as received (``vms.recording.capture``: OpenCV raw-packet mode), never decoded.  A
  segment starts on a keyframe and is closed at the first keyframe at least ``segment_seconds`` after its
  start; a sealed segment is indexed at once (its own transaction), with its activity record
  (``vms.recording.activity``: levels from packet sizes).  Packets before a session's first keyframe
  are counted (``skipped_before_keyframe``) and dropped: they cannot be decoded.
* Stamps come from the capture (pts/dts in the camera's frame order, B-frames included; a
  stream whose order cannot be kept is the camera's ``stream_problem``) and its wall clock,
  the camera's :class:`~vms.recording.capture.CameraClock`: never backwards, following a
  forward step of the system clock only where a new segment starts, raised past each sealed
  segment and, at start, past the newest indexed one (an NTP step never overlaps segments).
* A camera that fails (never answers, stream lost or ended, garbage bytes) gets a gap row (one per
  outage: it stays open across failed reconnects) and a reconnect with exponential back-off
  (``recorder.backoff_initial_s`` doubling up to ``backoff_max_s``); it never disturbs the other
  cameras, and the process never exits because of one camera.
* One housekeeping thread seals chunks that have waited a second (``SegmentWriter.flush_due``) and saves
  every camera's state every ``recorder.state_interval_s``.
* :meth:`Recorder.stop` seals every open segment under the camera's lock and returns within about the
  given timeout even if a capture is blocked in the network (capture threads are daemons).
* Disk full (ENOSPC): the open segment is abandoned as ``.open`` (its sealed chunks stay authenticated),
  ``on_disk_full(camera_id)`` asks the retention side for space, the session ends with a gap, the camera
  retries with back-off, and the abandoned file is recovered (sealed) before recording resumes.  A sealed
  segment is never left half-written: sealing is a rename after fsync.
Source URLs may carry credentials: only ``cam.id`` and capture messages (redacted) are logged or stored.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from storage.format.packets import Packet, StreamInfo
from storage.format.segment import (
    MAGIC,
    OPEN_SUFFIX,
    SegmentError,
    SegmentSummary,
    SegmentTruncated,
    SegmentWriter,
    inspect_header,
)
from storage.sql import index
from vms.core.clock import Clock
from vms.core.config import CameraConfig
from vms.recording.activity import ActivityMeter
from vms.recording.camera_stats import CameraStats
from vms.recording.capture import CameraClock, Capture, CaptureError, scrub_secrets
from vms.recording.live_config import apply_cameras
from vms.recording.reconnect import wait_before_retry
from vms.recording.stamps import ORDER_CLEAN_PACKETS, order_problem

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25
INDEX_RETRY_S = 1.0  # how often sealed segments queued while the index was away are retried
DAMAGED_SUFFIX = ".damaged"  # an open segment recovery refused; kept for a person to look at


class DiskFull(Exception):
    """ENOSPC while writing footage (internal signal)."""


OpenCapture = Callable[[CameraConfig, CameraClock], Capture]


class CameraRecorder:
    """One camera: its thread, open segment, stamps and state."""

    def __init__(self, app, cam: CameraConfig, *, clock: Clock, stop: threading.Event,
                 open_capture: OpenCapture, on_disk_full: Callable[[str], None] | None = None):
        self.app, self.cam, self.clock, self._stop = app, cam, clock, stop
        self._open_capture = open_capture
        self._on_disk_full = on_disk_full
        self.lock = threading.Lock()
        self.camera_clock = CameraClock(clock)
        self.stats = CameraStats()
        self.activity = ActivityMeter()  # per-second activity from packet sizes (vms/recording/activity.py)
        self.writer: SegmentWriter | None = None
        self._stream: StreamInfo | None = None
        self._segment_us = cam.segment_seconds * 1_000_000
        self._needs_recovery = False
        self._unindexed: list[SegmentSummary] = []  # sealed while the index was unavailable, oldest first
        self._last_end_us = 0  # end (stamp + duration) of the newest stored packet
        self._failure: str | None = None  # set by housekeeping (disk full while flushing): ends the session
        rc = app.config.recorder
        self._backoff_initial, self._backoff_max = rc.backoff_initial_s, rc.backoff_max_s
        self.thread = threading.Thread(target=self.run, name=f"rec-{cam.id}", daemon=True)

    # -- the camera's loop ----------------------------------------------------------

    def run(self) -> None:
        backoff = self._backoff_initial  # the next wait: initial after a session that stored packets, then doubling
        while not self._stop.is_set():
            try:
                got = self._session()
            except Exception as exc:  # one camera must never take the recorder down
                msg = scrub_secrets(f"{exc.__class__.__name__}: {exc}", self.cam.source)
                log.error("camera %s: unexpected error (%s); reconnecting", self.cam.id, msg)
                self._abandon_writer()
                self._set_offline(f"internal error: {exc.__class__.__name__}")
                got = False
            if self._stop.is_set():
                break
            if got:
                backoff = self._backoff_initial
            if self._wait_before_retry(backoff):
                break
            backoff = min(backoff * 2, self._backoff_max)
            self.stats.reconnects += 1

    def _wait_before_retry(self, seconds: float) -> bool:
        """The back-off between sessions, cut short when a camera that went away comes back (True: stopping)."""
        return wait_before_retry(self._stop, self.cam, seconds)

    def _session(self) -> bool:
        """Open the source and record until it fails; True if any packet was stored."""
        if self._needs_recovery and not self._recover():
            return False
        self._failure = None
        self.camera_clock.follow_wall()  # a new session may start on a forward-stepped clock
        cap = self._open_capture(self.cam, self.camera_clock)
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
                failure = self._on_packet(pkt, cap)
                if failure:
                    reason = failure
                    break
                got = True
            with self.lock:
                self._finish_segment()
            if not self._stop.is_set():
                self._set_offline(reason)
        finally:
            cap.close()
        return got

    # -- packets and segments -------------------------------------------------------

    def _on_packet(self, pkt: Packet, cap: Capture) -> str | None:
        """Store one packet; returns why the session must end, or None."""
        with self.lock:
            if self._stop.is_set():
                return None
            if self._failure:
                return self._failure
            st = self.stats
            try:
                if self.writer is None:
                    if not pkt.keyframe:
                        st.skipped_before_keyframe += 1
                        return None
                    self._start_segment(pkt)
                elif pkt.keyframe and pkt.wall_us - self.writer.start_us >= self._segment_us:
                    self._finish_segment()
                    jump_us = cap.follow_wall_clock()  # a forward clock step shows between segments only
                    if jump_us:
                        pkt = dataclasses.replace(pkt, wall_us=pkt.wall_us + jump_us)
                        log.warning("camera %s: wall clock stepped forward %.3f s; following it from this "
                                    "segment on", self.cam.id, jump_us / 1e6)
                    self._start_segment(pkt)
                self.writer.write(pkt)
                self.activity.add(pkt.wall_us, len(pkt.data), pkt.keyframe)
                self.app.live.feed(self.cam.id, self._stream, pkt)  # live view: kept only if on for the camera
            except DiskFull:
                return "disk full"
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                self._disk_full()
                return "disk full"
            except SQLAlchemyError as exc:
                self._abandon_writer()
                return f"index unavailable ({exc.__class__.__name__})"
            if not st.online:
                self._came_online(pkt.wall_us)
            self._check_order(cap)
            st.packets += 1
            st.bytes_received += len(pkt.data)
            st.last_packet_us = pkt.wall_us
            self._last_end_us = max(self._last_end_us, self.writer.end_us)
            st._window[1] += 1
            st._window[2] += len(pkt.data)
        return None

    def _check_order(self, cap: Capture) -> None:
        """Frames reordered deeper than learned at connect: a stream problem until a clean connection."""
        st = self.stats
        if cap.misordered:
            if st.stream_problem is None:
                log.warning("camera %s: frames reordered deeper than at connect; order not kept", self.cam.id)
            st.stream_problem = order_problem(cap.misordered, cap.reorder_depth)
        elif st.stream_problem is not None and cap.packets_read >= ORDER_CLEAN_PACKETS:
            st.stream_problem = None

    def _start_segment(self, pkt: Packet) -> None:
        try:
            self.writer = self.app.store.open_writer(self.cam.id, self._stream, pkt.wall_us,
                                                     now_us=self.clock.now_us())
            self.activity.start(pkt.wall_us)
        except OSError as exc:  # a header cut short by ENOSPC is removed by _recover
            if exc.errno == errno.ENOSPC:
                self._disk_full()
                raise DiskFull() from None
            raise

    def _finish_segment(self) -> None:
        """Seal and index the open segment (lock held)."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            summary = writer.close(self.activity.finish())
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            self.writer = writer
            self._disk_full()
            return
        self.camera_clock.raise_to(summary.end_us)
        self.stats.segments += 1
        self._index(summary)

    def _index(self, summary: SegmentSummary) -> None:
        """Index a sealed segment now, or queue it while the index is away (never
        blocks the camera: the housekeeping thread retries, in order)."""
        if not self._unindexed and self._try_index(summary):
            return
        self._unindexed.append(summary)

    def _try_index(self, summary: SegmentSummary) -> bool:
        try:
            self.app.store.index_sealed(summary)
            return True
        except SQLAlchemyError as exc:
            if not self._unindexed:
                log.warning("camera %s: the index is unavailable (%s); sealed segments are kept and indexed "
                            "when it is back", self.cam.id, exc.__class__.__name__)
            return False

    def index_pending(self) -> int:
        """Retry the queued segments (housekeeping thread); returns how many are still queued."""
        while self._unindexed:
            if not self._try_index(self._unindexed[0]):
                break
            done = self._unindexed.pop(0)
            if not self._unindexed:
                log.info("camera %s: index back; queued segments indexed (last %s)", self.cam.id, done.path.name)
        return len(self._unindexed)

    def _abandon_writer(self) -> None:
        """Close the open file without sealing; it is recovered before the next session."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        self._needs_recovery = True
        try:
            writer.abandon()
        except OSError:  # closing flushes the buffer once more; on a full disk that fails again
            pass

    def _disk_full(self) -> None:
        self._abandon_writer()
        self._needs_recovery = True
        self.stats.disk_full_events += 1
        log.error("camera %s: disk full; open segment left for recovery, asking retention for space", self.cam.id)
        self._ask_for_space()

    def _ask_for_space(self) -> None:
        if self._on_disk_full is None:
            return
        try:
            self._on_disk_full(self.cam.id)
        except Exception as exc:
            log.error("camera %s: disk-full callback failed (%s)", self.cam.id, exc.__class__.__name__)

    def _recover(self) -> bool:
        """Seal what a disk-full or failed session left open; False while that is impossible."""
        try:
            for path in self.app.store.open_files(self.cam.id):
                self._drop_if_unusable(path)
            self.app.store.recover(self.cam.id)
        except SegmentError as exc:  # damage, not a crash: keep it for a person, record on
            bad = Path(exc.path)
            if bad.name.endswith(OPEN_SUFFIX) and bad.exists():
                bad.rename(bad.with_name(bad.name + DAMAGED_SUFFIX))
            log.error("camera %s: open segment %s is damaged (%s); kept as %s%s", self.cam.id, bad.name,
                      exc.reason, bad.name, DAMAGED_SUFFIX)
            return False
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._ask_for_space()
                self._set_offline("disk full, waiting for space")
            else:
                self._set_offline(f"cannot recover open segment ({exc.__class__.__name__})")
            return False
        self._needs_recovery = False
        return True

    @staticmethod
    def _drop_if_unusable(path: Path) -> None:
        """Remove an open file whose header was cut short (ENOSPC while writing it):
        it holds no footage.  Anything else is left to recovery."""
        try:
            inspect_header(path)
        except SegmentTruncated:
            path.unlink()
        except SegmentError:
            with open(path, "rb") as fh:
                head = fh.read(len(MAGIC))
            if MAGIC.startswith(head):  # empty, or part of the magic only
                path.unlink()

    # -- state and gaps ---------------------------------------------------------------

    def _came_online(self, first_us: int) -> None:
        st = self.stats
        st.online, st.gap_since_us, st.last_error = True, None, None
        st._window = [self.clock.monotonic_s(), 0, 0]
        self._db(lambda s: index.close_gap(s, self.cam.id, first_us))
        log.info("camera %s: recording", self.cam.id)

    def _set_offline(self, reason: str) -> None:
        st = self.stats
        was_online = st.online
        st.online, st.last_error, st.fps, st.bitrate_bps = False, reason[:500], 0.0, 0.0
        if st.gap_since_us is None:
            st.gap_since_us = self._last_end_us or self.camera_clock.now_us()
            start = st.gap_since_us
            self._db(lambda s: index.open_gap(s, self.cam.id, start, reason))
        if was_online:
            log.warning("camera %s: offline: %s", self.cam.id, reason)
        else:
            log.info("camera %s: still offline: %s", self.cam.id, reason)

    def note_restart_gap(self, reason: str = "recorder not running") -> None:
        """At start: the time since this camera's last segment (recorder not running) is a gap,
        and the camera clock starts after that segment's end."""
        def run(s: Session) -> None:
            last = index.last_segment_end(s, self.cam.id)
            if last is not None:
                self.camera_clock.raise_to(last)
                index.open_gap(s, self.cam.id, last, reason)
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
            gap_since_us=st.gap_since_us, last_error=st.last_error, stream_problem=st.stream_problem,
        )

    def flush_due(self) -> None:
        with self.lock:
            if self.writer is None:
                return
            try:
                self.writer.flush_due()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                self._disk_full()
                self._failure = "disk full"

    def seal(self) -> None:
        """Seal the open segment (at stop); the camera counts as offline from now on."""
        with self.lock:
            self._finish_segment()
            st = self.stats
            if st.online:  # an offline camera keeps the reason it is offline
                st.online, st.fps, st.bitrate_bps, st.last_error = False, 0.0, 0.0, "recorder stopped"


def default_capture(app) -> OpenCapture:
    def open_capture(cam: CameraConfig, camera_clock: CameraClock) -> Capture:
        rc = app.config.recorder
        return Capture(cam.source, transport=cam.transport, open_timeout_s=rc.open_timeout_s,
                       read_timeout_s=rc.read_timeout_s, loop=cam.loop, camera_clock=camera_clock)

    return open_capture


class Recorder:
    """All cameras of this node.  ``start()`` recovers open files first."""

    def __init__(self, app, *, clock: Clock | None = None, open_capture: OpenCapture | None = None,
                 on_disk_full: Callable[[str], None] | None = None):
        self.app = app
        self.clock = clock or app.clock
        self._stop = threading.Event()
        self._state_interval_s = app.config.recorder.state_interval_s
        self._open_capture = open_capture or default_capture(app)
        self._on_disk_full = on_disk_full
        self._apply_lock = threading.Lock()
        self.started = False
        # replaced whole (never changed in place) by apply(): other threads iterate the dict they read
        self.cameras = {cam.id: self._camera(cam) for cam in app.config.cameras if cam.enabled}
        self._house = threading.Thread(target=self._housekeeping, name="rec-house", daemon=True)

    def _camera(self, cam: CameraConfig) -> CameraRecorder:
        """A camera with its own stop event (apply() stops one camera; stop() sets them all)."""
        return CameraRecorder(self.app, cam, clock=self.clock, stop=threading.Event(),
                              open_capture=self._open_capture, on_disk_full=self._on_disk_full)

    def apply(self, cameras: list[CameraConfig]) -> list[str]:
        """Record exactly the enabled ``cameras`` from now on, without a restart (vms/recording/live_config.py)."""
        return apply_cameras(self, cameras)

    def start(self) -> None:
        recovered = self.app.store.recover()
        if recovered:
            log.info("recovered %d segment(s) left open by a previous run", len(recovered))
        for cam in self.cameras.values():
            cam.note_restart_gap()
        self.save_states()  # no camera is online until its first packet (a killed run may have left "online")
        with self._apply_lock:
            for cam in self.cameras.values():
                cam.thread.start()
            self.started = True
        self._house.start()

    def _housekeeping(self) -> None:
        last_state = last_index = self.clock.monotonic_s()
        while not self._stop.wait(FLUSH_INTERVAL_S):
            for cam in self.cameras.values():
                try:
                    cam.flush_due()
                except Exception as exc:
                    log.error("camera %s: flushing failed (%s)", cam.cam.id, exc.__class__.__name__)
            mono = self.clock.monotonic_s()
            if mono - last_index >= INDEX_RETRY_S:
                last_index = mono
                for cam in self.cameras.values():
                    if cam._unindexed:
                        cam.index_pending()
            if mono - last_state >= self._state_interval_s:
                last_state = mono
                self.save_states()

    def save_states(self) -> None:
        try:
            with Session(self.app.engine) as s, s.begin():
                now = self.clock.now_us()
                # one SELECT puts this recorder's state rows in the session (held by ``rows``: the identity
                # map keeps weak references), so each save_camera_state finds its row without a query and
                # the autoflush a query triggers; with 32 cameras a save costs 1.5 ms of CPU instead of 8 ms
                rows = index.load_camera_states(s, list(self.cameras))
                for cam in self.cameras.values():
                    cam.save_state(s, now)
                del rows
        except SQLAlchemyError as exc:
            log.warning("could not save camera state (%s)", exc.__class__.__name__)

    def stop(self, timeout_s: float = 4.0) -> None:
        """Seal every open segment and stop; returns within about ``timeout_s``."""
        self._stop.set()
        for cam in self.cameras.values():
            cam._stop.set()
        for cam in self.cameras.values():
            try:
                cam.seal()
            except Exception as exc:  # one camera's failure must not keep the others' segments open
                log.error("camera %s: sealing failed (%s)", cam.cam.id, exc.__class__.__name__)
        for cam in self.cameras.values():
            if cam._unindexed and cam.index_pending():
                log.error("camera %s: %d sealed segment(s) could not be indexed (index unavailable); the janitor "
                          "indexes them at its next start, or run 'vms check --repair'", cam.cam.id,
                          len(cam._unindexed))
        self.save_states()
        per = max(0.05, timeout_s / max(1, len(self.cameras) + 1))
        for cam in self.cameras.values():
            if cam.thread.is_alive():
                cam.thread.join(per)
        if self._house.is_alive():
            self._house.join(per)
