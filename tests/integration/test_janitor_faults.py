"""Faults during a sweep: a process killed mid-deletion (real SIGKILL), a file that
cannot be removed, a directory where a segment should be, damaged files, the
database locked or unreachable.  SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql.db import DatabaseError, make_engine
from storage.sql.models import DayKey, DeletionRecord, Segment
from tests.integration.test_janitor_sweep import (
    CAMS,
    DAY_US,
    HOUR_US,
    S_US,
    T0,
    Alarms,
    files,
    record,
    segments,
)
from vms.retention import check, layout
from vms.retention.janitor import Janitor

ROOT = Path(__file__).parents[2]


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory(CAMS, database_url=database_url, janitor={"min_free_bytes": 0, "min_free_percent": 0})


KILLER = """
import os, signal, sys
from vms.appliance import Appliance
from vms.core.clock import FakeClock
from vms.retention.janitor import Janitor
config, now_us, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
app = Appliance.open(config, clock=FakeClock(now_us))
removed = []
def remove_then_die(path):
    if len(removed) == after:
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies between two unlinks
    os.unlink(path)
    removed.append(path)
Janitor(app, remove_file=remove_then_die, batch=50).sweep()
"""


def test_killed_mid_deletion_the_next_sweep_finishes_and_nothing_is_lost(app, fake_clock):
    expiring = [record(app, "lib14", T0 + i * 60 * S_US) for i in range(8)]
    keep = [record(app, "lib14", T0 + DAY_US + i * 60 * S_US) for i in range(3)]
    now = T0 + 14 * DAY_US + HOUR_US  # the first day has expired, the second not
    proc = subprocess.run([sys.executable, "-c", KILLER, str(app.config_path), str(now), "3"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with Session(app.engine) as s:
        status = {r.id: r.status for r in s.scalars(select(Segment))}
        recs = list(s.scalars(select(DeletionRecord)))
    assert {i for i, st in status.items() if st == "deleting"} == set(expiring)  # marked before any unlink
    assert len(files(app)) == 11 - 3  # three files were gone when the process died
    assert [(r.segments, r.reason) for r in recs] == [(8, "age")]  # recorded with the mark
    fake_clock.set(now)
    res = Janitor(app).sweep()
    assert res.deleted == {"resumed": 8}
    assert set(segments(app)) == set(keep) and files(app) == {p for _c, _s, p in segments(app).values()}
    with Session(app.engine) as s:
        assert s.scalar(select(DayKey.wrapped).where(DayKey.day == "2026-01-01")) is None  # shredded now
        assert len(list(s.scalars(select(DeletionRecord)))) == 1  # not counted twice
    assert check.check(app).problems == []


def test_a_file_that_cannot_be_removed_keeps_its_row_until_it_can(app, fake_clock):
    a, b = record(app, "lib14", T0), record(app, "lib14", T0 + 60 * S_US)
    stuck = app.store.abspath(segments(app)[a][2])

    def refuse(path: Path) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        os.unlink(path)

    alarms = Alarms()
    fake_clock.set(T0 + 15 * DAY_US)
    res = Janitor(app, remove_file=refuse, on_alarm=alarms).sweep()
    assert res.failed == 1 and res.deleted == {"age": 1} and res.shredded == []
    assert stuck.exists() and alarms.kinds() == ["deletion"] and "retried next sweep" in alarms[0][1]
    with Session(app.engine) as s:
        assert index.segment_by_id(s, a).status == "deleting" and index.segment_by_id(s, b) is None
    res = Janitor(app).sweep()
    assert res.deleted == {"resumed": 1} and res.shredded == [("lib14", "2026-01-01")]
    assert not stuck.exists() and segments(app) == {}


def test_damaged_read_only_and_misplaced_files_still_expire(app, fake_clock):
    ids = [record(app, "lib14", T0 + i * 60 * S_US) for i in range(5)]
    paths = [app.store.abspath(segments(app)[i][2]) for i in ids]
    paths[0].write_bytes(paths[0].read_bytes()[:50])  # truncated
    paths[1].write_bytes(b"")  # zero length
    paths[2].write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)  # another format (MP4)
    paths[3].chmod(0o444)  # read-only
    paths[4].unlink()
    paths[4].mkdir()  # a directory where a segment should be
    (paths[4] / "inner").write_text("x")
    fake_clock.set(T0 + 14 * DAY_US + HOUR_US)
    res = Janitor(app).sweep()
    assert res.deleted == {"age": 5} and res.failed == 0
    assert segments(app) == {} and not any(p.exists() for p in paths)
    quarantined = list((app.store.root / layout.QUARANTINE).iterdir())
    assert len(quarantined) == 1 and (quarantined[0] / "inner").read_text() == "x"  # moved, not deleted


def test_held_segment_whose_file_is_damaged_raises_tamper_and_keeps_the_day_key(app, fake_clock):
    held = record(app, "lib14", T0 + HOUR_US)
    record(app, "lib14", T0 + 2 * HOUR_US)
    app.store.abspath(segments(app)[held][2]).write_bytes(b"garbage")
    with Session(app.engine) as s, s.begin():
        index.add_hold(s, camera_id="lib14", start_us=T0, end_us=T0 + HOUR_US + S_US, reason="incident", now_us=T0)
    alarms = Alarms()
    fake_clock.set(T0 + 15 * DAY_US)
    res = Janitor(app, on_alarm=alarms).sweep()
    assert res.deleted == {"age": 1} and set(segments(app)) == {held}
    assert res.shredded == [] and alarms.kinds() == ["tamper"]


def test_sqlite_briefly_locked_the_sweep_waits(appliance_factory, sqlite_url, fake_clock):
    fake_clock.set(T0)
    app = appliance_factory(CAMS, database_url=sqlite_url, janitor={"min_free_bytes": 0, "min_free_percent": 0})
    record(app, "lib14", T0)
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    threading.Timer(1.5, blocker.rollback).start()
    fake_clock.set(T0 + 15 * DAY_US)
    t = time.monotonic()
    res = Janitor(app).sweep()
    assert time.monotonic() - t >= 1.0
    assert res.deleted == {"age": 1} and files(app) == set()
    blocker.close()


def test_database_unreachable_nothing_is_deleted(app, fake_clock):
    record(app, "lib14", T0)
    good = app.engine
    app.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    fake_clock.set(T0 + 15 * DAY_US)
    with pytest.raises(DatabaseError, match="unavailable during a sweep"):
        Janitor(app).sweep()
    assert len(files(app)) == 1
    app.engine.dispose()
    app.engine = good
    assert Janitor(app).sweep().deleted == {"age": 1}
    assert files(app) == set()
