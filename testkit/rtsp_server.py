"""A real RTSP server for tests and benchmarks: GStreamer's reference server.

Two halves in one file:

* run as a script by the *system* Python (``/usr/bin/python3``, which has ``gi``
  with ``GstRtspServer``; the virtualenv has not; ``VMS_TEST_SYSTEM_PYTHON``
  names another), it serves clip files on ``127.0.0.1:PORT`` and prints
  ``READY port=N`` once listening.  It stops on SIGTERM/SIGINT and, with
  ``--watch-stdin``, when its stdin reaches EOF (the controlling process died)::

      /usr/bin/python3 testkit/rtsp_server.py --port 8554 /cam1=clip.mp4 /cam2=clip.mp4:loop:shared

* imported from the virtualenv, :class:`RtspServer` starts, stops, kills and
  restarts that script (same port on restart) and builds URLs.

How a mount plays a clip: at start the server demuxes each clip once
(``filesrc ! parsebin ! h26Xparse``) into Annex-B access units held in memory.
Every client of a mount (every client: a new pipeline; ``shared``: one pipeline
for all) gets ``appsrc ! h26Xparse config-interval=-1 ! rtph26Xpay``; the sinks
sync to the clock, so packets leave at the clip's frame rate.  At the end of the
clip the mount either ends the stream (EOS: RTCP BYE, the client sees end of
stream) or, with ``loop``, starts again with timestamps that keep increasing.
One access unit in the clip is one access unit (one packet) at the client, so
tests can compare counts and keyframe positions.  Capacity, measured on the
2-core machine: 32 looping mounts of 1080p15 4 Mbit/s H.264, one client each,
cost the server about 37 % of one core and stay real time.

GStreamer is not imported at module level, so the controller works in the
virtualenv; :func:`unavailable_reason` says why the server cannot run here.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PYTHON = os.environ.get("VMS_TEST_SYSTEM_PYTHON", "/usr/bin/python3")  # a Python with gi
SCRIPT = Path(__file__).resolve()
READY_PREFIX = "READY port="
ELEMENTS = ("appsrc", "parsebin", "h264parse", "rtph264pay", "h265parse", "rtph265pay")


# --------------------------------------------------------------------------------------------
# Controller (virtualenv side)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount point: ``clip`` is served once and ends (EOS) unless ``loop``;
    ``shared`` lets all clients watch one pipeline (as a camera does)."""

    clip: Path
    loop: bool = False
    shared: bool = False

    def spec(self, path: str) -> str:
        return f"{path}={self.clip}" + (":loop" if self.loop else "") + (":shared" if self.shared else "")


