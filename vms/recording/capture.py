"""Packet capture with OpenCV's FFmpeg backend in raw-packet mode: copy, never decode.

``Capture(source).open()`` describes the stream (:class:`StreamInfo`); ``read()``
returns one compressed access unit (:class:`Packet`) at a time, ``None`` when
the stream has ended, and raises :class:`CaptureError` (whose message never
holds the URL's credentials) when the source cannot be opened or falls silent.
A capture is used by one thread.  Sources are RTSP URLs (TCP by default, UDP
selectable) or local files, which play in real time and optionally loop, so a
file can stand in for a camera.

What OpenCV 5.0 (opencv-python-headless 5.0.0, FFmpeg 8 inside) gives, measured:

* ``VideoCapture(src, CAP_FFMPEG, [CAP_PROP_FORMAT, -1, ...])`` demuxes only
  (a decoder is opened at ``open`` but never fed).  ``grab()`` reads one packet,
  ``retrieve()`` returns it as a 1xN uint8 array, ``CAP_PROP_LRF_HAS_KEY_FRAME``
  is its key flag, ``retrieve(None, CAP_PROP_CODEC_EXTRADATA_INDEX)`` the
  extradata.  Packets are always Annex-B: RTP is depacketised to Annex-B, and for
  MP4/MKV files OpenCV runs ``h264_mp4toannexb``/``hevc_mp4toannexb``.  File
  extradata is still avcC/hvcC, so :func:`vms.recording.bitstream.annexb_extradata` converts it and a
  stream's extradata matches its packets (RTSP extradata is Annex-B already,
  from the SDP's sprop parameter sets).
* Timestamps per packet: ``CAP_PROP_POS_MSEC`` is the packet's pts (dts when
  pts is unset) minus the stream's ``start_time``, in milliseconds as a double;
  0 when the packet has no timestamp.  ``round(pos_msec * 90)`` recovers the
  90 kHz RTP timestamp exactly.  ``CAP_PROP_PTS`` is the same pts counted in
  frames (rounded through the FPS: too coarse).  ``CAP_PROP_DTS_DELAY`` reads
  0 over RTSP even with B-frames.  There is no per packet dts.  ``CAP_PROP_STREAM_OPEN_TIME_USEC`` (RTCP wall clock) is only set
  when a sender report arrived during ``open`` and is not used.
  ``CAP_PROP_FRAME_TYPE`` crashes the process in raw mode: never ask for it.
* Over RTSP FFmpeg's parser leaves the *first* packet without pts (so it reads
  as 0, like the second), and ``open`` buffers what arrived while probing the
  stream (about 1.9 s at 15 fps); those packets come out of ``read`` at once.
  The parser holds each access unit until the next one begins (one frame of
  latency); when the read timeout interrupts, ``grab`` returns that held packet
  *after* the timeout, so a grab that took the whole timeout marks the stream
  silent and the next ``read`` fails at once instead of waiting a second time.
* Options come only from the process-wide ``OPENCV_FFMPEG_CAPTURE_OPTIONS``
  (``key;value|key;value``), read at each open.  We always set ``rtsp_transport``
  (:class:`_EnvGate`: opens with the same value run together, another waits).
  ``CAP_PROP_OPEN_TIMEOUT_MSEC`` bounds ``open``, ``CAP_PROP_READ_TIMEOUT_MSEC``
  each ``grab`` (FFmpeg's interrupt callback); ``grab`` returns False for end of
  stream, error and timeout alike: a timeout is told by the time it took.
* OpenCV serialises every ``open`` behind one mutex (a silent camera would hold
  up all reconnects): ``OPENCV_FFMPEG_IS_THREAD_SAFE=1`` unless set otherwise.
  FFmpeg's and OpenCV's logs are turned down unless set (noise at reconnects).

Timestamps (time base 1/90000) keep the camera's frame order, B-frames included
(:mod:`vms.recording.stamps`): a connection's first packets are held back until
the reorder depth is known (0 without B-frames: dts = pts), the untimestamped
first RTSP packet goes before the frames after it, pts are made continuous
(first packet 0; loops and clock jumps re-based) and each packet gets a dts in
decode order; deeper reordering is counted in :attr:`Capture.misordered`.
Wall-clock stamps (of the decode time, so never backwards)
come from :class:`WallStamps`: the open time plus the stream's own timestamps,
never later than the wall clock at arrival and never more than
``MAX_LAG_US`` behind it (then it re-anchors), never backwards.  A file read
faster than real time (``realtime=False``) is stamped from the stream alone.

"The wall clock" here is ``wall_clock_us``, by default the system clock.  A
recorder passes a :class:`CameraClock` instead (one per camera, kept across
reconnects): the system wall clock read through the monotonic clock, so an NTP
step does not reach the stamps until :meth:`Capture.follow_wall_clock` is
called (the recorder calls it only where a new segment starts), and a backward
step is never followed at all.  That is the only stamping mechanism: the
recorder does not re-stamp packets (docs/design/recorder.md, "Timestamps").
"""

