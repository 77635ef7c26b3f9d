"""vms.recording.capture's pure parts: URL redaction, timestamp repair, wall-clock stamps, extradata."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import pytest

from vms.recording.bitstream import annexb_extradata
from vms.recording.capture import (
    WallStamps,
    _EnvGate,
    _scrub,
    is_network_source,
    nominal_fps,
    redact_url,
)
from vms.recording.stamps import PtsTrack


@pytest.mark.parametrize("url, shown", [
    ("rtsp://user:pass@10.0.0.1:554/stream1", "rtsp://***@10.0.0.1:554/stream1"),
    ("rtsp://user@10.0.0.1/x", "rtsp://***@10.0.0.1/x"),
    ("rtsp://u:p@ss@host/x", "rtsp://***@host/x"),
    ("rtsp://admin:pa/ss#1@10.0.0.1/x", "rtsp://***@10.0.0.1/x"),  # unescaped '/' and '#'
    ("RTSP://a:b@h/x", "rtsp://***@h/x"),
    ("rtsp://10.0.0.1/x", "rtsp://10.0.0.1/x"),
    ("rtsp://host/cam?channel=1&password=hunter2", "rtsp://host/cam?channel=1&password=***"),
    ("/var/lib/clips/demo.mp4", "/var/lib/clips/demo.mp4"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_scrub_removes_credentials_from_library_messages():
    src = "rtsp://admin:pa/ss@10.0.0.1/x"
    assert _scrub(f"failed to open {src}; auth pa/ss rejected", src) == \
        "failed to open rtsp://***@10.0.0.1/x; auth *** rejected"


def test_network_or_file():
    assert is_network_source("rtsp://h/x") and is_network_source("http://h/x.mp4")
    assert not is_network_source("/a/b.mp4") and not is_network_source("b.mp4")
    assert not is_network_source("file:///a/b.mp4")


def test_pts_track_repairs_the_untimestamped_first_rtsp_packet():
    track = PtsTrack(frame_ticks=6000, max_step=90_000 * 60)
    # FFmpeg: the first packet has no pts (reads as 0), the second is the stream's start (also 0)
    assert [track.next(raw) for raw in (0, 0, 6000, 11999, 18000)] == [0, 6000, 12000, 17999, 24000]


def test_pts_track_continues_across_a_loop_and_a_jump():
    track = PtsTrack(frame_ticks=6000, max_step=90_000 * 60)
    first = [track.next(raw) for raw in (0, 6000, 12000)]
    track.restart()  # the file started again
    looped = [track.next(raw) for raw in (0, 6000)]
    jumped = [track.next(raw) for raw in (10**9, 10**9 + 6000)]  # camera clock reset forwards
    assert first + looped + jumped == [0, 6000, 12000, 18000, 24000, 30000, 36000]


def test_wall_stamps_follow_stream_time_without_clamp():
    stamps = WallStamps(1_000_000, clamp=False)
    assert [stamps.stamp(pts, now_us=0) for pts in (500, 90_500, 180_500)] == [1_000_000, 2_000_000, 3_000_000]


def test_wall_stamps_never_from_the_future_and_never_backwards():
    stamps = WallStamps(1_000_000, clamp=True, max_lag_us=5_000_000)
    assert stamps.stamp(0, now_us=3_000_000) == 1_000_000  # buffered while opening: 2 s old, kept
    assert stamps.stamp(90_000, now_us=1_500_000) == 1_500_000  # would be 2.0 s: re-anchored to arrival
    assert stamps.stamp(90_001, now_us=1_400_000) == 1_500_001  # wall clock stepped back: still forwards
    assert stamps.stamp(180_000, now_us=20_000_000) == 20_000_000  # 18 s behind: re-anchored


# avcC as libx264 wrote it for a 640x360 High-profile clip (one SPS, one PPS, then High-profile extras)
AVCC = bytes.fromhex("01640016ffe1001867640016acb405017fcb08000003000800000300f078b17501000468ef0fcbfdf8f800")
SPS = bytes.fromhex("67640016acb405017fcb08000003000800000300f078b175")
PPS = bytes.fromhex("68ef0fcb")


def test_annexb_extradata_from_avcc():
    assert annexb_extradata("h264", AVCC) == b"\x00\x00\x00\x01" + SPS + b"\x00\x00\x00\x01" + PPS


def test_annexb_extradata_passes_annexb_empty_and_garbage_through():
    annexb = b"\x00\x00\x00\x01\x67\x64\x00\x1f"
    assert annexb_extradata("h264", annexb) == annexb
    assert annexb_extradata("h264", b"") == b""
    assert annexb_extradata("hevc", b"\x01\x02\x03\x04\x05\x06\x07") == b"\x01\x02\x03\x04\x05\x06\x07"


def test_nominal_fps():
    assert nominal_fps(15.0) == 15
    assert nominal_fps(29.97002997) == Fraction(30000, 1001)
    assert nominal_fps(0.0) == 25 and nominal_fps(90000.0) == 25


def test_env_gate_lets_equal_values_overlap_and_makes_others_wait(monkeypatch):
    monkeypatch.delenv("VMS_TEST_GATE", raising=False)
    gate = _EnvGate("VMS_TEST_GATE")
    order = []
    with gate.using("a"):
        with gate.using("a"):  # same value: no wait
            order.append("a2")

        def other():
            with gate.using("b"):
                order.append("b")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.1)
        order.append("a-done")
    t.join(5)
    assert order == ["a2", "a-done", "b"]
