"""Chromium plays footage with B-frames in the camera's order: playback and an exported clip.

The ruler clip (H.264, bframes=3 with B-pyramid) is stored as the recorder stores it, muxed for
playback and exported; each MP4 is handed to Chromium (through a route of the page, no network).  At
every frame Chromium presents (``requestVideoFrameCallback``), the page notes the frame's media time
and draws the picture to a canvas, where the ruler bar says which frame it is: both must increase
strictly, the video reaches ``readyState`` 4 and ``currentTime`` advances."""

from __future__ import annotations

import json
import time

import pytest

from testkit.clips import RULER_STEP, make_clip
from testkit.footage import ensure_signing_key, store_clip
from tests.support.export_tools import unpack
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.playback import mux_span

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
PAGE = """<!doctype html><html><body>
<video id=v src="/clip.mp4" muted playsinline></video><canvas id=c width=640 height=8></canvas>
<script>
window.samples = [];
const v = document.getElementById('v'), ctx = document.getElementById('c').getContext('2d', {willReadFrequently: true});
function onFrame(now, meta) {
  ctx.drawImage(v, 0, 40, 640, 8, 0, 0, 640, 8);
  const row = ctx.getImageData(0, 4, 640, 1).data;
  let x = -1;
  for (let i = 0; i < 640; i++) { if (row[4 * i] > 128) { x = i; break; } }
  window.samples.push([meta.mediaTime, x]);
  v.requestVideoFrameCallback(onFrame);
}
v.requestVideoFrameCallback(onFrame);
v.play();
</script></body></html>"""


def _play_in_chromium(browser, mp4: bytes) -> tuple[list[tuple[float, int]], dict]:
    page = browser.new_page()
    page.route("http://clip.test/", lambda route: route.fulfill(status=200, content_type="text/html", body=PAGE))
    page.route("http://clip.test/clip.mp4", lambda route: route.fulfill(status=200, content_type="video/mp4",
                                                                       body=mp4))
    page.goto("http://clip.test/")
    deadline = time.monotonic() + 30
    state = {}
    while time.monotonic() < deadline:
        state = page.evaluate("() => { const v = document.getElementById('v'); return {ready: v.readyState, "
                              "t: v.currentTime, ended: v.ended, error: v.error && v.error.message}; }")
        if state["ended"] or state["error"]:
            break
        time.sleep(0.2)
    return [tuple(s) for s in page.evaluate("() => window.samples")], state


@pytest.fixture
def bframe_footage(appliance_factory, tmp_path):
    clip = make_clip(tmp_path / "ruler.mp4", seconds=6, codec="h264", fps=15, gop=15, width=640, height=96,
                     pattern="ruler", bframes=3)
    app = appliance_factory([{"id": "cam", "source": "rtsp://127.0.0.1:1/cam", "retain_days": 7}])
    ensure_signing_key(app)
    stored = store_clip(app, "cam", clip.path, T0)
    assert any(p.pts != p.dts for p in stored.packets)  # really B-frames, stored with their composition offsets
    return app, stored


def _assert_in_order(samples, state, frames_expected: int) -> None:
    assert state["error"] is None and state["ended"], state
    assert state["t"] > 5.0  # currentTime advanced through the clip
    times = [t for t, _ in samples]
    positions = [x for _, x in samples]
    assert len(samples) >= frames_expected // 2  # a presented frame at least every other frame
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), times
    assert -1 not in positions and all(b > a for a, b in zip(positions, positions[1:], strict=False)), positions
    assert positions[0] == 0 and positions[-1] >= (frames_expected - 3) * RULER_STEP


def test_chromium_plays_playback_with_b_frames_in_order(browser, bframe_footage):
    app, stored = bframe_footage
    clip = mux_span(app, "cam", stored.first_us, stored.last_us + 1_000_000)
    samples, state = _play_in_chromium(browser, clip.data)
    _assert_in_order(samples, state, len(stored.packets))


def test_chromium_plays_an_exported_b_frame_clip_in_order(browser, bframe_footage, tmp_path):
    app, stored = bframe_footage
    info = export_package(app, ExportRequest("T-B", "incident", "GDPR art. 6(1)(f)", "olsen", "jensen", "Politi",
                                             ("cam",), stored.first_us, stored.last_us + 1_000_000))
    package = tmp_path / info.filename
    package.write_bytes(b"".join(package_store(app).open(info.package_id)))
    folder = unpack(package, tmp_path / "x")
    (clip,) = json.loads((folder / "manifest.json").read_text())["cameras"][0]["clips"]
    assert not clip["reencoded"]
    samples, state = _play_in_chromium(browser, (folder / clip["file"]).read_bytes())
    _assert_in_order(samples, state, clip["frames"])