from __future__ import annotations

import collections
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import cv2

from storage.format.packets import Packet, StreamInfo
from vms.core.clock import Clock
from vms.recording.bitstream import annexb_extradata, codec_of_annexb, has_picture
from vms.recording.stamps import LEARN_PACKETS, DecodeTimes, PtsTrack, infer_first_pts, reorder_depth

TICKS_PER_S = 90_000
TIME_BASE = Fraction(1, TICKS_PER_S)
MAX_LAG_US = 5_000_000  # more than FFmpeg's probing buffer at open (analyzeduration 5 s)
MAX_STEP_S = 60.0  # a pts step larger than this is a discontinuity, not a gap
_FOURCC_CODECS = {"h264": "h264", "avc1": "h264", "x264": "h264", "hevc": "hevc", "h265": "hevc",
                  "hvc1": "hevc", "hev1": "hevc", "x265": "hevc"}
_SECRET_KEYS = re.compile(r"pass|pwd|token|secret|key|auth|sig|user", re.IGNORECASE)


class CaptureError(Exception):
    """The source cannot be opened or read; the message never carries credentials (:func:`redact_url`)."""


def redact_url(url: str) -> str:
    """``rtsp://user:pass@host/x?password=y`` -> ``rtsp://***@host/x?password=***``.

    Everything up to the last ``@`` counts as credentials, so a password with an
    unescaped ``/`` or ``@`` is hidden too (at worst, too much is hidden)."""
    if not is_network_source(url):
        return url
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    try:
        parts = urlsplit(f"{scheme}://{rest}")
    except ValueError:
        return f"{scheme}://<unparseable>"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_KEYS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _credentials(url: str) -> list[str]:
    """The userinfo of a network URL and its password part, as written."""
    if not is_network_source(url) or "@" not in url.partition("://")[2]:
        return []
    userinfo = url.partition("://")[2].rpartition("@")[0]
    return [s for s in (userinfo, userinfo.partition(":")[2]) if s]


def is_network_source(source: str) -> bool:
    scheme, sep, _ = source.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.isascii() and scheme.replace("+", "").isalnum() \
        and scheme.lower() != "file"


