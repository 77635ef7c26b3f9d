"""vms.recording.capture against real sources: GStreamer's RTSP server and clip files.

Every packet the camera sends arrives, unchanged (same coded slices as the clip),
with its keyframe flag; the extradata and packets decode with PyAV; failures are
CaptureErrors within their timeouts and never show the URL's password.
"""

from __future__ import annotations

import os
import socket
import time

import av
import pytest

from testkit.clips import clip_vcl_payloads, vcl_payloads
from testkit.rtsp_server import Mount
from vms.recording.capture import Capture, CaptureError

pytestmark = pytest.mark.rtsp


def read_all(cap: Capture, limit: int = 10_000) -> list:
    packets = []
    while len(packets) < limit and (pkt := cap.read()) is not None:
        packets.append(pkt)
    return packets


def decoded_frames(info, packets) -> int:
    ctx = av.CodecContext.create(info.codec, "r")
    ctx.extradata = info.extradata
    frames = 0
    for pkt in packets:
        frames += len(ctx.decode(av.Packet(pkt.data)))
    return frames + len(ctx.decode(None))


def assert_regular_timestamps(packets, frame_ticks: int = 6000) -> None:
    steps = [b.pts - a.pts for a, b in zip(packets, packets[1:], strict=False)]
    assert all(abs(s - frame_ticks) <= 2 for s in steps), steps  # 90 kHz from ns: +-1 tick rounding
    assert all(p.dts == p.pts for p in packets)
    walls = [p.wall_us for p in packets]
    assert walls == sorted(walls) and len(set(walls)) == len(walls)


def own_udp_sockets() -> int:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    with open("/proc/self/net/udp") as f:
        return sum(1 for line in f.readlines()[1:] if line.split()[9] in inodes)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_capture_copies_every_packet(rtsp_server, h264_clip, transport):
    with Capture(rtsp_server.url("/cam1"), transport=transport) as cap:
        info = cap.info
        udp_sockets = own_udp_sockets()
        packets = read_all(cap)

    assert (info.codec, info.width, info.height, info.fps) == ("h264", 640, 360, 15)
    assert info.extradata.startswith(b"\x00\x00\x00\x01")  # Annex-B, like the packets
    assert (udp_sockets > 0) == (transport == "udp")
    got = [vcl_payloads(p.data, "h264", annexb=True) for p in packets]
    if transport == "udp":
        # RTP over UDP may drop a datagram on a loaded machine (that is why TCP is the default):
        # what arrives must still be the clip's access units, bit for bit and in order
        want = iter(clip_vcl_payloads(h264_clip.path))
        assert all(any(g == w for w in want) for g in got), "UDP packets are not the clip's, in order"
        assert len(packets) >= h264_clip.packets - 2, f"{h264_clip.packets - len(packets)} packets lost over UDP"
        return
    assert len(packets) == h264_clip.packets
    assert packets[0].keyframe
    assert tuple(i for i, p in enumerate(packets) if p.keyframe) == h264_clip.keyframes
    assert got == clip_vcl_payloads(h264_clip.path)
    assert_regular_timestamps(packets)
    assert decoded_frames(info, packets) == h264_clip.packets


def test_rtsp_capture_hevc(rtsp_server_factory, hevc_clip):
    server = rtsp_server_factory({"/h265": Mount(hevc_clip.path)})

    with Capture(server.url("/h265")) as cap:
        info, packets = cap.info, read_all(cap)

    assert (info.codec, info.width, info.height) == ("hevc", 640, 360)
    assert len(packets) == hevc_clip.packets
    assert tuple(i for i, p in enumerate(packets) if p.keyframe) == hevc_clip.keyframes
    assert decoded_frames(info, packets) == hevc_clip.packets


