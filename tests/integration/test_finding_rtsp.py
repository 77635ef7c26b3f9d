"""Finding on footage recorded for real: an ffmpeg lavfi clip (20 s still, 10 s an object crossing, 20 s
still) served by GStreamer's RTSP server, recorded by the recorder (activity records sealed with each
segment), then activity levels, region search and thumbnails read back through vms.finding.  Once more with
B-frames (x264 ``-bf 3``), as many cameras send.  The gate and the audit: test_api_finding.py."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from storage.sql import activity as activity_store
from testkit.moving import enters_at, make_moving_clip
from testkit.recording import recording, segments, wait_for
from testkit.rtsp_server import Mount
from vms.core.clock import Clock
from vms.finding import timeline
from vms.finding.frames import keyframes
from vms.finding.search import Region, Search, scan
from vms.finding.thumbs import _jpeg, _nearest
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp

STILL_S, MOVE_S = 20, 10
CROSSED = Region(0.5, 0.3, 0.2, 0.3)
NEVER = Region(0.5, 0.8, 0.2, 0.15)


def _record(app_factory, server_factory, clip, database_url=None):
    server = server_factory({"/cam": Mount(clip)})  # plays once, then ends the stream
    app = app_factory([{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "segment_seconds": 10}],
                      database_url=database_url, recorder={"backoff_initial_s": 60, "backoff_max_s": 60},
                      clock=Clock())
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 120, "the end of the stream")
    return app


def _check_found(app, *, bframes: bool):
    refs = segments(app, "cam")
    assert len(refs) >= 5
    t0 = refs[0].start_us  # the clip's first frame
    with Session(app.engine) as s:
        rows = activity_store.rows(s, "cam", t0, refs[-1].end_us, max_segment_us=3_600_000_000)
    assert all(r.record is not None and len(r.record) <= 64 for r in rows), "a record per segment, <= 64 bytes"

    levels = timeline.levels(app, "cam", t0, t0 + 50_000_000, 1)
    moving = [i for i, v in enumerate(levels) if v is not None and v >= 30]
    assert moving, levels
    assert abs(moving[0] - STILL_S) <= 2 and abs(moving[-1] + 1 - (STILL_S + MOVE_S)) <= 2, levels
    still = [v for i, v in enumerate(levels) if not STILL_S - 2 <= i < STILL_S + MOVE_S + 2 and v is not None]
    assert len(still) >= 30 and max(still) <= 15, levels

    hit = Search("a", 1, "cam", 1, CROSSED, t0, t0 + 50_000_000, None)
    assert scan(app, hit) == "done" and hit.hits, hit
    entered_us = t0 + enters_at(CROSSED.x, STILL_S, MOVE_S) * 1e6
    assert 0 <= hit.hits[0].at_us - entered_us <= 2_000_000, (hit.hits, entered_us)
    miss = Search("b", 1, "cam", 1, NEVER, t0, t0 + 50_000_000, None)
    assert scan(app, miss) == "done" and miss.hits == []

    kf = _nearest(app, "cam", t0 + 25_500_000, t0, t0 + 50_000_000)
    assert t0 + 24_000_000 <= kf.shown_us <= t0 + 25_500_000 and _jpeg(kf)[:2] == b"\xff\xd8"
    shown = [k.shown_us for k in keyframes(app, "cam", t0, t0 + 50_000_000)]
    assert shown == sorted(shown) and len(shown) >= 48
    if bframes:  # with B-frames a keyframe is shown after it is decoded; thumbnails and hits use the shown time
        assert any(k.shown_us > k.packet.wall_us for k in keyframes(app, "cam", t0, t0 + 5_000_000))


def test_activity_search_and_thumbnails_on_recorded_footage(tmp_path, database_url, appliance_factory,
                                                            rtsp_server_factory):
    clip = make_moving_clip(tmp_path / "moving.mp4", still_s=STILL_S, move_s=MOVE_S)
    app = _record(appliance_factory, rtsp_server_factory, clip, database_url)
    _check_found(app, bframes=False)


def test_with_b_frames(tmp_path, appliance_factory, rtsp_server_factory):
    clip = make_moving_clip(tmp_path / "moving-b.mp4", still_s=STILL_S, move_s=MOVE_S, bframes=3)
    app = _record(appliance_factory, rtsp_server_factory, clip)
    _check_found(app, bframes=True)