class Capture:
    """One source, read packet by packet.  ``open`` -> ``read``... -> ``close``.

    ``realtime`` (default True for files, and for a file of known length served over
    HTTP(S)) paces packets by their timestamps against a monotonic clock; ``loop``
    (files only) starts the file
    again at its end with timestamps that keep increasing.  Both are ignored for
    network sources, which run in real time and end when the camera stops."""

    def __init__(self, source: str, *, transport: str = "tcp", open_timeout_s: float = 10,
                 read_timeout_s: float = 10, wall_clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
                 realtime: bool | None = None, loop: bool = False, camera_clock: CameraClock | None = None):
        if transport not in ("tcp", "udp"):
            raise ValueError(f"transport {transport!r}: expected 'tcp' or 'udp'")
        if open_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        self.source = source
        self.network = is_network_source(source)
        self.transport = transport
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.camera_clock = camera_clock
        self._wall_clock_us = camera_clock.now_us if camera_clock is not None else wall_clock_us
        self.realtime = (not self.network) if realtime is None else (realtime and not self.network)
        self._pace_http_files = realtime is None
        self.loop = loop and not self.network
        self.info: StreamInfo | None = None
        self.packets_read = 0
        self._cap = None
        self._pts: PtsTrack | None = None
        self._dts: DecodeTimes | None = None  # None until the reorder depth is learned
        self._ready: collections.deque[Packet] = collections.deque()  # learned packets not yet returned
        self._pace_top: int | None = None  # the largest pts read, continuous across loops (paces files)
        self._pace_offset = 0
        self._new_pass, self._looped = True, False
        self._wall: WallStamps | None = None
        self._pace: tuple[float, int] | None = None  # (monotonic_s, pts) at which pacing started
        self._packets_this_pass = 0
        self._silent = False

    def __repr__(self) -> str:
        return f"Capture({redact_url(self.source)!r}, transport={self.transport!r})"

    @property
    def name(self) -> str:
        return redact_url(self.source)

    # -- public API ---------------------------------------------------------------------------

    def open(self) -> StreamInfo:
        if self._cap is not None:
            raise CaptureError(f"{self.name}: already open")
        if not self.network and not Path(self._path()).is_file():
            raise CaptureError(f"{self.name}: no such file")
        open_wall_us = self._wall_clock_us()
        self._cap = self._open_cv()
        try:
            self.info = self._stream_info(self._cap)
        except BaseException:
            self.close()
            raise
        if self._pace_http_files and self.source.lower().startswith(("http:", "https:")) \
                and self._cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
            # a file of known length served over HTTP arrives as fast as the network allows; a live HTTP
            # stream has no length.  Pace the file by its timestamps so its packets are stamped as they play.
            self.realtime = True
        frame_ticks = max(1, round(TICKS_PER_S / self.info.fps))
        self._pts = PtsTrack(frame_ticks, int(MAX_STEP_S * TICKS_PER_S))
        self._wall = WallStamps(open_wall_us, clamp=self.network or self.realtime)
        return self.info

    def read(self) -> Packet | None:
        """The next packet; None once the stream has ended; CaptureError when it
        cannot be read or nothing arrived for ``read_timeout_s``."""
        if self._cap is None or self.info is None:
            raise CaptureError(f"{self.name}: not open")
        if self._ready:
            return self._ready.popleft()
        if self._dts is None:
            self._learn()
            return self._ready.popleft() if self._ready else None
        raw = self._read_raw()
        if raw is None:
            return None
        data, keyframe, raw_pts, arrival_us, looped = raw
        if looped:
            self._pts.restart()
        return self._packet(data, keyframe, *self._dts.next(self._pts.next(raw_pts)), arrival_us)

    @property
    def reorder_depth(self) -> int | None:  # frames the stream reorders (0: no B-frames); None until learned
        return None if self._dts is None else self._dts.depth

    @property
    def misordered(self) -> int:  # packets reordered deeper than learned at the start: order not kept
        return 0 if self._dts is None else self._dts.misordered

    def _learn(self) -> None:
        """Read the first packets of the connection, learn the reorder depth, stamp them."""
        got = []
        while len(got) < LEARN_PACKETS and (raw := self._read_raw()) is not None:
            got.append(raw)
        frame_ticks = self._pts.frame_ticks
        first_pass = next((i for i, r in enumerate(got) if r[4]), len(got))  # a file may loop while learning
        raw = infer_first_pts([r[2] for r in got[:first_pass]], frame_ticks) + [r[2] for r in got[first_pass:]]
        pts = []
        for r, item in zip(raw, got, strict=True):
            if item[4]:
                self._pts.restart()
            pts.append(self._pts.next(r))
        self._dts = DecodeTimes(reorder_depth(pts), frame_ticks)
        for (data, keyframe, _raw, arrival_us, _), (p, d) in zip(got, self._dts.start(pts), strict=True):
            self._ready.append(self._packet(data, keyframe, p, d, arrival_us))

    def _packet(self, data: bytes, keyframe: bool, pts: int, dts: int, arrival_us: int) -> Packet:
        return Packet(data, self._wall.stamp(dts, arrival_us), pts, dts, keyframe, self._pts.frame_ticks)

    def _read_raw(self) -> tuple[bytes, bool, int, int, bool] | None:
        """The next packet as read: (data, keyframe, raw 90 kHz pts, wall clock at arrival, first after a loop).
        A tiny packet without a coded slice (over UDP at the end of a stream) is no frame: skipped."""
        arr = None
        while arr is None or (arr.size <= 64 and not has_picture(self.info.codec, arr.tobytes())):
            if not self._grab():
                return None
            ok, arr = self._cap.retrieve()  # after _grab: a looping file has a new capture
            if not ok or arr is None:
                raise CaptureError(f"{self.name}: a packet could not be retrieved")
        cap = self._cap
        keyframe = cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME) != 0
        raw = round(cap.get(cv2.CAP_PROP_POS_MSEC) * TICKS_PER_S / 1000)
        if self.realtime:  # files: paced by the largest pts so far (B-frames go back and forth)
            if self._new_pass:  # a loop continues one frame after the pass before
                top = self._pace_top
                self._pace_offset = -raw if top is None else top + self._pts.frame_ticks - raw
                self._new_pass = False
            at = raw + self._pace_offset
            self._pace_top = at if self._pace_top is None else max(self._pace_top, at)
            self._wait_until_due(self._pace_top)
        self.packets_read += 1
        self._packets_this_pass += 1
        looped, self._looped = self._looped, False
        return arr.tobytes(), keyframe, raw, self._wall_clock_us(), looped

    def follow_wall_clock(self) -> int:
        """Let the camera clock catch up with a wall clock that stepped forward and
        shift this stream's stamps by the same amount; returns the jump in µs (0
        without a :class:`CameraClock`, or when the wall clock did not step forward).
        Call it between two packets, where a jump may appear (a segment boundary)."""
        if self.camera_clock is None:
            return 0
        jump_us = self.camera_clock.follow_wall()
        if jump_us and self._wall is not None:
            self._wall.shift(jump_us)
        return jump_us

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def __enter__(self) -> Capture:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Packet]:
        while (pkt := self.read()) is not None:
            yield pkt

    # -- internals ----------------------------------------------------------------------------

    def _path(self) -> str:
        return urlsplit(self.source).path if self.source.startswith("file:") else self.source

    def _open_cv(self):
        _configure_opencv_once()
        params = [cv2.CAP_PROP_FORMAT, -1,
                  cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
        started = time.monotonic()
        try:
            with CAPTURE_OPTIONS.using(f"rtsp_transport;{self.transport}"):
                cap = cv2.VideoCapture(self._path(), cv2.CAP_FFMPEG, params)
        except cv2.error as exc:
            raise CaptureError(f"{self.name}: OpenCV refused to open it ({_scrub(str(exc), self.source)})") from None
        if cap.isOpened():
            return cap
        cap.release()
        took_s = time.monotonic() - started
        if self.network and took_s >= 0.9 * self.open_timeout_s:
            raise CaptureError(f"{self.name}: no answer within {self.open_timeout_s:g} s")
        what = "unreachable, refused, not found or not a video stream" if self.network else "not a readable video file"
        raise CaptureError(f"{self.name}: cannot open ({what})")

    def _stream_info(self, cap) -> StreamInfo:
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1").lower()
        ok, arr = cap.retrieve(None, int(cap.get(cv2.CAP_PROP_CODEC_EXTRADATA_INDEX)))
        extradata = arr.tobytes() if ok and arr is not None else b""
        codec = _FOURCC_CODECS.get(fourcc) or codec_of_annexb(extradata)
        if codec is None:
            raise CaptureError(f"{self.name}: codec {fourcc.strip(chr(0))!r} is not supported (H.264 or H.265 only)")
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            raise CaptureError(f"{self.name}: picture size unknown ({width}x{height})")
        return StreamInfo(codec=codec, width=width, height=height, fps=nominal_fps(cap.get(cv2.CAP_PROP_FPS)),
                          time_base=TIME_BASE, extradata=annexb_extradata(codec, extradata))

    def _grab(self) -> bool:
        if self._silent:
            raise CaptureError(f"{self.name}: no packet for {self.read_timeout_s:g} s")
        while True:
            started = time.monotonic()
            got = self._cap.grab()
            # the read timeout fired: a packet got now is the parser's last, flushed by the interrupt
            self._silent = self.network and time.monotonic() - started >= self.read_timeout_s - 0.01
            if got:
                return True
            if self.network:
                if self._silent:
                    raise CaptureError(f"{self.name}: no packet for {self.read_timeout_s:g} s")
                return False
            if not (self.loop and self._packets_this_pass):
                return False
            self._cap.release()  # loop: start the file again
            self._cap, self._packets_this_pass, self._new_pass, self._looped = None, 0, True, True
            self._cap = self._open_cv()

    def _wait_until_due(self, pts: int) -> None:
        now = time.monotonic()
        if self._pace is None:
            self._pace = (now, pts)
            return
        due = self._pace[0] + (pts - self._pace[1]) / TICKS_PER_S
        if due - now > 0:
            time.sleep(due - now)
        elif now - due > 1.0:  # fell behind (a stall); do not burst to catch up
            self._pace = (now, pts)


class WallStamps:
    """Wall-clock stamps (UTC µs) from stream timestamps.

    ``anchor_us`` plus the stream time since the first packet.  With ``clamp``
    (live sources), a stamp later than the wall clock at arrival, or more than
    ``max_lag_us`` behind it, re-anchors to arrival.  Stamps never go backwards."""

    def __init__(self, anchor_us: int, *, clamp: bool, max_lag_us: int = MAX_LAG_US):
        self.clamp, self.max_lag_us = clamp, max_lag_us
        self._anchor: tuple[int, int | None] = (anchor_us, None)  # (wall µs, pts)
        self.last_us: int | None = None

    def stamp(self, pts: int, now_us: int) -> int:
        wall0, pts0 = self._anchor
        if pts0 is None:
            self._anchor = (wall0, pts)
            pts0 = pts
        est = wall0 + (pts - pts0) * 1_000_000 // TICKS_PER_S
        if self.clamp and (est > now_us or now_us - est > self.max_lag_us):
            self._anchor, est = (now_us, pts), now_us
        if self.last_us is not None and est <= self.last_us:
            est = self.last_us + 1
        self.last_us = est
        return est

    def shift(self, delta_us: int) -> None:
        """Move every later stamp by ``delta_us`` (>= 0: the clock it follows jumped forward)."""
        if delta_us < 0:
            raise ValueError("stamps never move backwards")
        wall0, pts0 = self._anchor
        self._anchor = (wall0 + delta_us, pts0)


class CameraClock:
    """One camera's wall clock (UTC µs): the system wall clock at an anchor plus
    monotonic time since, so it never goes backwards and an NTP step changes
    nothing until :meth:`follow_wall`.

    * ``follow_wall()`` jumps to the wall clock when that is ahead by more than
      ``tolerance_us`` (a forward step) and returns the jump; a wall clock that
      is behind (a backward step) is not followed: going back would put new
      footage on top of footage already stamped.  The camera then runs ahead of
      the wall clock by the step until a later forward jump or a restart at which
      the wall clock has passed the camera's last footage.
    * ``raise_to(floor_us)`` makes ``now_us()`` at least ``floor_us`` (the end of
      the camera's last segment, e.g. from the index at start).

    Thread-safe (the capture thread reads it, the recorder may raise it)."""

    def __init__(self, clock: Clock, *, floor_us: int = 0, tolerance_us: int = 1_000):
        self._clock, self.tolerance_us = clock, tolerance_us
        self._lock = threading.Lock()
        self._wall0, self._mono0 = max(clock.now_us(), floor_us), clock.monotonic_s()

    def now_us(self) -> int:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> int:
        return self._wall0 + int((self._clock.monotonic_s() - self._mono0) * 1_000_000)

    def offset_us(self) -> int:
        """Wall clock minus camera clock (> 0: the wall clock stepped forward)."""
        with self._lock:
            return self._clock.now_us() - self._now_locked()

    def follow_wall(self) -> int:
        with self._lock:
            now, wall = self._now_locked(), self._clock.now_us()
            if wall - now <= self.tolerance_us:
                return 0
            self._wall0, self._mono0 = wall, self._clock.monotonic_s()
            return wall - now

    def raise_to(self, floor_us: int) -> None:
        with self._lock:
            now = self._now_locked()
            if floor_us > now:
                self._wall0 += floor_us - now


def nominal_fps(value: float) -> Fraction:
    """OpenCV's float frame rate as a fraction (29.97 -> 30000/1001); 25 when unknown."""
    if not 0.5 <= value <= 300:
        return Fraction(25)
    return Fraction(value).limit_denominator(1001)


def scrub_secrets(text: str, source: str) -> str:
    """Remove a source URL and its credentials from any message (a library's, an exception's)."""
    return _scrub(text, source)


def _scrub(text: str, source: str) -> str:
    """Remove a source URL and its credentials from a library's message."""
    text = text.replace(source, redact_url(source))
    for secret in _credentials(source):
        text = text.replace(secret, "***")
    return text


class _EnvGate:
    """One process-wide environment variable shared by concurrent opens: opens
    needing the same value proceed together; a different value waits until no
    open is using the current one."""

    def __init__(self, name: str):
        self.name = name
        self._cond = threading.Condition()
        self._value: str | None = None
        self._users = 0

    @contextmanager
    def using(self, value: str):
        with self._cond:
            while self._users and self._value != value:
                self._cond.wait()
            if os.environ.get(self.name) != value:
                os.environ[self.name] = value
            self._value = value
            self._users += 1
        try:
            yield
        finally:
            with self._cond:
                self._users -= 1
                self._cond.notify_all()


CAPTURE_OPTIONS = _EnvGate("OPENCV_FFMPEG_CAPTURE_OPTIONS")
_configured = threading.Lock()
_configured_done = False


def _configure_opencv_once() -> None:
    """Concurrent opens; quiet FFmpeg/OpenCV logs (each overridable by the environment)."""
    global _configured_done
    with _configured:
        if _configured_done:
            return
        os.environ.setdefault("OPENCV_FFMPEG_IS_THREAD_SAFE", "1")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        if "OPENCV_LOG_LEVEL" not in os.environ:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        _configured_done = True