def test_wall_clock_stamps_follow_the_stream(rtsp_server):
    with Capture(rtsp_server.url("/loop")) as cap:
        packets = read_all(cap, limit=60)
        now_us = time.time_ns() // 1000

    span_us = packets[-1].wall_us - packets[0].wall_us
    assert abs(span_us - (packets[-1].pts - packets[0].pts) * 1_000_000 // 90_000) < 100_000
    assert 0 <= now_us - packets[-1].wall_us < 1_000_000


def test_unreachable_camera_error_hides_the_password():
    started = time.monotonic()
    with pytest.raises(CaptureError) as err:
        Capture("rtsp://user:secret@127.0.0.1:1/x", open_timeout_s=5).open()

    assert time.monotonic() - started < 5
    assert "secret" not in str(err.value) and "user" not in str(err.value)
    assert "rtsp://***@127.0.0.1:1/x" in str(err.value)


def test_camera_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"rtsp://admin:secret@127.0.0.1:{silent.getsockname()[1]}/stream"
        started = time.monotonic()
        with pytest.raises(CaptureError, match="no answer within 2 s") as err:
            Capture(url, open_timeout_s=2).open()
        took_s = time.monotonic() - started

    assert 1.5 <= took_s < 4
    assert "secret" not in str(err.value)


def test_stream_that_falls_silent_times_out(rtsp_server):
    with Capture(rtsp_server.url("/loop"), read_timeout_s=2) as cap:
        read_all(cap, limit=40)  # past the packets buffered while opening
        rtsp_server.freeze()
        try:
            started = time.monotonic()
            with pytest.raises(CaptureError, match="no packet for 2 s"):
                read_all(cap)
            took_s = time.monotonic() - started
        finally:
            rtsp_server.thaw()

    assert took_s < 4


def test_camera_that_goes_away_ends_the_stream(rtsp_server):
    with Capture(rtsp_server.url("/loop"), read_timeout_s=5) as cap:
        read_all(cap, limit=40)
        rtsp_server.kill()
        started = time.monotonic()
        try:
            read_all(cap)
        except CaptureError:
            pass
        assert time.monotonic() - started < 6


def test_file_plays_in_real_time(clip_factory):
    clip = clip_factory.get(seconds=2)

    started = time.monotonic()
    with Capture(str(clip.path)) as cap:
        info, packets = cap.info, read_all(cap)
    took_s = time.monotonic() - started

    assert len(packets) == clip.packets == 30
    assert 1.7 <= took_s < 3.0
    assert info.extradata.startswith(b"\x00\x00\x00\x01")  # avcC converted to Annex-B
    steps_us = [b.wall_us - a.wall_us for a, b in zip(packets, packets[1:], strict=False)]
    assert all(40_000 <= s <= 100_000 for s in steps_us), steps_us
    assert_regular_timestamps(packets)
    assert decoded_frames(info, packets) == clip.packets


def test_file_loop_continues_timestamps_and_keyframes(clip_factory):
    clip = clip_factory.get(seconds=1, gop=5)

    with Capture(str(clip.path), loop=True, realtime=False, wall_clock_us=lambda: 1_000_000) as cap:
        packets = read_all(cap, limit=3 * clip.packets)

    assert len(packets) == 3 * clip.packets
    assert [i for i, p in enumerate(packets) if p.keyframe] == list(range(0, 3 * clip.packets, 5))
    assert [p.pts for p in packets] == [i * 6000 for i in range(len(packets))]
    assert all(p.wall_us == 1_000_000 + p.pts * 1_000_000 // 90_000 for p in packets)  # stream time only


def test_file_without_loop_ends(hevc_clip):
    with Capture(str(hevc_clip.path), realtime=False) as cap:
        info, packets = cap.info, read_all(cap)
        assert cap.read() is None

    assert len(packets) == hevc_clip.packets
    assert tuple(i for i, p in enumerate(packets) if p.keyframe) == hevc_clip.keyframes
    assert info.extradata.startswith(b"\x00\x00\x00\x01")  # hvcC converted to Annex-B
    assert decoded_frames(info, packets) == hevc_clip.packets


def test_missing_file_and_garbage_file(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        Capture(str(tmp_path / "nope.mp4")).open()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(10_000))
    with pytest.raises(CaptureError, match="not a readable video file"):
        Capture(str(junk)).open()
