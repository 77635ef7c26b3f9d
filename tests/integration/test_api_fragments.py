"""The continuous player's API: a play (one audit entry) and its fragments of fragmented MP4.

Fragments asked for one after the other join without a frame missing or repeated, start on a keyframe
shown inside the window, end before the window's end, and place every frame on the wall clock
(ffprobe reads them); a recording gap ends a fragment and ``X-Fragment-Next`` jumps it.  Refusals:
outside the window, a camera not of the ticket or not of the play, another operator's ticket, roles
without footage, and after the access period; each a problem body, none a 5xx."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.api_footage import record
from testkit.footage import ensure_signing_key
from testkit.recording import recording, stored, wait_for
from testkit.rtsp_server import Mount
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import USERS, ApiEnv, iso, password_hash
from tests.support.export_tools import run, tool
from vms.core.clock import Clock
from vms.recording.recorder import Recorder


def _us(text: str) -> int:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return round(t.timestamp() * 1_000_000)


def _probe(path) -> list[tuple[float, bool]]:
    """(pts in s, keyframe) of every video packet, in decode order, and whether every frame decodes."""
    r = run(tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
            "-of", "json", path)
    assert r.returncode == 0, r.stderr
    out = [(float(p["pts_time"]), p["flags"].startswith("K")) for p in json.loads(r.stdout)["packets"]]
    d = run(tool("ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-")
    assert d.returncode == 0 and not d.stderr.strip(), d.stderr
    return out


def _start(client, ticket_id: int, cameras, at_us=None):
    body = {"cameras": list(cameras)} | ({"at": iso(at_us)} if at_us is not None else {})
    return client.post(f"/api/tickets/{ticket_id}/plays", json=body)


def _fragment(client, ticket_id, play_id, camera, at_us, span_s=1):
    return client.get(f"/api/tickets/{ticket_id}/cameras/{camera}/fragment",
                      params={"play": play_id, "at": iso(at_us), "span_s": span_s})


def _audit(env, ticket_id):
    r = env.client("aud").get("/api/audit", params={"ticket_id": ticket_id, "action": "footage."})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.rtsp
def test_fragments_recorded_from_rtsp_join_into_the_window(database_url, appliance_factory, rtsp_server_factory,
                                                           clip_factory, tmp_path):
    clip = clip_factory.get(seconds=8)  # 120 packets at 15 fps, a keyframe every 15
    server = rtsp_server_factory({"/cam": Mount(clip.path)})
    app = appliance_factory([{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "segment_seconds": 2}],
                            database_url=database_url, recorder={"backoff_initial_s": 60, "backoff_max_s": 60},
                            clock=Clock())
    ensure_signing_key(app)
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["cam"].stats.last_error == "stream ended", 40, "the end of the stream")
    packets = [p for _, ps in stored(app, "cam") for p in ps]
    assert len(packets) == clip.packets and packets[30].keyframe and packets[105].keyframe
    with Session(app.engine) as s, s.begin():
        for name, role in USERS.items():
            index.add_user(s, name, role=role, password_hash=password_hash(), now_us=app.clock.now_us(),
                           must_change=False)
    from api.app import create_app

    env = ApiEnv(app, create_app(app), app.clock)
    # the window starts inside the GOP of keyframe 15 and ends inside the GOP of keyframe 105
    start_us, end_us = packets[20].wall_us + 1, packets[110].wall_us + 1
    t = env.file_ticket("olga", cameras=["cam"], start_us=start_us, end_us=end_us)["id"]
    env.approve(t, "mia")
    olga = env.client("olga")
    r = _start(olga, t, ["cam"], packets[40].wall_us)
    assert r.status_code == 201, r.text
    play = r.json()
    assert play["cameras"] == ["cam"] and play["window"]["start"] == iso(start_us)

    # the first fragment asked at the window's start starts on the first keyframe shown inside it
    at, shown, n = start_us, [], 0
    while at is not None:
        r = _fragment(olga, t, play["id"], "cam", at)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "video/mp4" and r.headers["x-fragment-codecs"].startswith("avc1.")
        path = tmp_path / f"f{n}.mp4"
        path.write_bytes(r.content)
        probed = _probe(path)
        assert probed[0][1], "a fragment starts on a keyframe"
        base = _us(r.headers["x-fragment-base"])
        walls = [base + round(pts * 1_000_000) for pts, _ in probed]
        assert abs(walls[0] - _us(r.headers["x-fragment-first"])) <= 1
        shown += walls
        nxt = r.headers.get("x-fragment-next")
        if nxt:
            assert abs(_us(nxt) - (walls[-1] + 66_667)) <= 2_000  # the next one starts where this one ends
        at, n = (_us(nxt) if nxt else None), n + 1
    kept = [p.wall_us for p in packets[30:111]]  # keyframe 30 .. the last packet before the window's end
    assert len(shown) == len(kept) and n == 6
    assert all(abs(a - b) <= 1_000 for a, b in zip(shown, kept, strict=True))  # to the millisecond

    # a seek to the window's last microsecond: its last GOP, up to its end and no further
    r = _fragment(olga, t, play["id"], "cam", end_us - 1)
    assert r.status_code == 200 and "x-fragment-next" not in r.headers
    assert _us(r.headers["x-fragment-first"]) == packets[105].wall_us
    assert _us(r.headers["x-fragment-end"]) == end_us  # its last frame is shown until the window ends
    # one audited play, however many fragments
    plays = [e for e in _audit(env, t) if e["action"] == "footage.play"]
    assert len(plays) == 1 and plays[0]["outcome"] == "ok" and plays[0]["object"] == "camera:cam"
    assert f"at={iso(packets[40].wall_us)}" in plays[0]["detail"]


@pytest.fixture
def played(api_env, h264_clip):
    """``entrance``: two segments (4 s), a 6 s gap, a third segment (2 s); an approved ticket on both
    cameras covering it; a play of ``entrance`` started by its requester."""
    env = api_env
    start = env.clock.now_us() - 600_000_000
    rec = record(env.app, "entrance", h264_clip.path, start)
    t = env.file_ticket("olga", cameras=["entrance", "hall"], start_us=start - 1_000_000,
                        end_us=start + 60_000_000)["id"]
    env.approve(t)
    r = _start(env.client("olga"), t, ["entrance"])
    assert r.status_code == 201, r.text
    return env, rec, t, r.json()["id"]


def test_a_recording_gap_ends_a_fragment_and_next_jumps_it(played):
    env, rec, t, play = played
    c = env.client("olga")
    r = _fragment(c, t, play, "entrance", rec["first_us"] + 2_500_000, span_s=30)
    assert r.status_code == 200, r.text
    assert _us(r.headers["x-fragment-first"]) == rec["first_us"] + 2_000_000  # the keyframe before
    assert abs(_us(r.headers["x-fragment-end"]) - (rec["first_us"] + rec["clip_us"])) <= 1_000
    assert _us(r.headers["x-fragment-next"]) == rec["gap"][1]
    r = _fragment(c, t, play, "entrance", rec["gap"][0] + 1_000_000)  # inside the gap: the footage after it
    assert r.status_code == 200 and _us(r.headers["x-fragment-first"]) == rec["gap"][1]


def test_fragments_outside_the_ticket_are_refused(played):
    env, rec, t, play = played
    c = env.client("olga")
    ticket = c.get(f"/api/tickets/{t}").json()
    before = _us(ticket["start"]) - 1
    for r in (_fragment(c, t, play, "entrance", before),  # before the window
              _fragment(c, t, play, "entrance", _us(ticket["end"])),  # at its end (exclusive)
              _fragment(c, t, play, "lobby", rec["first_us"]),  # not a camera of the ticket
              _fragment(c, t, play, "hall", rec["first_us"]),  # the ticket's, but not the play's
              _start(c, t, ["entrance", "lobby"]),
              _start(c, t, ["entrance"], before)):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"] == "application/problem+json" and r.json()["detail"]
    # another operator's ticket does not exist for them; a play is its credential's; roles without footage
    assert _fragment(env.client("otto"), t, play, "entrance", rec["first_us"]).status_code == 404
    assert _fragment(env.client("olga", fresh=True), t, play, "entrance", rec["first_us"]).status_code == 404
    for name in ("aud", "adam"):
        assert _fragment(env.client(name), t, play, "entrance", rec["first_us"]).status_code == 403
        assert _start(env.client(name), t, ["entrance"]).status_code == 403
    assert _start(c, t, ["entrance"] * 1 + ["hall", "x1", "x2", "x3"]).status_code == 422  # five cameras
    assert c.get(f"/api/tickets/{t}/cameras/entrance/fragment",
                 params={"play": play, "at": "1700000000"}).status_code == 422  # a Unix time is no time
    # the access period ends: the play started before it ends too
    assert _fragment(c, t, play, "entrance", rec["first_us"]).status_code == 200
    env.advance((_us(ticket["access_until"]) - env.clock.now_us()) / 1e6 + 1)
    c = env.client("olga")
    assert _start(c, t, ["entrance"]).status_code == 403
    for name in ("olga", "mia"):  # whoever asks, with whatever play
        r = _fragment(env.client(name), t, play, "entrance", rec["first_us"])
        assert r.status_code == 403 and "expired" in r.json()["detail"], r.text
    entries = _audit(env, t)
    refused = [e for e in entries if e["outcome"].startswith("refused")]
    ok = [e for e in entries if e["action"] == "footage.play" and e["outcome"] == "ok"]
    assert len(ok) == 1 and len(refused) >= 7


def test_b_frame_fragments_place_every_frame_on_the_wall_clock(appliance_factory, tmp_path):
    """x264 with B-pyramid (pts != dts): a fragment's frames, read by ffprobe in presentation order, sit at
    X-Fragment-Base plus their pts, which is when the camera showed them, and fragments join at keyframes."""
    from testkit.clips import make_clip
    from testkit.footage import store_clip
    from vms.evidence import fragments
    from vms.evidence.remux import shown_us

    clip = make_clip(tmp_path / "ruler.mp4", seconds=6, codec="h264", fps=15, gop=15, width=640, height=96,
                     pattern="ruler", bframes=3)
    app = appliance_factory([{"id": "cam", "source": "rtsp://127.0.0.1:1/cam", "retain_days": 7}])
    t0 = 1_767_225_600_000_000
    st = store_clip(app, "cam", clip.path, t0)
    assert any(p.pts != p.dts for p in st.packets)
    shown = sorted(shown_us(p, st.stream.time_base) for p in st.packets)
    at, got, first = t0 + 2_500_000, [], None
    while at is not None:
        f = fragments.build(app, "cam", at, 1, window=(t0, t0 + 10_000_000))
        first = f.first_us if first is None else first
        path = tmp_path / f"f{len(got)}.mp4"
        path.write_bytes(b"".join(f.body.chunks()))
        f.body.discard()
        r = run(tool("ffprobe"), "-v", "error", "-show_entries", "frame=pts_time", "-of", "json", path)
        got += [f.base_us + round(float(x["pts_time"]) * 1e6) for x in json.loads(r.stdout)["frames"]]
        at = f.next_us
    keyframe = next(shown_us(p, st.stream.time_base) for p in reversed(st.packets)
                    if p.keyframe and shown_us(p, st.stream.time_base) <= t0 + 2_500_000)
    assert first == keyframe  # the keyframe shown at or before the moment
    expected = [s for s in shown if s >= keyframe]
    assert len(got) == len(expected) and all(abs(a - b) <= 2 for a, b in zip(got, expected, strict=True))
