"""Hour keys on real SQLite and PostgreSQL with a moved clock: a copy of a segment taken before it expired cannot
be decrypted one hour after its retention ends, while later footage of the same day still can; held segments stay
readable; rotation re-wraps day keys and leaves the hour keys (wrapped by them) alone; day-keyed segments written
before hour keys (format version 1) stay readable until their day key is shredded, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from storage.format.segment import SegmentWriter, inspect_header
from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyShredded, MasterKeyring
from storage.keys.keystore import rotate_master_key
from storage.sql import index
from storage.sql.models import DayKey, HourKey, Segment, SegmentKey
from storage.store import segment_relpath, utc_day
from testkit.appliance import stream_info, synthetic_packets
from vms.retention.janitor import Janitor
from vms.retention.rules import DAY_US, copy_unreadable_by_us

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR_US = 3_600_000_000
MIN_US = 60_000_000
RETAIN_DAYS = 14


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory([{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": RETAIN_DAYS}],
                             database_url=database_url, janitor={"min_free_bytes": 0, "min_free_percent": 0})


def record(app, start_us: int, seconds: float = 1.0) -> int:
    w = app.store.open_writer("cam1", stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, seconds, size=200, seed=1):
        w.write(p)
    return app.store.index_sealed(w.close())


def record_day_keyed(app, start_us: int, seconds: float = 1.0) -> int:
    """A segment as the code before hour keys wrote it: format version 1, its key derived from the day key."""
    day = utc_day(start_us)
    with Session(app.engine) as s, s.begin():
        key_id, day_key = app.keys.day_key_for_write(s, "cam1", day, now_us=start_us)
    w = SegmentWriter(app.store.abspath(segment_relpath("cam1", start_us)), day_key, camera="cam1", day=day,
                      key_id=key_id, start_us=start_us, stream=stream_info())
    for p in synthetic_packets(start_us, seconds, size=200, seed=1):
        w.write(p)
    return app.store.index_sealed(w.close())


def copy_out(app, segment_id: int, dest) -> object:
    with Session(app.engine) as s:
        path = app.store.abspath(index.segment_by_id(s, segment_id).path)
    dest.write_bytes(path.read_bytes())
    return dest


def read_copy(app, path) -> int:
    """Decrypt a copied file with whatever keys the index still has (as a thief with the database would)."""
    with Session(app.engine) as s:
        return sum(1 for _ in SegmentReader(path, app.keys.key_for_segment(s, None)).packets())


def read_indexed(app, segment_id: int) -> int:
    with Session(app.engine) as s:
        return sum(1 for _ in app.store.reader(s, index.segment_by_id(s, segment_id)).packets())


def expiry(start_us: int) -> int:
    return start_us + RETAIN_DAYS * DAY_US


def first_sweep(app, fake_clock, at_us: int) -> Janitor:
    """A janitor whose first sweep (at ``at_us``, nothing expired yet) has shredded the hour keys made ahead for
    hours of the day that recorded nothing or only held segments with their own keys, and no other."""
    with Session(app.engine) as s:
        used = {f"2026-01-01T{h:02d}" for h in s.scalars(select(HourKey.hour).join(
            Segment, (Segment.key_id == HourKey.day_key_id) & (Segment.start_us >= HourKey.start_us)
            & (Segment.start_us < HourKey.start_us + HOUR_US)).where(
            Segment.id.not_in(select(SegmentKey.segment_id))))}
        made = {f"2026-01-01T{h:02d}" for h in s.scalars(select(HourKey.hour))}
    fake_clock.set(at_us)
    janitor = Janitor(app)
    res = janitor.sweep()
    assert res.segments_deleted == 0 and res.shredded == []
    assert used and {h for _c, h in res.shredded_hours} == made - used
    return janitor


def test_a_copy_is_unreadable_one_hour_after_its_retention_while_later_footage_of_the_day_reads(
        app, fake_clock, tmp_path):
    first = record(app, T0 + 10_000_000)              # 00:00:10, the hour's first segment
    last_of_hour = record(app, T0 + 59 * MIN_US)      # 00:59:00, same hour
    later = record(app, T0 + 2 * HOUR_US)             # 02:00:00, same day, another hour
    first_copy = copy_out(app, first, tmp_path / "first.vseg")
    later_copy = copy_out(app, later, tmp_path / "later.vseg")
    assert inspect_header(first_copy).hour == 0 and inspect_header(later_copy).hour == 2
    janitor = first_sweep(app, fake_clock, expiry(T0 + 10_000_000) - 1)

    fake_clock.set(expiry(T0 + 10_000_000))           # the first segment's retention ends: it is deleted
    res = janitor.sweep()
    assert res.deleted == {"age": 1} and res.shredded_hours == [] and res.shredded == []
    assert read_copy(app, first_copy) > 0             # its hour key is still needed by 00:59:00

    fake_clock.set(expiry(T0 + 10_000_000) + HOUR_US)  # one hour after its retention ended
    res = janitor.sweep()
    assert res.deleted == {"age": 1}
    assert res.shredded_hours == [("cam1", "2026-01-01T00")] and res.shredded == []
    assert fake_clock.now_us() >= copy_unreadable_by_us(T0 + 10_000_000, RETAIN_DAYS)
    with pytest.raises(KeyShredded, match="hour key"):
        read_copy(app, first_copy)
    with pytest.raises(KeyShredded):
        read_copy(app, tmp_path.joinpath("first.vseg"))
    assert last_of_hour not in {r for r in _segment_ids(app)}
    # the later segment of the same day is in retention: it and its copy still read
    assert read_indexed(app, later) > 0 and read_copy(app, later_copy) > 0

    fake_clock.set(expiry(T0 + 2 * HOUR_US))           # and when it expires, its hour and then the day go
    res = janitor.sweep()
    assert res.shredded_hours == [("cam1", "2026-01-01T02")] and res.shredded == [("cam1", "2026-01-01")]
    with pytest.raises(KeyShredded):
        read_copy(app, later_copy)
    with Session(app.engine) as s:  # the day's hour rows went with its key (made ahead for hours never used too)
        assert s.scalars(select(HourKey)).all() == []


def test_held_segments_stay_readable_after_their_hour_and_day_are_shredded(app, fake_clock, tmp_path):
    held = record(app, T0 + 10_000_000)
    unheld = record(app, T0 + 30 * MIN_US)
    unheld_copy = copy_out(app, unheld, tmp_path / "unheld.vseg")
    before = read_indexed(app, held)
    with Session(app.engine) as s, s.begin():
        index.add_hold(s, camera_id="cam1", start_us=T0 + 10_000_000, end_us=T0 + 10_500_000,
                       reason="incident 12", now_us=T0)
    janitor = first_sweep(app, fake_clock, expiry(T0) - 1)
    fake_clock.set(expiry(T0 + 30 * MIN_US) + HOUR_US)
    res = janitor.sweep()
    assert res.deleted == {"age": 1} and res.held_kept == 1
    assert res.shredded_hours == [("cam1", "2026-01-01T00")] and res.shredded == [("cam1", "2026-01-01")]
    assert read_indexed(app, held) == before          # its own key, wrapped by the master key
    with pytest.raises(KeyShredded):
        read_copy(app, unheld_copy)


def test_playback_sees_an_hour_shred_as_the_footage_gone(app):
    """What playback asks before serving a clip kept in memory (index.readable_segments) follows hour keys."""
    a, b, c = record(app, T0 + 10_000_000), record(app, T0 + 20_000_000), record(app, T0 + HOUR_US)
    with Session(app.engine) as s, s.begin():
        app.keys.keep_segment_key(s, b, app.store.abspath(index.segment_by_id(s, b).path))
        assert index.readable_segments(s, [a, b, c]) == {a, b, c}
        assert app.keys.shred_hour(s, index.segment_by_id(s, a).key_id, 0, now_us=T0)
        assert index.readable_segments(s, [a, b, c]) == {b, c}


def test_rotation_rewraps_day_keys_and_leaves_hour_keys_readable(app, fake_clock):
    a = record(app, T0 + 10_000_000)
    b = record(app, T0 + 5 * HOUR_US)
    held = record(app, T0 + 6 * HOUR_US)
    with Session(app.engine) as s, s.begin():
        app.keys.keep_segment_key(s, held, app.store.abspath(index.segment_by_id(s, held).path))
        hours_before = {(r.day_key_id, r.hour): r.wrapped for r in s.scalars(select(HourKey))}
    before = [read_indexed(app, i) for i in (a, b, held)]
    old_id, new_id, count = rotate_master_key(app.engine, app.config.key_path)
    assert count == 2 and old_id != new_id  # one day key and one held segment key; hours are under the day key
    app.keys.keyring = MasterKeyring(app.config.key_path)
    assert [read_indexed(app, i) for i in (a, b, held)] == before
    with Session(app.engine) as s:
        assert {(r.day_key_id, r.hour): r.wrapped for r in s.scalars(select(HourKey))} == hours_before
        assert {r.master_id for r in s.scalars(select(DayKey))} == {new_id}
    # shredding still works under the new master key: a's hour goes, b's stays
    janitor = first_sweep(app, fake_clock, expiry(T0) - 1)
    fake_clock.set(expiry(T0 + 10_000_000) + HOUR_US)
    res = janitor.sweep()
    assert res.shredded_hours == [("cam1", "2026-01-01T00")]
    assert read_indexed(app, b) == before[1]
    # and new footage is written under keys wrapped by the new master key
    assert read_indexed(app, record(app, fake_clock.now_us())) > 0
    with Session(app.engine) as s:
        assert index.day_key(s, "cam1", utc_day(fake_clock.now_us())).master_id == new_id


def test_day_keyed_segments_stay_readable_and_are_shredded_with_their_day_as_before(app, fake_clock, tmp_path):
    """Footage written before hour keys (version 1, same day row) keeps its day key until the day's last segment
    expires; new segments of that day (written after the upgrade) use hour keys under the same day key."""
    old_first = record_day_keyed(app, T0 + 10_000_000)
    old_later = record_day_keyed(app, T0 + 3 * HOUR_US)
    new = record(app, T0 + 4 * HOUR_US)
    old_copy = copy_out(app, old_first, tmp_path / "old.vseg")
    assert inspect_header(old_copy).hour is None and inspect_header(old_copy).raw[:8] == b"VMSSEG\x00\x01"
    with Session(app.engine) as s:
        assert len({index.segment_by_id(s, i).key_id for i in (old_first, old_later, new)}) == 1
    assert read_indexed(app, old_first) > 0 and read_indexed(app, new) > 0
    janitor = first_sweep(app, fake_clock, expiry(T0) - 1)
    fake_clock.set(expiry(T0 + 10_000_000) + HOUR_US)
    res = janitor.sweep()
    assert res.deleted == {"age": 1} and res.shredded == [] and res.shredded_hours == []
    assert read_copy(app, old_copy) > 0               # as before: the day key lives while the day has footage
    assert read_indexed(app, old_later) > 0
    fake_clock.set(expiry(T0 + 4 * HOUR_US))
    res = janitor.sweep()
    assert res.deleted == {"age": 2} and res.shredded == [("cam1", "2026-01-01")]
    with pytest.raises(KeyShredded):
        read_copy(app, old_copy)


def test_hour_keys_are_made_ahead_so_an_index_outage_does_not_stop_recording_until_midnight(app, monkeypatch):
    record(app, T0 + 10_000_000)
    with Session(app.engine) as s:
        day = index.day_key(s, "cam1", "2026-01-01")
        assert [r.hour for r in index.hour_keys_of_day(s, day.id)] == list(range(24))

    def unreachable(*_a, **_k):
        raise OperationalError("SELECT 1", {}, Exception("index away"))

    monkeypatch.setattr(app.keys, "keys_for_write", unreachable)
    w = app.store.open_writer("cam1", stream_info(), T0 + 5 * HOUR_US, now_us=T0 + 5 * HOUR_US)
    for p in synthetic_packets(T0 + 5 * HOUR_US, 1.0, size=200, seed=1):
        w.write(p)
    summary = w.close()
    with pytest.raises(OperationalError):  # a new day needs the index
        app.store.open_writer("cam1", stream_info(), T0 + DAY_US, now_us=T0 + DAY_US)
    monkeypatch.undo()
    assert summary.hour == 5
    assert read_indexed(app, app.store.index_sealed(summary)) > 0


def test_recording_into_a_shredded_hour_is_refused(app):
    record(app, T0 + 10_000_000)
    with Session(app.engine) as s, s.begin():
        day_id = index.day_key(s, "cam1", "2026-01-01").id
        assert app.keys.shred_hour(s, day_id, 0, now_us=T0)
        assert not app.keys.shred_hour(s, day_id, 0, now_us=T0)  # already gone
    with pytest.raises(KeyShredded, match="hour key of camera cam1 for 2026-01-01 00:00 was shredded"):
        app.store.open_writer("cam1", stream_info(), T0 + 20_000_000, now_us=T0 + 20_000_000)
    assert read_indexed(app, record(app, T0 + HOUR_US)) > 0  # the next hour is unaffected


def _segment_ids(app) -> set[int]:
    with Session(app.engine) as s:
        return set(s.scalars(select(Segment.id)))
