"""The running janitor with a real watchdog observer on real files: strays and
hostile names are quarantined, sealed files the index lacks are indexed,
vanished or changed segments raise tamper alarms."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.appliance import stream_info, synthetic_packets
from tests.integration.test_janitor_sweep import CAMS, S_US, T0, Alarms, record, segments
from vms.retention import layout
from vms.retention.janitor import INDEX_GRACE_S, Janitor


def wait_for(cond, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory(CAMS, database_url=database_url,
                             janitor={"min_free_bytes": 0, "min_free_percent": 0, "sweep_interval_s": 60})


@pytest.fixture
def running(app, fake_clock):
    alarms = Alarms()
    janitor = Janitor(app, on_alarm=alarms)
    janitor.start()
    time.sleep(0.5)  # first sweep and reconciliation done
    yield janitor, alarms
    janitor.stop()


def quarantined(app) -> list[str]:
    q = app.store.root / layout.QUARANTINE
    return sorted(os.listdir(q)) if q.is_dir() else []


def test_strays_and_hostile_names_are_quarantined_not_deleted(app, running):
    _janitor, alarms = running
    root = app.store.root
    seg = record(app, "lib14", T0)
    day = root / "lib14" / "2026-01-01"
    (root / "notes.txt").write_text("hello")
    (root / "evil\nALARM forged line").write_text("x")
    os.close(os.open(os.path.join(os.fsencode(root), b"bad-\xff\xfe-name"), os.O_CREAT | os.O_WRONLY, 0o600))
    (day / "20260101T010000.000000Z.vseg").symlink_to("/etc/passwd")
    (day / "20260101T020000.000000Z.vseg").mkdir()
    (root / "Upper Case Dir").mkdir()
    assert wait_for(lambda: len(quarantined(app)) == 6 and len(alarms) == 6), (quarantined(app), alarms)
    assert all(k == "quarantine" for k in alarms.kinds()) and len(alarms) == 6
    for _kind, message in alarms:
        assert "\n" not in message and "\udcff" not in message  # hostile names are escaped
    assert any("\\n" in m for _k, m in alarms)
    assert os.path.exists("/etc/passwd") and seg in segments(app)  # nothing followed, nothing else touched
    assert sorted(p.name for p in day.iterdir()) == [segments(app)[seg][2].rsplit("/", 1)[1]]
    assert all(name[:16].endswith("Z") and "\n" not in name for name in quarantined(app))


def test_a_sealed_file_the_index_lacks_is_indexed_after_the_grace(app, running, fake_clock):
    _janitor, alarms = running
    w = app.store.open_writer("lib30", stream_info(), T0 + 5 * S_US, now_us=T0)
    for p in synthetic_packets(T0 + 5 * S_US, 1.0, size=200, seed=2):
        w.write(p)
    summary = w.close()  # the recorder was killed before it indexed the file
    time.sleep(0.5)  # a negative check: give the watch time to (wrongly) index it
    assert segments(app) == {}  # not before the grace: the recorder indexes its own files
    fake_clock.advance(INDEX_GRACE_S + 1)
    assert wait_for(lambda: len(segments(app)) == 1)
    (cam, start, path) = next(iter(segments(app).values()))
    assert (cam, start, path) == ("lib30", T0 + 5 * S_US, app.store.relpath(summary.path))
    assert alarms == []


def test_a_copied_in_segment_with_the_wrong_name_is_quarantined(app, running, fake_clock):
    _janitor, alarms = running
    seg = record(app, "lib14", T0)
    src = app.store.abspath(segments(app)[seg][2])
    shutil.copy(src, src.with_name("20260101T120000.000000Z.vseg"))  # a valid file under another name
    time.sleep(0.3)
    fake_clock.advance(INDEX_GRACE_S + 1)
    assert wait_for(lambda: len(quarantined(app)) == 1 and alarms)  # the alarm follows the move
    assert "does not match its header" in alarms[-1][1]
    assert list(segments(app)) == [seg]


def test_vanished_or_changed_segments_raise_tamper_alarms(app, running):
    _janitor, alarms = running
    a = record(app, "lib14", T0)
    b = record(app, "lib14", T0 + 60 * S_US)
    c = record(app, "lib30", T0)
    app.store.abspath(segments(app)[a][2]).unlink()
    with open(app.store.abspath(segments(app)[b][2]), "ab") as fh:
        fh.write(b"appended")
    assert wait_for(lambda: len(alarms) >= 2)
    time.sleep(0.3)
    assert alarms.kinds() == ["tamper", "tamper"]
    assert "vanished" in alarms[0][1] and "changed" in alarms[1][1]
    # a whole day directory moved away: every indexed segment in it is reported
    shutil.move(str(app.store.root / "lib30" / "2026-01-01"), str(app.store.root.parent / "elsewhere"))
    assert wait_for(lambda: len(alarms) == 3)
    assert segments(app)[c][2] in alarms[2][1]
    with Session(app.engine) as s:  # the janitor reports; repairing is `vms check --repair`
        assert index.segment_by_id(s, a) is not None
    # bytes changed in place, same size: found by authenticating the file
    d = record(app, "lib14", T0 + 120 * S_US)
    with open(app.store.abspath(segments(app)[d][2]), "r+b") as fh:
        fh.seek(-40, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-40, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0x01]))
    assert wait_for(lambda: len(alarms) == 4)
    assert alarms[3][0] == "tamper" and "does not authenticate" in alarms[3][1] and "chunk" in alarms[3][1]


def test_reconciliation_at_start_finds_what_happened_while_stopped(app, fake_clock):
    a = record(app, "lib14", T0)
    record(app, "lib14", T0 + 60 * S_US)
    app.store.abspath(segments(app)[a][2]).unlink()
    (app.store.root / "lib14" / "stray.bin").write_bytes(b"x")
    alarms = Alarms()
    janitor = Janitor(app, on_alarm=alarms)
    janitor.start()
    try:
        assert wait_for(lambda: len(alarms) == 2)
    finally:
        janitor.stop()
    assert sorted(alarms.kinds()) == ["quarantine", "tamper"]
    assert len(quarantined(app)) == 1


def _abandoned_open_segment(app, start_us: int, *, idle_s: float):
    """An open segment with sealed chunks whose recorder went away ``idle_s`` seconds ago."""
    w = app.store.open_writer("lib14", stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, 3.0, size=200, seed=2):
        w.write(p)
    w.abandon()
    then = time.time() - idle_s
    os.utime(w.open_path, (then, then))
    return w.open_path


def test_an_abandoned_open_segment_is_recovered_indexed_and_then_expires(app, fake_clock):
    stale = _abandoned_open_segment(app, T0, idle_s=3600)
    fresh = _abandoned_open_segment(app, T0 + 60 * S_US, idle_s=5)  # as a live recorder's file looks
    janitor = Janitor(app)
    janitor.reconcile()
    janitor.sweep()
    assert not stale.exists() and fresh.exists()  # only the one nobody writes to any more
    (seg,) = segments(app).values()
    assert seg[1] == T0 and seg[2].startswith("lib14/")
    with Session(app.engine) as s:
        ref = index.segment_by_path(s, seg[2])
        assert ref.recovered and len(list(app.store.reader(s, ref).packets())) > 0
    # from now on it is footage like any other: gone when its camera's 14 days are over
    fake_clock.set(T0 + 14 * 86_400 * S_US + 10 * S_US)
    janitor.sweep()
    assert segments(app) == {}


def test_the_running_janitor_finds_an_open_file_that_goes_stale(app, running):
    janitor, _alarms = running
    path = _abandoned_open_segment(app, T0, idle_s=0)
    janitor.stale_open_s = 1.0
    time.sleep(1.5)  # the thing tested: the open file must go stale (1 s without writes) by the wall clock
    janitor.sweep()
    assert not path.exists() and len(segments(app)) == 1
