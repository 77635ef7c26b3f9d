"""Live view's parts without a camera: the hub (what a new viewer gets, what a slow viewer skips, nothing
kept for cameras without live view, no stale picture) and the muxer (fragmented MP4 that ffprobe decodes,
the MSE codec strings, a new connection ends the muxer)."""

from __future__ import annotations

import asyncio
import subprocess
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from testkit.clips import make_clip
from testkit.footage import read_clip
from vms.recording import live
from vms.recording.live import LiveHub, Packet, StreamInfo
from vms.recording.live_mux import LiveMuxer, StreamRestart, mse_codec

NOW = 1_767_225_600_000_000


@pytest.fixture(scope="module")
def h264(tmp_path_factory):
    clip = make_clip(tmp_path_factory.mktemp("live") / "h264.mp4", seconds=4, codec="h264", fps=15, gop=15,
                     width=320, height=96, pattern="ruler", bframes=2)
    return read_clip(clip.path, NOW)


def _drain(viewer) -> list:
    items = []
    while not viewer.queue.empty():
        items.append(viewer.queue.get_nowait())
    return items


def _loop_run(main):
    """``asyncio.run(main())`` on a thread of its own: the session's browser tests keep an event loop running
    on the main thread (Playwright's sync API), where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _run(fn):
    """Run ``fn(loop)`` inside a running event loop and let the queued callbacks land."""
    async def main():
        result = fn(asyncio.get_running_loop())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return result
    return _loop_run(main)


def test_a_new_viewer_starts_at_the_last_keyframe(h264):
    stream, packets = h264
    hub = LiveHub()
    for p in packets[:20]:  # keyframes at 0 and 15
        hub.feed("cam", stream, p)

    def watch(loop):
        return hub.watch("cam", "olga", packets[19].wall_us, loop)
    viewer = _run(watch)
    items = _drain(viewer)
    assert isinstance(items[0], StreamInfo)
    assert [p.keyframe for p in items[1:]] == [True, False, False, False, False]
    assert items[1] is packets[15]
    assert [v.user for v in hub.watching()] == ["olga"]
    hub.leave(viewer)
    assert hub.watching() == []


def test_nothing_is_kept_for_a_camera_without_live_view_and_turning_it_off_ends_viewing(h264):
    stream, packets = h264
    cams = [SimpleNamespace(id="cam", enabled=True, live_view=True), SimpleNamespace(id="off", enabled=True,
                                                                                     live_view=False)]
    config = SimpleNamespace(cameras=cams)
    hub = LiveHub(lambda: config)
    for p in packets[:20]:
        hub.feed("off", stream, p)
        hub.feed("cam", stream, p)
    assert hub.last_packet_us("off") is None and hub.last_packet_us("cam") == packets[19].wall_us
    viewer = _run(lambda loop: hub.watch("cam", "olga", packets[19].wall_us, loop))
    config = SimpleNamespace(cameras=[cams[0].__class__(id="cam", enabled=True, live_view=False)])  # a reload
    _run(lambda loop: [setattr(viewer, "loop", loop), hub.feed("cam", stream, packets[20])])
    assert _drain(viewer)[-1] is None and hub.last_packet_us("cam") is None


def test_a_stale_picture_is_not_shown_as_live(h264):
    stream, packets = h264
    hub = LiveHub()
    for p in packets[:5]:
        hub.feed("cam", stream, p)
    viewer = _run(lambda loop: hub.watch("cam", "olga", packets[4].wall_us + live.STALE_US + 1, loop))
    assert [i for i in _drain(viewer) if isinstance(i, Packet)] == []  # it waits for the next keyframe


def test_a_slow_viewer_skips_to_the_next_keyframe_and_the_recorder_never_waits(h264, monkeypatch):
    stream, packets = h264  # keyframes at 0, 15, 30, 45
    monkeypatch.setattr(live, "MAX_BEHIND", 5)
    hub = LiveHub()
    viewer = _run(lambda loop: hub.watch("cam", "slow", NOW, loop))

    def feed(part):
        async def main():
            viewer.loop = asyncio.get_running_loop()
            for p in part:  # the recorder's side returns at once whatever the viewer does
                hub.feed("cam", stream, p)
            await asyncio.sleep(0)
        _loop_run(main)
        items = [i for i in _drain(viewer) if isinstance(i, Packet)]
        for _ in items:
            viewer.taken()
        return items

    assert feed(packets[:20]) == packets[:5]  # the queue filled up; 5..19 were dropped
    assert feed(packets[20:40]) == packets[30:35]  # caught up: from the next keyframe on, never a broken picture
    assert viewer.skipped == 15 + 10 + 5


@pytest.mark.parametrize("codec,prefix", [("h264", "avc1.64"), ("hevc", "hvc1.1.6.L")])
def test_the_muxer_writes_fragmented_mp4_that_decodes(tmp_path, codec, prefix):
    clip = make_clip(tmp_path / f"{codec}.mp4", seconds=3, codec=codec, fps=15, gop=15, width=320, height=96,
                     pattern="ruler", bframes=2)
    stream, packets = read_clip(clip.path, NOW)
    assert mse_codec(stream).startswith(prefix)
    muxer = LiveMuxer(stream)
    pieces = [muxer.add(p) for p in packets]
    assert pieces[0][4:8] == b"ftyp" and all(pieces[1:])  # the init segment at once, then a fragment per frame
    out = tmp_path / "live.mp4"
    out.write_bytes(b"".join(pieces))
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == ""
    frames = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames",
                             "-of", "csv=p=0", str(out)], capture_output=True, text=True, check=True)
    assert int(frames.stdout.strip()) == len(packets) - 1  # the last frame waits for the next packet


def test_a_viewer_starts_at_a_keyframe_and_a_new_connection_ends_the_muxer(h264):
    stream, packets = h264
    muxer = LiveMuxer(stream)
    assert muxer.add(packets[1]) == b"" and not muxer.started
    assert muxer.add(packets[0])[4:8] == b"ftyp"
    muxer.add(packets[1])
    with pytest.raises(StreamRestart):
        muxer.add(packets[1])
