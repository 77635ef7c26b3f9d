"""Door-log retention with a moved clock, on SQLite and PostgreSQL: on day 15 the entries of day 0 are gone and
their day key is destroyed, so a copy of their rows taken before the sweep cannot be opened any more; entries a
door hold covers survive (re-sealed under a key of their own) until the hold ends; a retention above the legal
maximum is refused like a camera's; rotation re-wraps door-log keys."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.keys.doorlog_keys import DoorlogKeys, SealError
from storage.keys.keystore import rotate_master_key
from storage.sql import doorlog as q
from storage.sql.models import AuditEntry, DoorlogEntry, DoorlogKey
from testkit.doorlog import FAKE_CPR, csv_default
from vms.access.audit import SYSTEM
from vms.core.clock import Clock
from vms.core.config import ConfigError, parse_config
from vms.core.i18n import translator
from vms.doorlog import ingest
from vms.retention.janitor import Janitor

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
HOUR_US, DAY_US = 3_600_000_000, 86_400_000_000


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0 + 20 * HOUR_US)
    return appliance_factory([{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}],
                             database_url=database_url, doorlog={"inbox": "inbox"},
                             janitor={"min_free_bytes": 0, "min_free_percent": 0})


def copy_rows(app) -> list:
    with Session(app.engine) as s:
        return list(s.execute(select(DoorlogEntry.key_id, DoorlogEntry.at_us, DoorlogEntry.id_sealed)))


def readable(app, rows) -> int:
    """How many copied rows the appliance's live keys still open."""
    n = 0
    with Session(app.engine) as s:
        keys = DoorlogKeys(app.keys.keyring).by_ids(s, {r.key_id for r in rows})
    for r in rows:
        if r.key_id in keys:
            try:
                keys[r.key_id].open(r.id_sealed)
                n += 1
            except SealError:
                pass
    return n


def test_day_0_is_shredded_on_day_15_and_held_entries_survive(app, fake_clock):
    day0 = [(T0 + 9 * HOUR_US + k * 60_000_000, "main", "card1234") for k in range(5)]
    held = (T0 + 19 * HOUR_US, "side", FAKE_CPR)
    res = ingest.import_file(app, csv_default(day0 + [held]), name="day0.csv", source="inbox", actor=SYSTEM)
    assert res.added == 6
    fake_clock.set(T0 + 5 * DAY_US)
    day5 = [(T0 + 4 * DAY_US + HOUR_US, "main", "card1234")]
    ingest.import_file(app, csv_default(day5), name="day5.csv", source="inbox", actor=SYSTEM)
    with Session(app.engine) as s, s.begin():  # a hand hold on the side door around 19:00 on day 0
        q.add_hold(s, door_id="side", start_us=T0 + 18 * HOUR_US, end_us=T0 + 20 * HOUR_US, reason="incident 7",
                   now_us=fake_clock.now_us())
    before = copy_rows(app)
    day0_rows = [r for r in before if r.at_us < T0 + DAY_US]
    assert readable(app, before) == 7

    janitor = Janitor(app)
    fake_clock.set(T0 + 14 * DAY_US)  # day 14: day 0's 09:00 entries expired, the day not yet over
    assert janitor.sweep().doorlog.deleted == 0  # nothing at or before 00:00 of day 0... yet
    fake_clock.set(T0 + 14 * DAY_US + 10 * HOUR_US)
    sweep = janitor.sweep().doorlog
    assert sweep.deleted == 5 and sweep.shredded_days == []  # expired rows go; the day key lives till the day ends
    fake_clock.set(T0 + 15 * DAY_US)
    sweep = janitor.sweep().doorlog
    assert sweep.shredded_days == ["2026-01-01"] and sweep.resealed == 1 and sweep.held_kept == 1
    with Session(app.engine) as s:
        day_key = s.scalars(select(DoorlogKey).where(DoorlogKey.label == "day:2026-01-01")).one()
        assert day_key.wrapped is None and day_key.shredded_us == T0 + 15 * DAY_US
        left = list(s.scalars(select(DoorlogEntry)))
        trail = [e for e in s.scalars(select(AuditEntry)) if e.action == "doorlog.retention"]
    assert sorted(e.door_id for e in left) == ["main", "side"]  # day 5's entry and the held one
    assert readable(app, day0_rows) == 0  # the copy taken before the sweep cannot be opened
    assert trail and "shredded_days=2026-01-01" in trail[-1].detail and "3107719876" not in trail[-1].detail
    held_row = next(e for e in left if e.door_id == "side")
    with Session(app.engine) as s:
        key = DoorlogKeys(app.keys.keyring).by_ids(s, [held_row.key_id])[held_row.key_id]
    assert key.label.startswith("held:2026-01-01") and key.open(held_row.id_sealed) == b"cpr:3107719876"

    with Session(app.engine) as s, s.begin():  # the hold ends: the entry goes, and its own key with it
        for h in q.active_holds(s, fake_clock.now_us(), 0):
            h.released_us = fake_clock.now_us()
    fake_clock.set(T0 + 15 * DAY_US + HOUR_US)
    sweep = janitor.sweep().doorlog
    assert sweep.deleted == 1 and sweep.shredded_held == 1
    with Session(app.engine) as s:
        assert [e.door_id for e in s.scalars(select(DoorlogEntry))] == ["main"]
    assert readable(app, [held_row]) == 0


