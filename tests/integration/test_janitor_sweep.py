"""The janitor's sweep on real SQLite and PostgreSQL with real segment files:
age (the 40-simulated-days test), holds, shredding, removed and offline cameras,
quota, disk watermark, deletion records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.keys.keyring import KeyShredded
from storage.sql import index
from storage.sql import retention_queries as rq
from storage.sql.models import DayKey, DeletionRecord, Segment
from storage.store import utc_day
from testkit.appliance import stream_info, synthetic_packets
from vms.appliance import Appliance
from vms.retention import state
from vms.retention.janitor import Janitor
from vms.retention.rules import DAY_US

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR_US = 3_600_000_000
S_US = 1_000_000


def record(app, camera: str, start_us: int, seconds: float = 1.0, size: int = 200) -> int:
    w = app.store.open_writer(camera, stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, seconds, size=size, seed=1):
        w.write(p)
    return app.store.index_sealed(w.close())


def segments(app) -> dict[int, tuple[str, int, str]]:
    with Session(app.engine) as s:
        return {r.id: (r.camera_id, r.start_us, r.path) for r in s.scalars(select(Segment))}


def files(app) -> set[str]:
    root = app.store.root
    return {p.relative_to(root).as_posix() for p in root.rglob("*.vseg")}


class Alarms(list):
    def __call__(self, kind: str, message: str) -> None:
        self.append((kind, message))

    def kinds(self) -> list[str]:
        return [k for k, _ in self]


CAMS = [
    {"id": "lib14", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14},
    {"id": "lib30", "source": "rtsp://127.0.0.1:1/b", "retain_days": 30},
]


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory(CAMS, database_url=database_url, janitor={"min_free_bytes": 0, "min_free_percent": 0})


def reopen_without(app, camera_id: str, clock) -> Appliance:
    """Rewrite the config without one camera and open the appliance again (as a restart would)."""
    import tomllib

    import tomli_w

    doc = tomllib.loads(app.config_path.read_text())
    doc["cameras"] = [c for c in doc["cameras"] if c["id"] != camera_id]
    app.config_path.write_text(tomli_w.dumps(doc))
    app.close()
    return Appliance.open(app.config_path, clock=clock)


def set_janitor(app, **settings) -> None:
    """Change janitor settings of an open appliance (the config itself is immutable)."""
    app.config = app.config.model_copy(update={"janitor": app.config.janitor.model_copy(update=settings)})


# ---------------------------------------------------------------- 40 simulated days


def test_forty_days_each_segment_disappears_at_its_exact_moment(app, fake_clock):
    """Two cameras (14 and 30 days) record six segments a day for 40 days; the 30-day
    camera is offline on days 8-19 and from day 28 on (its footage expires while it
    records nothing), the 14-day camera is removed from the config on day 30.  The janitor sweeps one microsecond before and exactly at every expiry:
    each segment is present before, gone at its moment, and its file with it; each
    camera-day's key is shredded at the sweep that deletes that day's last segment."""
    offsets = [0, 5 * S_US, 4 * HOUR_US + 17 * S_US, 9 * HOUR_US, 15 * HOUR_US + 123_456, 23 * HOUR_US + 59 * 60 * S_US]
    plan = []  # (start_us, camera)
    for day in range(40):
        for off in offsets:
            plan.append((T0 + day * DAY_US + off, "lib14"))
            if not (8 <= day < 20 or day >= 28):  # offline twice, the second time to the end
                plan.append((T0 + day * DAY_US + off + 30 * S_US, "lib30"))
    retain = {"lib14": 14, "lib30": 30}
    removed_at = T0 + 30 * DAY_US
    # events: write a segment when its second is over; sweep just before and at every expiry
    events = [(start + S_US, 0, "write", (start, cam)) for start, cam in plan]
    for start, cam in plan:
        expiry = start + retain[cam] * DAY_US
        if expiry <= T0 + 40 * DAY_US:
            events += [(expiry - 1, 1, "sweep", None), (expiry, 1, "sweep", None)]
    events.append((removed_at, 0, "remove", None))
    events.sort(key=lambda e: (e[0], e[1]))
    ids: dict[int, tuple[str, int]] = {}
    janitor = Janitor(app)
    sweeps, last_sweep = 0, None
    for at, _order, what, arg in events:
        fake_clock.set(at)
        if what == "write":
            start, cam = arg
            if cam == "lib14" and at > removed_at:
                continue  # removed cameras record nothing more
            ids[record(app, cam, start)] = (cam, start)
            continue
        if what == "remove":
            app = reopen_without(app, "lib14", fake_clock)
            janitor = Janitor(app)
            continue
        if last_sweep == at:
            continue
        janitor.sweep()
        sweeps, last_sweep = sweeps + 1, at
        present = segments(app)
        on_disk = files(app)
        for seg_id, (cam, start) in ids.items():
            expired = start + retain[cam] * DAY_US <= at
            assert (seg_id not in present) == expired, (cam, start, at)
        assert on_disk == {p for _c, _s, p in present.values()}
        with Session(app.engine) as s:
            for k in s.scalars(select(DayKey)):
                live = any(c == k.camera_id and utc_day(st) == k.day for c, st, _p in present.values())
                assert (k.wrapped is None) == (not live), (k.camera_id, k.day, at)
    assert sweeps > 300
    # the removed camera's footage went on time although it was no longer configured
    assert not [1 for cam, _st, _p in segments(app).values() if cam == "lib14"
                and _st + 14 * DAY_US <= fake_clock.now_us()]
    with Session(app.engine) as s:
        assert [(c.camera_id, c.removed_us) for c in rq.camera_retention(s)] == [
            ("lib14", removed_at), ("lib30", None)]
    app.close()


# ---------------------------------------------------------------- holds


def test_held_segment_survives_expiry_and_the_day_shred_then_goes_when_released(app, fake_clock):
    held = record(app, "lib14", T0 + HOUR_US)
    other = record(app, "lib14", T0 + 2 * HOUR_US)
    with Session(app.engine) as s, s.begin():
        hold_id = index.add_hold(s, camera_id="lib14", start_us=T0 + HOUR_US, end_us=T0 + HOUR_US + S_US // 2,
                                 reason="incident 7", now_us=T0)
        before = list(app.store.reader(s, index.segment_by_id(s, held)).packets())
    fake_clock.set(T0 + 15 * DAY_US)
    res = Janitor(app).sweep()
    assert set(segments(app)) == {held}
    assert res.deleted == {"age": 1} and res.held_kept == 1
    assert res.shredded == [("lib14", "2026-01-01")]
    with Session(app.engine) as s:
        assert index.day_key(s, "lib14", "2026-01-01").wrapped is None
        assert list(app.store.reader(s, index.segment_by_id(s, held)).packets()) == before
        assert rq.has_segment_key(s, held)
    assert other not in segments(app)
    with Session(app.engine) as s, s.begin():
        index.release_hold(s, hold_id, at_us=fake_clock.now_us())
    fake_clock.advance(30)
    res = Janitor(app).sweep()
    assert segments(app) == {} and files(app) == set()
    assert res.deleted == {"age": 1}
    with Session(app.engine) as s:
        assert not rq.has_segment_key(s, held)


def test_a_shredded_copy_is_unreadable(app, fake_clock, tmp_path):
    seg = record(app, "lib14", T0 + HOUR_US)
    with Session(app.engine) as s:
        path = app.store.abspath(index.segment_by_id(s, seg).path)
    copy = tmp_path / "copy.vseg"
    copy.write_bytes(path.read_bytes())
    fake_clock.set(T0 + 14 * DAY_US + HOUR_US)
    Janitor(app).sweep()
    from storage.format.segment_reader import SegmentReader

    with Session(app.engine) as s, pytest.raises(KeyShredded):
        SegmentReader(copy, app.keys.key_for_segment(s, None)).summary()


def test_no_shred_while_the_day_is_recent_or_an_open_file_waits(app, fake_clock):
    """Quota evicts today's footage: today's key must survive (the recorder writes on
    under it); a day with a .vseg.open file awaiting recovery keeps its key too."""
    seg = record(app, "lib30", T0 + HOUR_US)
    w = app.store.open_writer("lib30", stream_info(), T0 + 2 * HOUR_US, now_us=T0)
    for p in synthetic_packets(T0 + 2 * HOUR_US, 2.5, size=200, seed=1):
        w.write(p)
    w.abandon()  # a killed recorder's open file
    fake_clock.set(T0 + 3 * HOUR_US)
    with Session(app.engine) as s, s.begin():
        ref = index.segment_by_id(s, seg)
        from storage.sql.index import mark_deleting

        mark_deleting(s, [ref.id])
    res = Janitor(app).sweep()  # finishes the 'deleting' row: day still current
    assert res.deleted == {"resumed": 1} and res.shredded == []
    fake_clock.set(T0 + 3 * DAY_US)
    res = Janitor(app).sweep()
    assert res.shredded == []  # the open file still needs the key
    assert app.store.recover("lib30")  # and the recorder can still recover it
    fake_clock.set(T0 + 31 * DAY_US)
    res = Janitor(app).sweep()
    assert res.deleted == {"age": 1} and res.shredded == [("lib30", "2026-01-01")]


# ---------------------------------------------------------------- quota and watermark


def test_quota_keeps_the_newest_bytes_and_spares_holds(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    app = appliance_factory([dict(CAMS[1], quota_bytes=12_000)], database_url=database_url,
                            janitor={"min_free_bytes": 0, "min_free_percent": 0})
    ids = [record(app, "lib30", T0 + i * 60 * S_US) for i in range(6)]
    size = os.path.getsize(app.store.abspath(segments(app)[ids[0]][2]))
    assert 3 * size < 12_000 < 4 * size  # the quota holds three segments
    with Session(app.engine) as s, s.begin():
        index.add_hold(s, camera_id="lib30", start_us=T0, end_us=T0 + S_US, reason="incident 9", now_us=T0)
    res = Janitor(app).sweep()
    assert res.deleted == {"quota": 3}
    assert set(segments(app)) == {ids[0], ids[4], ids[5]}  # held first one kept; then the newest
    with Session(app.engine) as s:
        recs = [(r.camera_id, r.segments, r.size_bytes, r.reason) for r in s.scalars(select(DeletionRecord))]
    assert recs == [("lib30", 3, 3 * size, "quota")]


class FakeDisk:
    """A disk of ``capacity`` bytes whose used space is the real size of the files
    under the storage root: deleting a file really frees space on it."""

    def __init__(self, capacity: int):
        self.capacity = capacity

    def __call__(self, root: Path) -> tuple[int, int]:
        used = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
        return self.capacity, max(0, self.capacity - used)


def test_watermark_evicts_oldest_unheld_across_cameras(app, fake_clock):
    a = [record(app, "lib14", T0 + i * 120 * S_US) for i in range(4)]
    b = [record(app, "lib30", T0 + 60 * S_US + i * 120 * S_US) for i in range(4)]
    size = os.path.getsize(app.store.abspath(segments(app)[a[0]][2]))
    with Session(app.engine) as s, s.begin():
        index.add_hold(s, camera_id="lib14", start_us=T0, end_us=T0 + S_US, reason="incident 1", now_us=T0)
    disk = FakeDisk(capacity=8 * size + 3 * size)  # 3 segments free; floor needs 6 free
    alarms = Alarms()
    set_janitor(app, min_free_bytes=6 * size)
    res = Janitor(app, disk_usage=disk, on_alarm=alarms).sweep()
    # oldest first across cameras, the held a[0] skipped: b[0], a[1], b[1]
    assert set(segments(app)) == {a[0], a[2], a[3], b[2], b[3]}
    assert res.deleted == {"space": 3} and alarms == []
    # holds alone exceed the space: everything unheld goes, an alarm is raised once
    disk.capacity = 5 * size
    res = Janitor(app, disk_usage=disk, on_alarm=alarms).sweep()
    assert set(segments(app)) == {a[0]}
    assert alarms.kinds() == ["space"] and "holds exceed the space" in alarms[0][1]


def test_request_space_wakes_an_immediate_sweep(app, fake_clock):
    """The recorder's disk-full callback: the running janitor sweeps at once, not at
    the next interval (60 s here)."""
    import time

    set_janitor(app, sweep_interval_s=60, min_free_bytes=1)
    a = [record(app, "lib14", T0 + i * 60 * S_US) for i in range(3)]
    disk = FakeDisk(capacity=10**9)
    janitor = Janitor(app, disk_usage=disk)
    janitor.start()
    try:
        time.sleep(1.0)  # first sweep done (nothing to do)
        size = os.path.getsize(app.store.abspath(segments(app)[a[0]][2]))
        disk.capacity = 3 * size  # the disk is "full"
        janitor.request_space("lib14")
        deadline = time.monotonic() + 10
        while len(segments(app)) == 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert a[0] not in segments(app)
    finally:
        janitor.stop()


# ---------------------------------------------------------------- records


def test_deletion_records_account_without_personal_data(app, fake_clock):
    for i in range(3):
        record(app, "lib14", T0 + i * 60 * S_US)
    record(app, "lib30", T0)
    fake_clock.set(T0 + 31 * DAY_US)
    Janitor(app).sweep()
    with Session(app.engine) as s:
        recs = list(s.scalars(select(DeletionRecord).order_by(DeletionRecord.camera_id)))
    assert [(r.camera_id, r.segments, r.reason, r.start_us) for r in recs] == [
        ("lib14", 3, "age", T0), ("lib30", 1, "age", T0)]
    assert recs[0].end_us > T0 + 120 * S_US and recs[0].swept_us == fake_clock.now_us()
    cols = set(DeletionRecord.__table__.columns.keys())
    assert cols == {"id", "swept_us", "camera_id", "start_us", "end_us", "segments", "size_bytes", "reason"}
    with Session(app.engine) as s:
        sweep = state.last_sweep(s, "test-node")
    assert sweep.at_us == fake_clock.now_us() and sweep.deleted == 4 and sweep.failed == 0
