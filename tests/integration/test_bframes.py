"""Streams with B-frames keep the camera's frame order from the RTSP server to the evidence package.

A ruler clip (a bar that moves 4 px right every frame, so each decoded picture says which frame it is)
is encoded by x264 and x265 with ``bframes=3`` and B-pyramid, served by GStreamer's RTSP server, recorded,
exported and played back.  Decoded in presentation order the frames count up one by one, ffmpeg reports
nothing, no clip's pts go backwards, and nothing shown outside the window is in the package or the
playback (a window that starts and ends inside a GOP)."""

from __future__ import annotations

import io
import json
import subprocess
from fractions import Fraction

import av
import pytest

from testkit.appliance import make_appliance
from testkit.clips import encoder_available, make_clip, ruler_position
from testkit.footage import ensure_signing_key
from testkit.recording import recording, stored, wait_for
from testkit.rtsp_server import Mount, RtspServer, unavailable_reason
from tests.support.export_tools import ffmpeg_decode_errors, ffprobe_frames, tool, unpack
from tests.support.fixtures import missing_component
from vms.core.clock import Clock
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.playback import mux_span
from vms.evidence.remux import shown_us
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp

FPS, GOP, SECONDS = 15, 15, 6  # 90 frames, keyframes at 0, 15, 30, ...


@pytest.fixture(scope="module", params=["h264", "hevc"])
def bframe_clip(request, tmp_path_factory):
    codec = request.param
    if not encoder_available(codec):
        pytest.fail(f"PyAV has no encoder for {codec}")
    path = tmp_path_factory.mktemp("bframes") / f"ruler-{codec}.mp4"
    return make_clip(path, seconds=SECONDS, codec=codec, fps=FPS, gop=GOP, width=640, height=96, pattern="ruler",
                     bframes=3)


def _positions(data_or_path) -> list[int]:
    """Frame indexes of a clip, decoded in presentation order."""
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    with av.open(src) as c:
        return [ruler_position(f.to_ndarray(format="gray")) for f in c.decode(video=0)]


def _frame_pts(path) -> list[int]:
    r = subprocess.run([tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts",
                        "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return [int(x.strip(",")) for x in r.stdout.split()]


def _decode_stored(codec: str, packets) -> list[int]:
    """Decode stored packets as a player would (decode order in, presentation order out)."""
    dec = av.CodecContext.create(codec, "r")
    out = []
    for p in packets:
        pkt = av.Packet(p.data)
        pkt.pts, pkt.dts = p.pts, p.dts
        out += [ruler_position(f.to_ndarray(format="gray")) for f in dec.decode(pkt)]
    out += [ruler_position(f.to_ndarray(format="gray")) for f in dec.decode(None)]
    return out


@pytest.fixture(scope="module")
def recorded(bframe_clip, tmp_path_factory):
    """The clip recorded once from the RTSP server (SQLite); (app, stored packets)."""
    reason = unavailable_reason()
    if reason:
        missing_component(reason)
    root = tmp_path_factory.mktemp("rec")
    with RtspServer({"/cam": Mount(bframe_clip.path)}, log_path=root / "rtsp-server.log") as server:
        app = make_appliance(root / "appliance", [{"id": "cam", "source": server.url("/cam"), "retain_days": 7,
                                                   "segment_seconds": 2}],
                             recorder={"backoff_initial_s": 60, "backoff_max_s": 60}, clock=Clock())
        ensure_signing_key(app)
        rec = Recorder(app)
        with recording(rec):
            wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")
        assert rec.cameras["cam"].stats.stream_problem is None
        try:
            yield app, [p for _, ps in stored(app, "cam") for p in ps]
        finally:
            app.close()


def test_recorded_in_the_cameras_order(bframe_clip, recorded):
    app, packets = recorded
    assert len(packets) == bframe_clip.packets
    dts = [p.dts for p in packets]
    assert all(b > a for a, b in zip(dts, dts[1:], strict=False))  # decode order
    assert all(p.dts <= p.pts for p in packets)
    assert any(b.pts < a.pts for a, b in zip(packets, packets[1:], strict=False))  # B-frames really reordered
    times = sorted(p.pts for p in packets)  # every frame its own time, one frame apart (RTP rounds to a tick)
    assert all(abs(t - i * 6000) <= 1 for i, t in enumerate(times))
    assert _decode_stored(bframe_clip.codec, packets) == list(range(bframe_clip.packets))


def test_export_of_a_window_inside_gops_keeps_order_and_window(bframe_clip, recorded, tmp_path):
    app, packets = recorded
    by_frame = sorted(packets, key=lambda p: p.pts)
    tb = Fraction(1, 90_000)
    start_us = shown_us(by_frame[20], tb) + 1  # frame 21 is the first in the window (GOP 15-29)
    end_us = shown_us(by_frame[70], tb) + 1  # frame 70 the last that may be (GOP 60-74)
    info = export_package(app, ExportRequest("T-B", "incident", "GDPR art. 6(1)(f)", "olsen", "jensen", "Politi",
                                             ("cam",), start_us, end_us))
    package = tmp_path / info.filename
    package.write_bytes(b"".join(package_store(app).open(info.package_id)))
    folder = unpack(package, tmp_path / "x")
    clips = json.loads((folder / "manifest.json").read_text())["cameras"][0]["clips"]

    lead, *copied = clips
    assert lead["reencoded"] and "group of pictures" in lead["reencoded_reason"]
    assert not any(c["reencoded"] for c in copied)
    seen = []
    for c in clips:
        path = folder / c["file"]
        assert ffmpeg_decode_errors(path) == ""  # no "non monotonically increasing dts"
        pts = _frame_pts(path)
        assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), pts  # presentation times never go back
        positions = _positions(path)
        assert len(positions) == c["frames"] == ffprobe_frames(path)[0]
        assert start_us <= c["first_frame"]["unix_us"] and c["last_frame"]["unix_us"] < end_us
        seen += positions
    assert seen[0] == 21  # the first frame inside the window, none before it
    assert seen == list(range(21, seen[-1] + 1))  # strictly in order, none missing
    assert 70 - 3 <= seen[-1] <= 70  # at most the B-frames that need frame 71+ are left out
    assert lead["frames"] == 30 - 21  # the rest of GOP 15-29, re-encoded
    assert copied[0]["first_frame"]["unix_us"] == shown_us(by_frame[30], tb)


def test_playback_keeps_order_and_window(bframe_clip, recorded):
    app, packets = recorded
    by_frame = sorted(packets, key=lambda p: p.pts)
    tb = Fraction(1, 90_000)
    start_us, end_us = shown_us(by_frame[20], tb) + 1, shown_us(by_frame[70], tb) + 1
    clip = mux_span(app, "cam", start_us, end_us, window_start_us=start_us)
    positions = _positions(clip.data)
    assert positions[0] == 30  # the first keyframe inside the window; frames 21-29 only in an export
    assert positions == list(range(30, positions[-1] + 1)) and 67 <= positions[-1] <= 70
