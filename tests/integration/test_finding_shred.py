"""Crypto-shredding reaches finding: once a camera-hour's (or day's) key is destroyed, no activity level,
thumbnail or search hit of that footage can be produced -- not from the index, not from a copy of the files
or of the activity records, not from what a search or the thumbnail cache kept in memory.  A held segment
keeps its own key, and its activity is recomputed from its packets.  SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyShredded
from storage.sql import index
from storage.sql.models import SegmentActivity, SegmentKey
from testkit.moving import make_moving_clip, store_with_activity
from testkit.recording import segments, wait_for
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso
from vms.finding import timeline
from vms.finding.search import Region, Search, scan
from vms.finding.thumbs import _nearest

CROSSED = {"x": 0.5, "y": 0.3, "w": 0.2, "h": 0.3}


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory):
    return make_moving_clip(tmp_path_factory.mktemp("clips") / "moving.mp4", still_s=20, move_s=10)


def _shred_all(app, camera_id: str) -> None:
    """What the janitor does when the footage's retention has ended: its hour keys, then its day key."""
    now = app.clock.now_us()
    with Session(app.engine) as s, s.begin():
        for ref in segments(app, camera_id):
            app.keys.shred_hour(s, ref.key_id, (ref.start_us // 3_600_000_000) % 24, now_us=now)
        for key_id in {ref.key_id for ref in segments(app, camera_id)}:
            app.keys.shred(s, key_id, now_us=now)


def _records(app) -> list[tuple[int, bytes]]:
    with Session(app.engine) as s:
        return [(r.segment_id, r.record) for r in s.scalars(select(SegmentActivity))]


def test_nothing_is_produced_after_the_keys_are_destroyed(appliance_factory, database_url, moving_clip, tmp_path):
    app = appliance_factory([{"id": "cam", "source": "rtsp://127.0.0.1:1/x", "retain_days": 7}],
                            database_url=database_url)
    start = app.clock.now_us() - 3_600_000_000
    store_with_activity(app, "cam", moving_clip, start)
    end = start + 50_000_000
    assert max(v for v in timeline.levels(app, "cam", start, end, 1) if v is not None) >= 30
    assert _nearest(app, "cam", start + 25_000_000, start, end) is not None
    before = Search("a", 1, "cam", 1, Region(**CROSSED), start, end, None)
    assert scan(app, before) == "done" and before.hits
    copy = tmp_path / "copy"
    shutil.copytree(app.store.root, copy)  # a backup, a stolen disk
    records = _records(app)
    assert records

    _shred_all(app, "cam")

    assert timeline.levels(app, "cam", start, end, 1) == [None] * 50
    assert _nearest(app, "cam", start + 25_000_000, start, end) is None
    after = Search("b", 1, "cam", 1, Region(**CROSSED), start, end, None)
    assert scan(app, after) == "done" and after.hits == []
    with Session(app.engine) as s:  # the copies: no key the appliance still has opens them
        keys = app.keys.activity_keys(s, {ref.key_id for ref in segments(app, "cam")})
        assert keys == {}
        for ref in segments(app, "cam"):
            with pytest.raises(KeyShredded):
                list(SegmentReader(copy / ref.path, app.keys.key_for_segment(s, ref.id)).packets())
    assert _records(app) == records  # the rows are still there (until the janitor removes them): noise now
    with Session(app.engine) as s, s.begin():  # the janitor's removal of the rows takes the records along
        index.remove_segments(s, [r.id for r in segments(app, "cam")])
    assert _records(app) == []


def test_held_segments_keep_their_activity_after_the_hour_key_goes(appliance_factory, sqlite_url, moving_clip):
    app = appliance_factory([{"id": "cam", "source": "rtsp://127.0.0.1:1/x", "retain_days": 7}],
                            database_url=sqlite_url)
    start = app.clock.now_us() - 3_600_000_000
    store_with_activity(app, "cam", moving_clip, start)
    end = start + 50_000_000
    recorded = timeline.levels(app, "cam", start, end, 1)
    with Session(app.engine) as s, s.begin():
        for ref in segments(app, "cam"):
            app.keys.keep_segment_key(s, ref.id, app.store.abspath(ref.path))
    _shred_all(app, "cam")
    held = timeline.levels(app, "cam", start, end, 1, timeline.HeldLevels())
    moving = [i for i, v in enumerate(held) if v is not None and v >= 30]
    assert moving and abs(moving[0] - 20) <= 2, held
    assert sum(v is None for v in held) <= 2 and sum(v is None for v in recorded) <= 2


def test_what_a_search_and_the_cache_kept_is_not_served_after_shredding(api_env, moving_clip):
    env = api_env
    start = env.clock.now_us() - 3_600_000_000
    store_with_activity(env.app, "entrance", moving_clip, start)
    t = env.file_ticket("olga", cameras=["entrance"], start_us=start, end_us=start + 60_000_000)
    env.approve(t["id"])
    c = env.client("olga")
    base = f"/api/tickets/{t['id']}/cameras/entrance"
    body = c.post(f"{base}/searches", json={"region": CROSSED}).json()
    url = f"/api/tickets/{t['id']}/searches/{body['id']}"
    done = wait_for(lambda: (b := c.get(url).json())["state"] == "done" and b, 60, "the search")
    assert done["hits"]
    assert c.get(f"{base}/thumbnail", params={"at": done["hits"][0]["at"]}).status_code == 200  # now cached
    # the hold's own keys gone and the hour and day keys shredded: as once the footage's hold and retention end
    with Session(env.app.engine) as s, s.begin():
        s.execute(delete(SegmentKey))
    _shred_all(env.app, "entrance")
    with Session(env.app.engine) as s:
        assert not index.readable_segments(s, [r.id for r in segments(env.app, "entrance")])
    assert c.get(url).json()["hits"] == []
    r = c.get(f"{base}/thumbnail", params={"at": done["hits"][0]["at"]})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    levels = c.get(f"{base}/activity", params={"start": iso(start), "end": iso(start + 60_000_000)}).json()["levels"]
    assert levels == [None] * 60
