"""Gated playback: fragmented MP4 muxed in memory from decrypted packets, decodable
by PyAV and ffprobe, Range requests for scrubbing, 403 outside the ticket, audited."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import av
import pytest

from storage.sql import index
from testkit.api_footage import record
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso
from tests.support.fixtures import missing_component


@pytest.fixture
def recorded(api_env, h264_clip):
    """Footage on ``entrance`` 10 minutes ago and an approved view ticket covering it."""
    env = api_env
    start = env.clock.now_us() - 600_000_000
    rec = record(env.app, "entrance", h264_clip.path, start)
    t = env.file_ticket("olga", cameras=["entrance", "hall"], start_us=start - 1_000_000, end_us=start + 60_000_000)
    env.approve(t["id"])
    return env, rec, t


def _url(t, camera="entrance"):
    return f"/api/tickets/{t['id']}/cameras/{camera}/play"


def _decode(data: bytes) -> tuple[int, float]:
    with av.open(io.BytesIO(data)) as c:
        st = c.streams.video[0]
        frames = sum(1 for _ in c.decode(st))
        return frames, float(c.duration or 0) / 1e6


def test_play_gives_fragmented_mp4_that_decodes(recorded, tmp_path):
    env, rec, t = recorded
    span = {"start": iso(rec["first_us"]), "end": iso(rec["last_us"] + 1)}
    r = env.client("olga").get(_url(t), params=span)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    data = r.content
    assert b"moof" in data and b"mvex" in data  # fragmented
    frames, _ = _decode(data)
    assert frames == rec["packets"]
    # the recording gap stays a gap on the media timeline (about 4 + 6 + 2 s)
    with av.open(io.BytesIO(data)) as c:
        st = c.streams.video[0]
        pts = [float(p.pts * st.time_base) for p in c.demux(st) if p.size]
    assert 11.5 < max(pts) < 12.5
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        missing_component("ffprobe (Debian's ffmpeg) is not installed")
    clip = tmp_path / "play.mp4"
    clip.write_bytes(data)
    out = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,nb_read_frames,width,height", "-of", "json", str(clip)],
                         capture_output=True, text=True, check=True)
    stream = json.loads(out.stdout)["streams"][0]
    assert stream == {"codec_name": "h264", "width": 640, "height": 360, "nb_read_frames": str(rec["packets"])}


def test_range_requests_for_scrubbing(recorded):
    env, rec, t = recorded
    c = env.client("olga")
    span = {"start": iso(rec["first_us"] + 1_500_000), "end": iso(rec["first_us"] + 3_000_000)}
    full = c.get(_url(t), params=span)
    assert full.status_code == 200
    size = len(full.content)
    part = c.get(_url(t), params=span, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 100-1099/{size}"
    assert part.content == full.content[100:1100]
    tail = c.get(_url(t), params=span, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    bad = c.get(_url(t), params=span, headers={"Range": f"bytes={size}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    assert c.get(_url(t), params=span, headers={"Range": "pages=1-2"}).status_code == 416
    # starts at the keyframe at or before the span start: 1 s keyframes, 1.5 s -> from 1 s
    frames, _ = _decode(full.content)
    assert frames == 30  # 1.0 s .. 3.0 s at 15 fps


def test_play_is_audited_with_who_ticket_camera_span(recorded):
    env, rec, t = recorded
    span = {"start": iso(rec["first_us"]), "end": iso(rec["first_us"] + 2_000_000)}
    env.client("olga").get(_url(t), params=span)
    env.client("olga").get(_url(t), params=span, headers={"Range": "bytes=0-9"})  # same viewing: from memory
    entries = env.client("aud").get("/api/audit", params={"action": "footage.play"}).json()["items"]
    assert len(entries) == 1
    e = entries[0]
    assert (e["actor"], e["role"], e["ticket_id"], e["object"], e["outcome"]) == ("olga", "operator", t["id"],
                                                                                 "camera:entrance", "ok")
    assert f"span={span['start']}..{span['end']}" in e["detail"] and "packets=30" in e["detail"]


def test_refused_outside_the_ticket_with_the_reason(recorded):
    env, rec, t = recorded
    c = env.client("olga")
    inside = {"start": iso(rec["first_us"]), "end": iso(rec["first_us"] + 2_000_000)}
    cases = [
        (c, _url(t), {"start": iso(rec["first_us"] - 5_000_000), "end": inside["end"]}, 403, "outside ticket"),
        (c, _url(t, "lobby"), inside, 403, "not one of ticket"),
        (env.client("aud"), _url(t), inside, 403, "role"),
        (env.client("adam"), _url(t), inside, 403, "role"),
        (env.client("otto"), _url(t), inside, 404, "does not exist"),
        (c, _url(t), {"start": inside["end"], "end": inside["start"]}, 422, "reversed"),
        (c, _url(t), {"start": "0001-01-01T00:00:00+14:00", "end": inside["end"]}, 422, "out of range"),
        (c, _url(t), {"start": inside["start"], "end": "9999-12-31T23:59:59-14:00"}, 422, "out of range"),
        (c, _url(t), {"start": "2026-01-01T00:00:00"}, 422, "query.start"),
        (env.anonymous(), _url(t), inside, 401, "sign in"),
    ]
    for client, url, params, status, words in cases:
        r = client.get(url, params=params)
        assert r.status_code == status, (url, params, r.text)
        assert words in r.json()["detail"], r.text
    refused = [e for e in env.client("aud").get("/api/audit", params={"action": "footage.play"}).json()["items"]]
    # outside the window and the wrong camera; invalid spans are refused (422) before any footage is looked up
    assert len(refused) == 2 and all(e["outcome"].startswith("refused:") for e in refused)


def test_not_before_approval_nor_after_the_access_window(api_env, h264_clip):
    env = api_env
    start = env.clock.now_us() - 600_000_000
    rec = record(env.app, "entrance", h264_clip.path, start)
    t = env.file_ticket("olga", start_us=start, end_us=start + 30_000_000)
    span = {"start": iso(start), "end": iso(start + 2_000_000)}
    r = env.client("olga").get(_url(t), params=span)
    assert r.status_code == 403 and "approved" in r.json()["detail"]
    assert env.client("olga").get(f"/api/tickets/{t['id']}/footage").status_code == 403
    env.approve(t["id"])
    assert env.client("olga").get(_url(t), params=span).status_code == 200
    assert env.client("mia").get(_url(t), params=span).status_code == 200  # a manager may too
    env.advance(7 * 86400)
    r = env.client("olga").get(_url(t), params=span)
    assert r.status_code == 403 and "expired" in r.json()["detail"]
    assert rec["packets"] > 0


def test_footage_listing_shows_spans_gaps_and_missing(recorded):
    env, rec, t = recorded
    r = env.client("olga").get(f"/api/tickets/{t['id']}/footage")
    assert r.status_code == 200
    by_cam = {c["camera"]: c for c in r.json()}
    assert set(by_cam) == {"entrance", "hall"}
    spans = by_cam["entrance"]["recorded"]
    assert len(spans) == 2
    assert (_us(spans[0]["start"]), _us(spans[0]["end"]), _us(spans[1]["start"])) == (rec["first_us"], *rec["gap"])
    assert rec["last_us"] < _us(spans[1]["end"]) <= rec["last_us"] + 70_000
    assert by_cam["hall"]["recorded"] == [] and len(by_cam["hall"]["missing"]) == 1
    assert len(by_cam["entrance"]["missing"]) == 3  # before, between, after the recordings
    assert by_cam["entrance"]["play_url"] == _url(t)
    assert env.client("aud").get(f"/api/tickets/{t['id']}/footage").status_code == 403


def _us(text: str) -> int:
    from datetime import datetime

    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(t.timestamp()) * 1_000_000 + t.microsecond


def test_no_plaintext_on_disk(recorded):
    env, rec, t = recorded
    root = env.app.config.data_dir

    def files():
        return {p for p in root.rglob("*") if p.is_file() and not p.name.startswith("index.db")}

    before = files()
    r = env.client("olga").get(_url(t), params={"start": iso(rec["first_us"]), "end": iso(rec["last_us"])})
    assert r.status_code == 200 and b"moof" in r.content
    assert all(p.suffix in (".vseg", ".key", ".toml") for p in before), before
    # the muxed clip is kept for range requests only encrypted, under a key that is never stored
    (clip_file,) = files() - before
    stored_bytes = clip_file.read_bytes()
    assert clip_file.parent.name == "playback" and stored_bytes.startswith(b"VMSBLOB\x01")
    assert b"ftyp" not in stored_bytes and b"moof" not in stored_bytes and r.content[-4096:] not in stored_bytes


def test_a_clip_in_memory_does_not_outlive_the_shred_of_its_day(recorded):
    """Range requests of one viewing are served from memory, but not once the footage's day key is shredded
    (as the janitor does, in this process or another): then the key is gone for the cache too."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    env, rec, t = recorded
    c = env.client("olga")
    span = {"start": iso(rec["first_us"]), "end": iso(rec["first_us"] + 2_000_000)}
    assert c.get(_url(t), params=span).status_code == 200
    assert c.get(_url(t), params=span, headers={"Range": "bytes=0-9"}).status_code == 206  # from memory
    day = datetime.fromtimestamp(rec["first_us"] / 1e6, UTC).strftime("%Y-%m-%d")
    with Session(env.app.engine) as s, s.begin():
        assert env.app.keys.shred(s, index.day_key(s, "entrance", day).id, now_us=env.clock.now_us())
    r = c.get(_url(t), params=span, headers={"Range": "bytes=0-9"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), r.text
    assert "no footage" in r.json()["detail"]
    assert r.content[:4] != b"\x00\x00\x00\x18" and b"ftyp" not in r.content
