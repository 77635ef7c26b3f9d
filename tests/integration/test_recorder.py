"""The recorder against real parts: GStreamer's RTSP server, clip files, SQLite and
PostgreSQL, a real (tmpfs) file system that fills up.

What is checked is what was stored: segments are read back through the index and
the store's reader, decoded frame by frame with PyAV, and compared with the clip
the server played.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from storage.format.segment import OPEN_SUFFIX, SUFFIX, inspect_header
from testkit.recording import (
    SteppableClock,
    camera_state,
    decode_each,
    gaps,
    recording,
    segments,
    stored,
    wait_for,
)
from testkit.rtsp_server import Mount
from tests.support.fixtures import missing_component
from vms.core.clock import Clock
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp

SECRET = "s3cretPW"
FRAME_US = 1_000_000 // 15


def camera(cam_id: str, source: str, **kw) -> dict:
    return {"id": cam_id, "source": source, "retain_days": 7, "segment_seconds": 2, **kw}


def assert_well_formed(app, cam_id: str, *, target_s: float, gop_s: float = 1.0) -> list:
    """Every segment: starts on a keyframe, decodes frame by frame, is as long as
    the target asks (the last one may be shorter), follows the previous one without
    overlap; index rows and files agree.  Returns [(ref, packets)]."""
    got = stored(app, cam_id)
    assert got, "nothing was recorded"
    for i, (ref, packets) in enumerate(got):
        assert packets and packets[0].keyframe, f"segment {i} does not start on a keyframe"
        assert ref.packets == len(packets)
        assert decode_each(app, ref, packets) == len(packets), f"segment {i} does not decode frame by frame"
        length_us = ref.end_us - ref.start_us
        assert length_us <= (target_s + gop_s) * 1e6 + 150_000, f"segment {i} is {length_us / 1e6} s long"
        if i < len(got) - 1 and got[i + 1][0].start_us - ref.end_us < 500_000:  # not the last before a gap
            assert length_us >= target_s * 1e6 - 10_000, f"segment {i} closed early: {length_us / 1e6} s"
        if i:
            prev = got[i - 1][0]
            assert ref.start_us >= prev.end_us, f"segment {i} overlaps segment {i - 1}"
        walls = [p.wall_us for p in packets]
        assert walls == sorted(walls) and len(set(walls)) == len(walls)
    root = app.store.root / cam_id
    files = sorted(app.store.relpath(p) for p in root.rglob(f"*{SUFFIX}"))
    assert files == sorted(ref.path for ref, _ in got)
    assert not list(root.rglob(f"*{OPEN_SUFFIX}"))
    return got


# ---------------------------------------------------------------- what is stored


def test_every_packet_is_stored_in_keyframe_segments(database_url, appliance_factory, rtsp_server_factory,
                                                     clip_factory):
    clip = clip_factory.get(seconds=8)  # 120 packets, a keyframe every 15
    server = rtsp_server_factory({"/cam": Mount(clip.path)})  # plays once, then ends the stream
    app = appliance_factory([camera("cam", server.url("/cam"))], database_url=database_url,
                            recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")

    got = assert_well_formed(app, "cam", target_s=2)
    packets = [p for _, ps in got for p in ps]
    assert len(packets) == clip.packets == rec.cameras["cam"].stats.packets
    assert tuple(i for i, p in enumerate(packets) if p.keyframe) == clip.keyframes
    assert len(got) == 4  # 8 s in 2 s segments
    pts = [p.pts for p in packets]
    assert pts == sorted(pts) and all(abs(b - a - 6000) <= 2 for a, b in zip(pts, pts[1:], strict=False))  # +-1 tick: RTP clock from ns
    state = camera_state(app, "cam")
    assert state["packets"] == clip.packets
    assert state["bytes_received"] == sum(len(p.data) for p in packets)
    assert state["online"] is False and state["last_error"] == "stream ended"
    end_us = got[-1][0].end_us
    assert gaps(app, "cam") == [(end_us, None, "stream ended")]
    assert state["gap_since_us"] == end_us


def test_camera_state_while_recording(database_url, appliance_factory, rtsp_server_factory, h264_clip):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    app = appliance_factory([camera("cam", server.url("/cam"))], database_url=database_url,
                            recorder={"state_interval_s": 0.5}, clock=Clock())
    rec = Recorder(app)
    with recording(rec):
        state = wait_for(lambda: (s := camera_state(app, "cam")) and s["online"] and s["fps"] > 0 and s,
                         30, "an online state with a measured frame rate")
        first_at = state["updated_us"]  # a state saved at least 2 s of recording later: a settled frame rate
        state = wait_for(lambda: (s := camera_state(app, "cam"))["updated_us"] >= first_at + 2_000_000 and s,
                         30, "a camera state two seconds later")
        now_us = time.time_ns() // 1000

    assert state["online"] is True and state["last_error"] is None and state["gap_since_us"] is None
    assert 11 <= state["fps"] <= 19, state
    assert 0.5 * h264_clip.bitrate_bps <= state["bitrate_bps"] <= 2 * h264_clip.bitrate_bps, state
    assert 0 <= now_us - state["last_packet_us"] < 1_500_000
    assert state["packets"] > 30 and state["bytes_received"] > 0 and state["reconnects"] == 0
    assert camera_state(app, "cam")["online"] is False  # stop says so
    assert_well_formed(app, "cam", target_s=2)


def test_hevc_is_recorded(appliance_factory, rtsp_server_factory, clip_factory):
    clip = clip_factory.get(seconds=5, codec="hevc")
    server = rtsp_server_factory({"/h265": Mount(clip.path)})
    app = appliance_factory([camera("cam", server.url("/h265"))],
                            recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")

    got = assert_well_formed(app, "cam", target_s=2)
    header = inspect_header(app.store.abspath(got[0][0].path))
    assert header.stream.codec == "hevc"
    assert sum(len(ps) for _, ps in got) == clip.packets


def test_local_file_loops_in_real_time(appliance_factory, clip_factory):
    clip = clip_factory.get(seconds=2)  # 30 packets
    app = appliance_factory([camera("sim", str(clip.path), loop=True)], clock=Clock())
    rec = Recorder(app)
    started = time.monotonic()
    with recording(rec):
        wait_for(lambda: rec.cameras["sim"].stats.packets >= 3 * clip.packets, 20, "three passes of the file")
        took_s = time.monotonic() - started

    got = assert_well_formed(app, "sim", target_s=2)
    packets = [p for _, ps in got for p in ps]
    assert 3 * clip.packets <= len(packets) <= 3 * clip.packets + 10
    assert 5.0 <= took_s <= 8.0, took_s  # three 2 s passes in real time, not faster
    span_s = (packets[-1].wall_us - packets[0].wall_us) / 1e6
    assert abs(span_s - (len(packets) - 1) / 15) < 0.3
    assert [p.pts for p in packets] == [i * 6000 for i in range(len(packets))]  # continues across loops
    assert [i for i, p in enumerate(packets) if p.keyframe] == list(range(0, len(packets), 15))


# ---------------------------------------------------------------- failures


def test_server_killed_and_restarted_leaves_one_gap(database_url, appliance_factory, rtsp_server_factory,
                                                    h264_clip):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    app = appliance_factory([camera("cam", server.url("/cam"))], database_url=database_url, clock=Clock(),
                            recorder={"backoff_initial_s": 0.5, "backoff_max_s": 2, "read_timeout_s": 2})
    rec = Recorder(app)
    stats = rec.cameras["cam"].stats
    with recording(rec):
        wait_for(lambda: stats.packets >= 45, 30, "three seconds of footage")
        server.kill()
        wait_for(lambda: not stats.online, 10, "the camera to go offline")
        before = stats.packets
        time.sleep(3)  # a few failed reconnects: still one gap
        assert stats.reconnects >= 2 and stats.packets == before
        server.start()
        wait_for(lambda: stats.online and stats.packets >= before + 45, 30, "recording to resume")

    got = assert_well_formed(app, "cam", target_s=2)
    rows = gaps(app, "cam")
    assert len(rows) == 1, rows
    start_us, end_us, _reason = rows[0]
    assert end_us is not None and end_us - start_us > 3_000_000
    before_gap = [ref for ref, _ in got if ref.end_us <= start_us]
    after_gap = [ref for ref, _ in got if ref.start_us >= end_us]
    assert before_gap and after_gap and len(before_gap) + len(after_gap) == len(got)
    assert before_gap[-1].end_us == start_us and after_gap[0].start_us == end_us
    assert camera_state(app, "cam")["reconnects"] >= 2


def test_credentials_never_appear_in_logs_state_or_errors(appliance_factory, rtsp_server_factory, h264_clip,
                                                          caplog):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    auth = f"admin:{SECRET}"
    app = appliance_factory([
        camera("good", server.url("/cam", userinfo=auth)),
        camera("missing", server.url("/cam", userinfo=auth).replace("/cam", "/nope")),
        camera("refused", f"rtsp://{auth}@127.0.0.1:1/stream?password={SECRET}"),
    ], clock=Clock(), recorder={"backoff_initial_s": 0.5, "backoff_max_s": 1})
    caplog.set_level(logging.DEBUG)
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["good"].stats.packets > 30 and rec.cameras["missing"].stats.reconnects >= 2
                 and rec.cameras["refused"].stats.reconnects >= 2, 30, "footage and failed reconnects")
        live = {c: camera_state(app, c) for c in ("good", "missing", "refused")}

    assert "***@127.0.0.1" in rec.cameras["refused"].stats.last_error
    texts = [caplog.text, repr(live), repr({c: camera_state(app, c) for c in live})]
    texts += [repr(gaps(app, c)) for c in live] + [repr(vars(c.stats)) for c in rec.cameras.values()]
    for path in app.store.root.rglob("*"):
        if path.is_file():
            texts.append(repr(inspect_header(path).raw))
    for text in texts:
        assert SECRET not in text and "admin:" not in text


def test_a_camera_that_never_answers_does_not_disturb_another(appliance_factory, rtsp_server_factory, h264_clip):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        app = appliance_factory([
            camera("silent", f"rtsp://127.0.0.1:{silent.getsockname()[1]}/stream"),
            camera("good", server.url("/cam")),
        ], clock=Clock(), recorder={"open_timeout_s": 2, "backoff_initial_s": 0.5, "backoff_max_s": 1})
        rec = Recorder(app)
        with recording(rec):
            good = rec.cameras["good"].stats
            wait_for(lambda: good.packets > 0, 20, "the good camera's first packet")
            first = time.monotonic()
            wait_for(lambda: rec.cameras["silent"].stats.reconnects >= 2, 20, "the silent camera to be retried")
            time.sleep(max(0.0, 6 - (time.monotonic() - first)))
            took_s = time.monotonic() - first

    packets = [p for _, ps in assert_well_formed(app, "good", target_s=2) for p in ps]
    assert len(packets) >= 15 * took_s * 0.9
    steps_us = [b.wall_us - a.wall_us for a, b in zip(packets, packets[1:], strict=False)]
    assert max(steps_us) < 300_000, "the good camera stalled"
    assert gaps(app, "good") == []
    assert "no answer within 2 s" in rec.cameras["silent"].stats.last_error
    assert len(gaps(app, "silent")) == 1 and segments(app, "silent") == []


# ---------------------------------------------------------------- time


def test_wall_clock_steps_neither_reorder_nor_overlap(appliance_factory, rtsp_server_factory, h264_clip):
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    clock = SteppableClock()
    app = appliance_factory([camera("cam", server.url("/cam"))], clock=clock)
    rec = Recorder(app, clock=clock)
    stats = rec.cameras["cam"].stats
    with recording(rec):
        wait_for(lambda: stats.packets >= 50, 30, "footage before the step")
        clock.step(-3600)  # NTP steps the clock back an hour
        wait_for(lambda: stats.packets >= 110, 30, "footage after the backward step")
        clock.step(+7200)  # ... and forward two hours: one hour ahead of where the camera is
        wait_for(lambda: stats.segments >= 6 and stats.packets >= 170, 30, "footage after the forward step")
        now_us = clock.now_us()

    got = assert_well_formed(app, "cam", target_s=2)  # no overlap, no jump inside a segment
    packets = [p for _, ps in got for p in ps]
    walls = [p.wall_us for p in packets]
    assert walls == sorted(walls) and len(set(walls)) == len(walls), "stamps went backwards"
    steps_us = [b - a for a, b in zip(walls, walls[1:], strict=False)]
    jumps = [i for i, s in enumerate(steps_us) if s > 1_000_000]
    assert len(jumps) == 1, "only the forward step shows, once"
    assert abs(steps_us[jumps[0]] - 3600e6) < 2e6
    starts = {ref.start_us for ref, _ in got}
    assert walls[jumps[0] + 1] in starts, "the jump is at a segment boundary"
    assert abs(now_us - walls[-1]) < 2e6  # following the wall clock again


# ---------------------------------------------------------------- disk full


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs (mode 0700) mounted for the test; needs root (CAP_SYS_ADMIN)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir(mode=0o700)
    if os.geteuid() != 0:
        missing_component("the disk-full test mounts a small tmpfs and needs root")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        missing_component(f"cannot mount a tmpfs: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_neither_crashes_nor_corrupts_and_recording_resumes(appliance_factory, rtsp_server_factory,
                                                                      clip_factory, small_tmpfs):
    clip = clip_factory.get(seconds=4, pattern="noise", bitrate=2_000_000)  # about 250 kB/s
    server = rtsp_server_factory({"/cam": Mount(clip.path, loop=True, shared=True)})
    ballast = small_tmpfs / "ballast"
    ballast.write_bytes(b"\0" * (1 << 20))  # leaves about 1 MiB: about four seconds of footage
    calls = []
    app = appliance_factory([camera("cam", server.url("/cam"))], storage_root=str(small_tmpfs), clock=Clock(),
                            recorder={"backoff_initial_s": 0.5, "backoff_max_s": 1})
    rec = Recorder(app, on_disk_full=calls.append)
    cam = rec.cameras["cam"]
    with recording(rec):
        wait_for(lambda: calls, 40, "the disk-full callback")
        time.sleep(2)  # still full: retries keep asking, nothing crashes
        assert cam.thread.is_alive() and not cam.stats.online and "disk full" in cam.stats.last_error
        sealed_before = len(segments(app, "cam"))
        ballast.unlink()  # the retention side frees space
        freed_at_us = time.time_ns() // 1000
        wait_for(lambda: any(r.start_us > freed_at_us for r in segments(app, "cam")), 30,
                 "a segment recorded after space came back")

    assert set(calls) == {"cam"} and cam.stats.disk_full_events >= 1
    refs = segments(app, "cam")
    assert len(refs) > sealed_before and any(r.recovered for r in refs)
    for ref, packets in stored(app, "cam"):  # every sealed segment authenticates up to its final chunk
        assert packets[0].keyframe and len(packets) == ref.packets
        assert decode_each(app, ref, packets) == len(packets)
    assert not list(Path(small_tmpfs).rglob(f"*{OPEN_SUFFIX}"))
    assert len(gaps(app, "cam")) >= 1


class _Waits:
    """A stop event that records each back-off wait instead of sleeping; stops after ``n`` waits."""

    def __init__(self, n: int):
        self.n, self.waits = n, []

    def is_set(self) -> bool:
        return len(self.waits) >= self.n

    def wait(self, timeout_s: float) -> bool:
        self.waits.append(timeout_s)
        return self.is_set()


def test_reconnect_backoff_starts_at_the_initial_delay_and_doubles_to_the_cap(appliance_factory, fake_clock):
    from vms.recording.capture import CaptureError
    from vms.recording.recorder import CameraRecorder

    app = appliance_factory([camera("cam", "rtsp://127.0.0.1:9/never")],
                            recorder={"backoff_initial_s": 1, "backoff_max_s": 30})
    opened = []

    def never_answers(cam, _camera_clock):
        opened.append(cam.id)
        raise CaptureError(f"{cam.id}: no answer within 10 s")

    stop = _Waits(8)
    rec = CameraRecorder(app, app.config.cameras[0], clock=fake_clock, stop=stop, open_capture=never_answers)
    rec._wait_before_retry = stop.wait  # the back-off itself; the port probe that cuts it short is tested live
    rec.run()
    assert stop.waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert len(opened) == 8 and rec.stats.reconnects == 7



class _RangeFiles:
    """A real HTTP server on 127.0.0.1 serving one directory, with Range requests (as every web server
    answers them; FFmpeg seeks to an MP4's index)."""

    def __init__(self, directory: Path):
        import http.server
        import threading

        root = directory

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_a):
                pass

            def do_GET(self):  # noqa: N802
                data = (root / self.path.lstrip("/")).read_bytes()
                a, b = 0, len(data) - 1
                rng = self.headers.get("Range", "")
                if rng.startswith("bytes="):
                    first, _, last = rng[6:].partition("-")
                    a, b = int(first or 0), int(last) if last else len(data) - 1
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(b - a + 1))
                if rng:
                    self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
                self.end_headers()
                try:
                    self.wfile.write(data[a : b + 1])
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_live_http_stream_is_recorded_packet_for_packet(database_url, appliance_factory, clip_factory):
    """A live MPEG-TS stream over HTTP (as encoders and some cameras serve it), from Debian's ffmpeg as a
    real HTTP server on 127.0.0.1, playing the clip in real time once."""
    import shutil

    if shutil.which("ffmpeg") is None:
        missing_component("Debian's ffmpeg (apt-get install ffmpeg)")
    clip = clip_factory.get(seconds=4)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/live.ts"
    server = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(clip.path), "-c", "copy",
                               "-f", "mpegts", "-listen", "1", url])
    try:
        wait_for(lambda: _listening(port), 10, "ffmpeg's HTTP server")
        app = appliance_factory([camera("cam", url)], database_url=database_url,
                                recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
        rec = Recorder(app)
        with recording(rec):
            wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")
    finally:
        server.kill()
        server.wait()
    got = assert_well_formed(app, "cam", target_s=2)
    packets = [p for _, ps in got for p in ps]
    assert len(packets) == clip.packets == rec.cameras["cam"].stats.packets
    assert tuple(i for i, p in enumerate(packets) if p.keyframe) == clip.keyframes


def _listening(port: int) -> bool:
    """Whether a socket listens on ``port``, without connecting (ffmpeg -listen 1 serves one client only)."""
    with open("/proc/net/tcp") as fh:
        return any(f":{port:04X} " in line and line.split()[3] == "0A" for line in fh.readlines()[1:])


def test_an_mp4_file_over_http_is_paced_and_recorded_packet_for_packet(database_url, appliance_factory,
                                                                         clip_factory):
    """An MP4 file of known length on a web server arrives as fast as the network allows; it is paced
    by its timestamps, so its packets are stamped as they play."""
    clip = clip_factory.get(seconds=4)
    files = _RangeFiles(clip.path.parent)
    try:
        app = appliance_factory([camera("cam", files.url(clip.path.name))], database_url=database_url,
                                recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
        rec = Recorder(app)
        started = time.monotonic()
        with recording(rec):
            wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the file")
        took_s = time.monotonic() - started
    finally:
        files.close()
    got = assert_well_formed(app, "cam", target_s=2)
    packets = [p for _, ps in got for p in ps]
    assert len(packets) == clip.packets == rec.cameras["cam"].stats.packets
    assert took_s >= 3.0, f"4 s of footage arrived in {took_s:.1f} s: not paced"
    span_us = packets[-1].wall_us - packets[0].wall_us
    assert 3.5e6 <= span_us <= 4.5e6, f"stamps span {span_us / 1e6:.2f} s for 4 s of footage"


@pytest.mark.parametrize("outage_s", [20, 180])
def test_recording_resumes_within_3_s_of_a_cameras_return(appliance_factory, rtsp_server_factory, h264_clip,
                                                          outage_s):
    """Down 20 s and 3 minutes with the default back-off (1, 2, 4, 8, 16, 30, 30 s...): the port probe brings
    it back at once, and the one gap lasts as long as the footage was really missing, to the second."""
    server = rtsp_server_factory({"/cam": Mount(h264_clip.path, loop=True, shared=True)})
    app = appliance_factory([camera("cam", server.url("/cam"))], clock=Clock(), recorder={"read_timeout_s": 2})
    rec = Recorder(app)
    stats = rec.cameras["cam"].stats
    with recording(rec):
        wait_for(lambda: stats.packets >= 30, 30, "two seconds of footage")
        server.kill()
        wait_for(lambda: not stats.online, 10, "the camera to go offline")
        time.sleep(outage_s)  # the outage being tested: the back-off is at its longest by now
        before = stats.packets
        server.start()
        back = time.monotonic()
        wait_for(lambda: stats.packets > before, 30, "recording to resume")
        resumed_s = time.monotonic() - back
    assert resumed_s < 3.0, f"recording resumed {resumed_s:.1f} s after the camera came back"
    rows = gaps(app, "cam")
    assert len(rows) == 1 and rows[0][1] is not None  # one outage, one gap, closed
    start_us, end_us, _ = rows[0]
    # the gap runs from the end of the last frame before the outage to the first frame after it
    packets = [p for _, ps in stored(app, "cam") for p in ps]
    a, b = max(zip(packets, packets[1:], strict=False), key=lambda ab: ab[1].wall_us - ab[0].wall_us)
    assert abs(start_us - (a.wall_us + 66_667)) <= 1_000_000 and abs(end_us - b.wall_us) <= 1_000_000
    assert outage_s <= (end_us - start_us) / 1e6 <= outage_s + 10


def test_the_return_probe_ends_the_wait_only_for_a_port_that_was_closed():
    """A port that stays open (stream failing for another reason) gets the full back-off; a closed port that
    opens ends it at once."""
    import socket
    import threading
    from types import SimpleNamespace

    from vms.recording.reconnect import wait_before_retry

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    cam = SimpleNamespace(id="cam", source=f"rtsp://127.0.0.1:{port}/x")
    t0 = time.monotonic()
    assert wait_before_retry(threading.Event(), cam, 2.5) is False
    assert time.monotonic() - t0 >= 2.4  # open all along: the full wait
    listener.close()

    def reopen():
        time.sleep(1.5)
        threading.current_thread().server = socket.create_server(("127.0.0.1", port))

    opener = threading.Thread(target=reopen)
    opener.start()
    t0 = time.monotonic()
    assert wait_before_retry(threading.Event(), cam, 30) is False
    took = time.monotonic() - t0
    opener.join()
    opener.server.close()
    assert 1.4 <= took < 4, took  # closed, then open: back within about a second of its return
    stop = threading.Event()
    stop.set()
    assert wait_before_retry(stop, cam, 30) is True