def test_rotation_rewraps_doorlog_keys(app, fake_clock):
    ingest.import_file(app, csv_default([(T0 + HOUR_US, "main", FAKE_CPR)]), name="a.csv", source="inbox",
                       actor=SYSTEM)
    before = copy_rows(app)
    old, new, count = rotate_master_key(app.engine, app.config.key_path)
    assert old != new and count >= 1
    app.keys.keyring.__init__(app.config.key_path)  # the running appliance reloads the key file
    with Session(app.engine) as s:
        assert {k.master_id for k in s.scalars(select(DoorlogKey))} == {new}
    assert readable(app, before) == 1


def test_retention_above_the_legal_maximum_is_refused_like_a_cameras():
    with pytest.raises(ConfigError) as exc:
        parse_config('legal_max_retain_days = 30\n[doorlog]\ninbox = "in"\nretain_days = 31\n', "vms.toml")
    assert "doorlog.retain_days" in str(exc.value) and "legal maximum of 30 days" in str(exc.value)
    ok = parse_config('[doorlog]\ninbox = "in"\nretain_days = 45\nlegal_max_override = "Police request 2026-113 '
                      'keeps the door log 45 days"\n', "vms.toml")
    assert ok.doorlog.retain_days == 45 and parse_config('[doorlog]\ninbox = "in"\n').doorlog.retain_days == 14


def test_retention_report_and_doctor_see_the_door_log(app, fake_clock):
    from vms.ops import doctor
    from vms.retention import rules

    fake_clock.set(T0 + 4 * DAY_US)
    ingest.import_file(app, csv_default([(T0 + HOUR_US, "main", FAKE_CPR), (T0 + 3 * DAY_US, "main", "card77")]),
                       name="a.csv", source="inbox", actor=SYSTEM)
    Janitor(app).sweep()
    fake_clock.set(T0 + 16 * DAY_US)  # day 0 is overdue: nobody swept
    report = rules.build_report(app.engine, app.config, fake_clock.now_us())
    assert report.doorlog.violations == 1 and report.doorlog.unshredded_days == ["2026-01-01"]
    assert report.violations == 2 and "door-log day key(s) not destroyed" in rules.render_text(report, translator("en"))
    Janitor(app).sweep()
    report = rules.build_report(app.engine, app.config, fake_clock.now_us())
    assert (report.doorlog.entries, report.doorlog.violations, report.violations) == (1, 0, 0)
    assert "no violations" in rules.render_text(report, translator("en")) and report.to_dict()["doorlog"]["retain_days"] == 14

    inbox = app.config.doorlog.inbox
    inbox.mkdir(mode=0o700, exist_ok=True)
    skip = frozenset({"cameras", "clock", "mqtt", "disk"})
    (found,) = [f for f in doctor.run(app.config_path, skip=skip) if f.check == "doorlog"]
    # the doctor reads the real clock, to which the fake clock's day 3 is long past: nobody swept it
    assert found.status == "fail" and "1 door-log entries older than 14 days and not held" in found.message
    Janitor(app, clock=Clock()).sweep()  # a sweep at the real time
    (found,) = [f for f in doctor.run(app.config_path, skip=skip) if f.check == "doorlog"]
    assert found.status == "ok", found.message
    inbox.chmod(0o707)
    (found,) = [f for f in doctor.run(app.config_path, skip=skip) if f.check == "doorlog"]
    assert found.status == "fail" and "open to others" in found.message
