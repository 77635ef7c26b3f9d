"""Finding through the API: activity, thumbnails and region search of footage stored with activity records
(the recorder's meter over a real ffmpeg clip), gated by the ticket (403 problems) and audited once per
search.  SQLite and PostgreSQL (``api_env``).  Recording from the RTSP server: test_finding_rtsp.py."""

from __future__ import annotations

import io

import av
import pytest
from sqlalchemy.orm import Session

from storage.sql import audit as audit_store
from testkit.moving import enters_at, make_moving_clip, store_with_activity
from testkit.recording import wait_for
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso

STILL_S, MOVE_S = 20, 10
CROSSED = {"x": 0.5, "y": 0.3, "w": 0.2, "h": 0.3}  # the square passes through here
NEVER = {"x": 0.5, "y": 0.8, "w": 0.2, "h": 0.15}  # below its path


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory):
    return make_moving_clip(tmp_path_factory.mktemp("clips") / "moving.mp4", still_s=STILL_S, move_s=MOVE_S)


@pytest.fixture
def found(api_env, moving_clip):
    """The clip on ``entrance`` an hour ago (10 s segments) and an approved view ticket covering it."""
    env = api_env
    start = env.clock.now_us() - 3_600_000_000
    store_with_activity(env.app, "entrance", moving_clip, start)
    t = env.file_ticket("olga", cameras=["entrance"], start_us=start, end_us=start + 60_000_000)
    env.approve(t["id"])
    return env, start, t


def _base(t, camera="entrance"):
    return f"/api/tickets/{t['id']}/cameras/{camera}"


def _search(env, t, region, **kw):
    c = env.client("olga")
    r = c.post(f"{_base(t)}/searches", json={"region": region, **kw})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "running" and body["hits"] == [] and 0 <= body["progress"] <= 1
    url = f"/api/tickets/{t['id']}/searches/{body['id']}"
    return wait_for(lambda: (b := c.get(url).json())["state"] != "running" and b, 60, "the search to finish")


