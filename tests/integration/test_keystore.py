"""Day keys, crypto-shredding, held segment keys and master key rotation against
real SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy.orm import Session

from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyShredded, MasterKeyring, write_key_file
from storage.keys.keystore import rotate_master_key
from storage.sql import index
from testkit.appliance import stream_info, synthetic_packets

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def record(app, camera, start_us, seconds=3.0):
    w = app.store.open_writer(camera, stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, seconds):
        w.write(p)
    return app.store.index_sealed(w.close())


def read_all(app, segment_id):
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, segment_id)
        return list(app.store.reader(s, ref).packets())


@pytest.fixture
def app(appliance_factory, database_url):
    return appliance_factory(
        [{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}], database_url=database_url
    )


def test_one_day_key_per_camera_day(app):
    a = record(app, "cam1", T0 + 10_000_000)
    b = record(app, "cam1", T0 + 20_000_000)
    c = record(app, "cam1", T0 + 86_400_000_000)
    with Session(app.engine) as s:
        keys = {index.segment_by_id(s, i).key_id for i in (a, b, c)}
    assert len(keys) == 2


def test_shred_makes_a_copy_of_the_disk_unreadable(app, tmp_path):
    seg = record(app, "cam1", T0 + 10_000_000)
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, seg)
    copy = tmp_path / "stolen.vseg"
    shutil.copy(app.store.abspath(ref.path), copy)
    assert read_all(app, seg)
    with Session(app.engine) as s, s.begin():
        assert app.keys.shred(s, index.day_key(s, "cam1", "2026-01-01").id, now_us=T0)
    with Session(app.engine) as s:
        with pytest.raises(KeyShredded):
            list(SegmentReader(copy, app.keys.key_for_segment(s, None)).packets())
        with pytest.raises(KeyShredded):
            app.keys.day_key_for_write(s, "cam1", "2026-01-01", now_us=T0)


def test_held_segment_survives_the_day_shred(app):
    held = record(app, "cam1", T0 + 10_000_000)
    other = record(app, "cam1", T0 + 20_000_000)
    before = read_all(app, held)
    with Session(app.engine) as s, s.begin():
        ref = index.segment_by_id(s, held)
        app.keys.keep_segment_key(s, held, app.store.abspath(ref.path))
        app.keys.shred(s, index.day_key(s, "cam1", "2026-01-01").id, now_us=T0)
    assert read_all(app, held) == before
    with pytest.raises(KeyShredded):
        read_all(app, other)


def test_rotation_rewraps_without_touching_footage(app):
    seg = record(app, "cam1", T0 + 10_000_000)
    with Session(app.engine) as s, s.begin():
        app.keys.keep_segment_key(s, seg, app.store.abspath(index.segment_by_id(s, seg).path))
    with Session(app.engine) as s:
        path = app.store.abspath(index.segment_by_id(s, seg).path)
    before_bytes = path.read_bytes()
    before = read_all(app, seg)
    key_path = app.config.key_path
    old_key = key_path.read_bytes()
    old_id, new_id, count = rotate_master_key(app.engine, key_path)
    assert count == 2 and old_id != new_id
    assert key_path.read_bytes() != old_key and oct(key_path.stat().st_mode & 0o777) == "0o600"
    app.keys.keyring = MasterKeyring(key_path)
    assert read_all(app, seg) == before
    assert path.read_bytes() == before_bytes
    with Session(app.engine) as s, s.begin():  # and the held key is still usable once the day is shredded
        app.keys.shred(s, index.day_key(s, "cam1", "2026-01-01").id, now_us=T0)
    assert read_all(app, seg) == before


def test_interrupted_rotation_is_readable_and_finishes(app, monkeypatch):
    seg = record(app, "cam1", T0 + 10_000_000)
    before = read_all(app, seg)
    key_path = app.config.key_path
    import storage.keys.keystore as ks

    def crash(*_a, **_k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(ks.os, "replace", crash)
    with pytest.raises(RuntimeError):
        rotate_master_key(app.engine, key_path)  # rows re-wrapped and committed, file not yet renamed
    monkeypatch.undo()
    app.keys.keyring = MasterKeyring(key_path)  # loads KEY and KEY.new
    assert read_all(app, seg) == before
    _, _, count = rotate_master_key(app.engine, key_path)
    assert count == 0 and not key_path.with_name("master.key.new").exists()
    app.keys.keyring = MasterKeyring(key_path)
    assert read_all(app, seg) == before


def test_wrong_master_key_is_a_clear_error(app, tmp_path):
    seg = record(app, "cam1", T0 + 10_000_000)
    other = tmp_path / "other.key"
    write_key_file(other)
    app.keys.keyring = MasterKeyring(other)
    with pytest.raises(Exception, match="not in .*other.key"):
        read_all(app, seg)
