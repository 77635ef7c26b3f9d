"""Standing alarms for the promises: retention violation, broken audit chain, low disk
(SQLite and PostgreSQL; real janitor sweep, real tampering behind the appliance's back)."""

from __future__ import annotations

from collections import namedtuple

from testkit.appliance import stream_info, synthetic_packets
from tests.integration.test_audit_chain import drop_triggers, sql
from vms.access import audit
from vms.ops.alarms import Alarms
from vms.retention.integrity_watch import IntegrityWatch
from vms.retention.janitor import Janitor

DAY_S = 86_400
Usage = namedtuple("Usage", "total used free")


def _watch(app, **kw):
    sunk = []
    alarms = Alarms(node_id=app.config.node_id, clock=app.clock, audit_sink=lambda *a: sunk.append(a))
    return IntegrityWatch(app, alarms, **kw), alarms, sunk


def _standing(alarms) -> set[str]:
    return {a.kind for a in alarms.standing()}


def test_retention_violation_is_raised_and_cleared_by_a_sweep(appliance_factory, database_url):
    app = appliance_factory([{"id": "door", "source": "rtsp://127.0.0.1:1/x", "retain_days": 14}],
                            database_url=database_url)
    start = app.clock.now_us()
    writer = app.store.open_writer("door", stream_info(), start, now_us=start)
    for p in synthetic_packets(start, 4):
        writer.write(p)
    app.store.index_sealed(writer.close())
    watch, alarms, sunk = _watch(app)
    watch.check()
    assert _standing(alarms) == set()
    app.clock.advance(15 * DAY_S)  # the janitor has not run: the footage is now overdue
    watch.check()
    assert "retention_violation" in _standing(alarms)
    assert any(kind == "retention_violation" for kind, *_ in sunk), "the alarm reaches the audit sink"
    Janitor(app).sweep()
    watch.check()
    assert "retention_violation" not in _standing(alarms)


def test_broken_audit_chain_raises_a_critical_alarm(appliance_factory, database_url):
    app = appliance_factory(database_url=database_url)
    for i in range(3):
        audit.record_system_event(app, action="test.event", obj=f"thing:{i}")
    watch, alarms, _ = _watch(app)
    assert watch.check_chain()
    drop_triggers(app)
    sql(app, "UPDATE audit_log SET outcome = 'nothing happened' WHERE seq = 2")
    assert not watch.check_chain()
    (alarm,) = [a for a in alarms.standing() if a.kind == "audit_chain_broken"]
    assert "entry 2" in alarm.message and alarm.severity == "critical"


def test_disk_below_the_floor_raises_disk_low(appliance_factory, sqlite_url):
    app = appliance_factory(database_url=sqlite_url, janitor={"min_free_bytes": 10 * 2**30, "min_free_percent": 0})
    app.store.root.mkdir(parents=True, exist_ok=True)
    free = [50 * 2**30]
    watch, alarms, _ = _watch(app, disk_usage=lambda _p: Usage(100 * 2**30, 100 * 2**30 - free[0], free[0]))
    assert watch.check_disk() and "disk_low" not in _standing(alarms)
    free[0] = 2**30
    assert not watch.check_disk() and "disk_low" in _standing(alarms)
    free[0] = 20 * 2**30
    assert watch.check_disk() and "disk_low" not in _standing(alarms)


def test_a_checkpoint_every_n_entries_besides_every_few_minutes(appliance_factory, database_url):
    from storage.format import audit_anchor as anchors

    app = appliance_factory(database_url=database_url)
    watch, _alarms, _ = _watch(app, checkpoint_entries=5)
    for i in range(4):
        audit.record_system_event(app, action="test.event", obj=f"thing:{i}")
    assert not watch.check_growth() and anchors.read(app.config.audit_anchor_path) is None  # 4 < 5: wait
    audit.record_system_event(app, action="test.event", obj="thing:4")
    assert watch.check_growth()  # the fifth entry: verified and checkpointed without waiting for the timer
    anchor = anchors.read(app.config.audit_anchor_path)
    assert anchor is not None and anchor.seq >= 5 and anchor.keyed_from == 1
    assert not watch.check_growth()  # nothing new since