def test_activity_marks_the_moving_part(found):
    env, start, t = found
    r = env.client("olga").get(f"{_base(t)}/activity", params={"start": iso(start), "end": iso(start + 60_000_000)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["camera_id"] == "entrance" and body["step_s"] == 1 and len(body["levels"]) == 60
    levels = body["levels"]
    moving = [i for i, v in enumerate(levels) if v is not None and v >= 30]
    assert moving and abs(moving[0] - STILL_S) <= 2 and abs(moving[-1] + 1 - (STILL_S + MOVE_S)) <= 2, levels
    still = [v for i, v in enumerate(levels[:50]) if not STILL_S - 2 <= i < STILL_S + MOVE_S + 2]
    assert still and all(v is not None and v <= 15 for v in still), levels
    assert all(v is None for v in levels[51:]), levels  # nothing recorded after the clip
    coarse = env.client("olga").get(f"{_base(t)}/activity", params={"step_s": 10}).json()
    assert len(coarse["levels"]) == 6 and coarse["levels"][2] >= 30 and coarse["levels"][0] <= 15


def test_thumbnail_is_a_small_jpeg_of_a_keyframe(found):
    env, start, t = found
    r = env.client("olga").get(f"{_base(t)}/thumbnail", params={"at": iso(start + 25_500_000)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-frame-time"].startswith(iso(start + 25_000_000)[:19])  # the keyframe at or before
    with av.open(io.BytesIO(r.content)) as c:
        frame = next(c.decode(video=0))
    assert frame.width == 320 and frame.height == 180


def test_region_search_finds_the_object_entering(found):
    env, start, t = found
    done = _search(env, t, CROSSED)
    assert done["state"] == "done" and done["progress"] == 1, done
    assert done["hits"], done
    first = done["hits"][0]
    entered_us = start + enters_at(CROSSED["x"], STILL_S, MOVE_S) * 1e6
    got = _us(first["at"])
    assert 0 <= got - entered_us <= 2_000_000 and first["score"] > 0.02
    nothing = _search(env, t, NEVER)
    assert nothing["state"] == "done" and nothing["hits"] == [], nothing


def test_one_audit_entry_per_search_naming_camera_window_and_region(found):
    env, start, t = found
    _search(env, t, CROSSED)
    for _ in range(3):  # activity and thumbnails are not audited per request
        env.client("olga").get(f"{_base(t)}/activity")
        env.client("olga").get(f"{_base(t)}/thumbnail", params={"at": iso(start + 5_000_000)})
    with Session(env.app.engine) as s:
        rows = audit_store.search(s, action="footage.", limit=1000)
    searches = [r for r in rows if r.action == "footage.search"]
    assert len(searches) == 1 and not [r for r in rows if r.action in ("footage.activity", "footage.thumbnail")]
    e = searches[0]
    assert e.object == "camera:entrance" and e.ticket_id == t["id"] and e.outcome == "ok", e
    assert iso(start)[:19] in e.detail and iso(start + 60_000_000)[:19] in e.detail, e.detail
    assert "region=x0.5000,y0.3000,w0.2000,h0.3000" in e.detail


def _us(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000)


@pytest.mark.parametrize("who", ["olga", "mia"])
def test_refused_outside_the_ticket(found, who):
    env, start, t = found
    c = env.client(who)
    before, after = iso(start - 10_000_000), iso(start + 70_000_000)
    cases = [
        c.get(f"{_base(t)}/activity", params={"start": before, "end": iso(start + 10_000_000)}),
        c.get(f"{_base(t)}/activity", params={"start": iso(start), "end": after}),
        c.get(f"{_base(t, 'hall')}/activity"),
        c.get(f"{_base(t)}/thumbnail", params={"at": before}),
        c.get(f"{_base(t)}/thumbnail", params={"at": after}),
        c.get(f"{_base(t, 'hall')}/thumbnail", params={"at": iso(start + 5_000_000)}),
        c.post(f"{_base(t, 'hall')}/searches", json={"region": CROSSED}),
        c.post(f"{_base(t)}/searches", json={"region": CROSSED, "start": before}),
    ]
    for r in cases:
        assert r.status_code == 403, (r.request.url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 403


def test_refused_after_the_access_period_and_for_other_roles(found):
    env, start, t = found
    search = env.client("olga").post(f"{_base(t)}/searches", json={"region": NEVER}).json()
    for who in ("aud", "adam"):
        r = env.client(who).get(f"{_base(t)}/activity")
        assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    other = env.client("otto").get(f"/api/tickets/{t['id']}/searches/{search['id']}")
    assert other.status_code == 404  # another operator's ticket does not exist for them
    env.advance(8 * 86_400)  # past the 7-day access window
    c = env.client("olga")
    for r in (c.get(f"{_base(t)}/activity"),
              c.get(f"{_base(t)}/thumbnail", params={"at": iso(start + 5_000_000)}),
              c.post(f"{_base(t)}/searches", json={"region": CROSSED}),
              c.get(f"/api/tickets/{t['id']}/searches/{search['id']}")):
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


def test_bad_input_is_a_422_naming_the_field(found):
    env, start, t = found
    c = env.client("olga")
    r = c.get(f"{_base(t)}/activity", params={"step_s": 0})
    assert r.status_code == 422 and "step_s" in r.json()["detail"]
    r = c.post(f"{_base(t)}/searches", json={"region": {"x": 0.9, "y": 0.1, "w": 0.5, "h": 0.5}})
    assert r.status_code == 422 and "region" in r.json()["detail"]
    r = c.post(f"{_base(t)}/searches", json={"region": {"x": 0.1, "y": 0.1, "w": 0.5}})
    assert r.status_code == 422 and "region" in r.json()["detail"]


def test_cancel_stops_a_search(found):
    env, start, t = found
    c = env.client("olga")
    body = c.post(f"{_base(t)}/searches", json={"region": CROSSED}).json()
    r = c.post(f"/api/tickets/{t['id']}/searches/{body['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] in ("cancelled", "done")