@functools.cache
def unavailable_reason(python: str = SYSTEM_PYTHON) -> str | None:
    """None when ``python`` can run the server, else why not (for a skip or failure message)."""
    if not os.access(python, os.X_OK):
        return f"{python} not found (the RTSP server needs the system Python with gi)"
    try:
        proc = subprocess.run([python, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return f"{python} {SCRIPT.name} --check timed out"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return ("GStreamer's RTSP server is unavailable (Debian packages gir1.2-gst-rtsp-server-1.0, "
                f"python3-gst-1.0, gstreamer1.0-plugins-good/-bad): {tail[0]}")
    return None


class RtspServer:
    """Controls one server process serving ``mounts`` (``{"/cam1": Mount(...)}``; a path is a Mount).

    ``port=0`` picks a free port at the first start; :meth:`restart` and a
    :meth:`start` after :meth:`stop`/:meth:`kill` reuse it.  ``log_path`` receives
    the server's stderr (default: discarded)."""

    def __init__(self, mounts: Mapping[str, Mount | Path | str], *, port: int = 0, host: str = "127.0.0.1",
                 python: str = SYSTEM_PYTHON, ready_timeout_s: float = 30.0, log_path: Path | None = None):
        if not mounts:
            raise ValueError("at least one mount is needed")
        self.mounts = {_mount_path(k): v if isinstance(v, Mount) else Mount(Path(v)) for k, v in mounts.items()}
        self.host, self.port, self.python = host, port, python
        self.ready_timeout_s = ready_timeout_s
        self.log_path = log_path
        self._proc: subprocess.Popen | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> RtspServer:
        if self.running:
            raise RuntimeError("the RTSP server is already running")
        args = [self.python, str(SCRIPT), "--watch-stdin", "--host", self.host, "--port", str(self.port)]
        args += [m.spec(p) for p, m in self.mounts.items()]
        err = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                          text=True, start_new_session=True)
        finally:
            if self.log_path:
                err.close()
        self.port = self._wait_ready()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate politely (SIGTERM), then SIGKILL after ``timeout_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # in case it is frozen
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _close_pipes(proc)

    def kill(self) -> None:
        """SIGKILL: the camera loses power; clients see the connection drop."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        _close_pipes(proc)

    def restart(self, *, down_s: float = 0.0) -> RtspServer:
        """Stop, stay down ``down_s`` seconds, start again on the same port."""
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP: the camera hangs; connections stay open but fall silent."""
        if self.running:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def url(self, mount: str = "/cam1", *, userinfo: str | None = None) -> str:
        """``rtsp://[userinfo@]host:port/mount``; the server ignores credentials."""
        path = _mount_path(mount)
        if path not in self.mounts:
            raise KeyError(f"no mount {path!r} (have {sorted(self.mounts)})")
        auth = f"{userinfo}@" if userinfo else ""
        return f"rtsp://{auth}{self.host}:{self.port}{path}"

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    def _wait_ready(self) -> int:
        proc = self._proc
        got: list[str] = []
        reader = threading.Thread(target=_read_ready, args=(proc, got), daemon=True)
        reader.start()
        reader.join(self.ready_timeout_s)
        if got and got[0].startswith(READY_PREFIX):
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return int(got[0][len(READY_PREFIX):])
        self.kill()
        log = f" (see {self.log_path})" if self.log_path else ""
        raise RuntimeError(f"RTSP server did not become ready within {self.ready_timeout_s} s: "
                           f"{got[0] if got else 'no output'}{log}")


def _mount_path(mount: str) -> str:
    return mount if mount.startswith("/") else "/" + mount


def _read_ready(proc: subprocess.Popen, got: list[str]) -> None:
    for line in proc.stdout:
        line = line.strip()
        if line.startswith(READY_PREFIX) or line.startswith("ERROR"):
            got.append(line)
            return


def _drain(proc: subprocess.Popen) -> None:
    try:
        for _ in proc.stdout:
            pass
    except (OSError, ValueError):
        pass


def _close_pipes(proc: subprocess.Popen) -> None:
    for f in (proc.stdin, proc.stdout):
        try:
            if f:
                f.close()
        except OSError:
            pass


# --------------------------------------------------------------------------------------------
# Server (system Python side)
# --------------------------------------------------------------------------------------------

PARSERS = {"video/x-h264": ("h264parse", "rtph264pay"), "video/x-h265": ("h265parse", "rtph265pay")}


def _serve(host: str, port: int, specs: list[str], watch_stdin: bool) -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    clips: dict[str, _Clip] = {}
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(str(port))
    mounts = server.get_mount_points()
    for spec in specs:
        path, clip_path, loop, shared = _parse_spec(spec)
        if clip_path not in clips:
            clips[clip_path] = _Clip.load(Gst, clip_path)
        mounts.add_factory(path, _factory(Gst, GstRtspServer, clips[clip_path], loop, shared))
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on {host}:{port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    if watch_stdin:
        GLib.io_add_watch(GLib.IOChannel.unix_new(0), GLib.PRIORITY_DEFAULT,
                          GLib.IOCondition.IN | GLib.IOCondition.HUP, _on_stdin, loop)
    print(f"{READY_PREFIX}{server.get_bound_port()}", flush=True)
    loop.run()
    return 0


def _on_stdin(channel, _cond, loop) -> bool:
    if not os.read(0, 4096):  # EOF: whoever started us is gone
        loop.quit()
        return False
    return True


def _parse_spec(spec: str) -> tuple[str, str, bool, bool]:
    path, _, rest = spec.partition("=")
    flags = []
    while rest.endswith((":loop", ":shared")):
        rest, _, flag = rest.rpartition(":")
        flags.append(flag)
    if not path.startswith("/") or not rest:
        raise SystemExit(f"bad mount {spec!r}: expected /PATH=FILE[:loop][:shared]")
    return path, rest, "loop" in flags, "shared" in flags


class _Clip:
    """A clip's access units (Annex-B, one Gst.Buffer each) and their caps."""

    def __init__(self, caps, parser: str, payloader: str, buffers: list, duration_ns: int):
        self.caps, self.parser, self.payloader = caps, parser, payloader
        self.buffers, self.duration_ns = buffers, duration_ns

    @classmethod
    def load(cls, Gst, path: str) -> _Clip:
        if not os.path.isfile(path):
            raise SystemExit(f"clip {path} does not exist")
        pipe, src, parsebin = Gst.Pipeline(), Gst.ElementFactory.make("filesrc"), Gst.ElementFactory.make("parsebin")
        src.set_property("location", path)
        pipe.add(src)
        pipe.add(parsebin)
        src.link(parsebin)
        linked = threading.Event()
        found: dict = {}

        def pad_added(_pb, pad):
            name = pad.query_caps(None).get_structure(0).get_name()
            if name not in PARSERS or found:
                return
            parser, pay = PARSERS[name]
            tail = Gst.parse_bin_from_description(
                f"{parser} ! {name},stream-format=byte-stream,alignment=au ! appsink name=sink sync=false", True)
            pipe.add(tail)
            tail.sync_state_with_parent()
            pad.link(tail.get_static_pad("sink"))
            found.update(sink=tail.get_by_name("sink"), parser=parser, pay=pay)
            linked.set()

        parsebin.connect("pad-added", pad_added)
        pipe.set_state(Gst.State.PLAYING)
        try:
            if not linked.wait(20):
                raise SystemExit(f"clip {path}: no H.264/H.265 video stream found")
            buffers, caps = [], None
            while (sample := found["sink"].emit("try-pull-sample", 10 * Gst.SECOND)) is not None:
                caps = caps or sample.get_caps()
                buffers.append(sample.get_buffer())
        finally:
            pipe.set_state(Gst.State.NULL)
        if not buffers:
            raise SystemExit(f"clip {path}: no video packets")
        last = buffers[-1]
        duration_ns = last.pts + (last.duration if last.duration != Gst.CLOCK_TIME_NONE else 0) - buffers[0].pts
        return cls(caps, found["parser"], found["pay"], buffers, duration_ns)


def _factory(Gst, GstRtspServer, clip: _Clip, loop: bool, shared: bool):
    factory = GstRtspServer.RTSPMediaFactory()
    # parameter sets in-band before every keyframe, as cameras send them; the parser inserts
    # them per access unit (the payloader would insert them before every IDR slice)
    factory.set_launch(f"( appsrc name=src format=time is-live=false ! {clip.parser} config-interval=-1 "
                       f"! {clip.payloader} name=pay0 pt=96 )")
    factory.set_shared(shared)
    feeders = {}  # media -> feeder; the media holds the appsrc, we hold the feeder

    def configure(_factory, media):
        src = media.get_element().get_child_by_name("src")
        src.set_property("caps", clip.caps)
        feeder = _Feeder(Gst, clip, loop)
        src.connect("need-data", feeder.need_data)
        feeders[media] = feeder
        media.connect("unprepared", lambda m: feeders.pop(m, None))

    factory.connect("media-configure", configure)
    return factory


class _Feeder:
    """Pushes a clip's access units into one appsrc; loops with increasing timestamps."""

    def __init__(self, Gst, clip: _Clip, loop: bool):
        self.Gst, self.clip, self.loop = Gst, clip, loop
        first = clip.buffers[0]
        # from the first decode time: with B-frames the first dts is before the first pts, and a GstBuffer's
        # times cannot be negative
        start = first.pts if first.dts == Gst.CLOCK_TIME_NONE else min(first.pts, first.dts)
        self.index, self.offset_ns, self.ended = 0, -start, False
        self.copy_flags = Gst.BufferCopyFlags.MEMORY | Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.META

    def need_data(self, src, _length) -> None:
        if self.ended:
            return
        buffers = self.clip.buffers
        if self.index == len(buffers):
            if not self.loop:
                self.ended = True
                src.emit("end-of-stream")
                return
            self.index, self.offset_ns = 0, self.offset_ns + self.clip.duration_ns
        orig = buffers[self.index]
        buf = orig.copy_region(self.copy_flags, 0, orig.get_size())
        buf.pts = orig.pts + self.offset_ns
        buf.dts = buf.pts if orig.dts == self.Gst.CLOCK_TIME_NONE else orig.dts + self.offset_ns
        buf.duration = orig.duration
        self.index += 1
        src.emit("push-buffer", buf)


def _check() -> int:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import Gst, GstRtspServer  # noqa: F401

    Gst.init(None)
    missing = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    if missing:
        print(f"missing GStreamer elements: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554, help="0 picks a free port (printed in READY)")
    ap.add_argument("--check", action="store_true", help="exit 0 if GStreamer's RTSP server can run here")
    ap.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches EOF (parent gone)")
    ap.add_argument("mounts", nargs="*", metavar="/PATH=FILE[:loop][:shared]")
    args = ap.parse_args(argv)
    if args.check:
        return _check()
    if not args.mounts:
        ap.error("at least one mount is needed")
    return _serve(args.host, args.port, args.mounts, args.watch_stdin)


if __name__ == "__main__":
    sys.exit(main())
