"""GStreamer's RTSP server as the tests' camera: what it serves is the clip, packet for packet.

Readers are independent of ours: Debian's ffprobe and PyAV's own FFmpeg, over TCP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import av
import pytest

from testkit.clips import clip_vcl_payloads, vcl_payloads
from testkit.rtsp_server import Mount, RtspServer, unavailable_reason
from tests.support.fixtures import missing_component

pytestmark = pytest.mark.rtsp


def ffprobe(url: str, *entries: str) -> dict:
    exe = shutil.which("ffprobe")
    if exe is None:
        missing_component("ffprobe not found (Debian package ffmpeg)")
    proc = subprocess.run([exe, "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
                           *entries, "-of", "json", url], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def pyav_packets(url: str, limit: int | None = None) -> tuple[av.codec.CodecContext, list[av.Packet]]:
    out = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=10) as c:
        st = c.streams.video[0]
        for pkt in c.demux(st):
            if pkt.size:
                out.append(pkt)
            if limit and len(out) >= limit:
                break
        return st.codec_context, out


def test_ffprobe_reads_the_clip_packet_for_packet_in_real_time(rtsp_server, h264_clip):
    started = time.monotonic()
    got = ffprobe(rtsp_server.url("/cam1"), "-show_streams", "-show_packets")
    took_s = time.monotonic() - started

    stream = got["streams"][0]
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 640, 360)
    packets = got["packets"]
    assert len(packets) == h264_clip.packets
    assert tuple(i for i, p in enumerate(packets) if "K" in p["flags"]) == h264_clip.keyframes
    assert took_s >= 0.75 * h264_clip.duration_s, "the server paces packets at the clip's frame rate"


def test_pyav_gets_the_same_coded_slices_as_the_file(rtsp_server, h264_clip):
    ctx, packets = pyav_packets(rtsp_server.url("/cam1"))

    assert ctx.name == "h264" and (ctx.width, ctx.height) == (640, 360)
    assert [vcl_payloads(bytes(p), "h264", annexb=True) for p in packets] == clip_vcl_payloads(h264_clip.path)


def test_hevc_clip(rtsp_server_factory, hevc_clip):
    server = rtsp_server_factory({"/h265": Mount(hevc_clip.path)})

    ctx, packets = pyav_packets(server.url("/h265"))

    assert ctx.name == "hevc" and (ctx.width, ctx.height) == (640, 360)
    assert len(packets) == hevc_clip.packets
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == list(hevc_clip.keyframes)


def test_loop_mount_keeps_going_with_increasing_timestamps(rtsp_server_factory, clip_factory):
    clip = clip_factory.get(seconds=1, gop=5)  # 15 packets
    server = rtsp_server_factory({"/loop": Mount(clip.path, loop=True)})

    _, packets = pyav_packets(server.url("/loop"), limit=3 * clip.packets)

    assert len(packets) == 3 * clip.packets
    pts = [p.pts for p in packets[1:]]  # FFmpeg leaves the first RTP packet without pts
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == list(range(0, 3 * clip.packets, 5))


def test_shared_mount_serves_two_clients_at_once(rtsp_server):
    import threading

    results = {}

    def read(name):
        results[name] = len(pyav_packets(rtsp_server.url("/shared"), limit=20)[1])

    threads = [threading.Thread(target=read, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {"a": 20, "b": 20}


def test_restart_keeps_the_port_and_kill_drops_clients(rtsp_server):
    port = rtsp_server.port
    rtsp_server.kill()
    assert not rtsp_server.running
    with pytest.raises(av.error.FFmpegError):
        pyav_packets(rtsp_server.url("/cam1"), limit=1)

    rtsp_server.start()

    assert rtsp_server.port == port
    assert ffprobe(rtsp_server.url("/cam1"), "-show_streams")["streams"][0]["codec_name"] == "h264"
    rtsp_server.restart()
    assert rtsp_server.port == port and rtsp_server.running


def test_controller_reports_a_missing_system_python():
    assert "not found" in unavailable_reason("/nonexistent/python3")
    with pytest.raises(ValueError):
        RtspServer({})
