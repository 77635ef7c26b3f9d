"""/metrics text built from a real index (SQLite and PostgreSQL), parsed back and checked;
/healthz and /readyz answers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session

from storage.sql import index, retention_queries
from storage.sql.db import make_engine
from testkit.appliance import stream_info, synthetic_packets
from vms.core import counters
from vms.ops import metrics
from vms.ops.alarms import Alarms
from vms.retention import state

CAMERAS = [
    {"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14},
    {"id": "hall", "source": "rtsp://127.0.0.1:1/h", "retain_days": 30},
]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text: str) -> dict[str, dict]:
    """A strict reader of the text format: HELP and TYPE before a family's samples,
    each family once, no series twice.  Returns {name: {"type", "help", "samples": {labels: value}}}."""
    assert text.endswith("\n")
    families: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"family {name} appears twice"
            families[name] = {"help": help_text, "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and kind in ("counter", "gauge", "untyped"), line
            families[name]["type"] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, _, inner, value = m.groups()
            assert name == current and families[name]["type"], f"sample before HELP/TYPE: {line!r}"
            labels = ()
            if inner:
                pairs = LABEL.findall(inner)
                assert "".join(f'{k}="{v}"{sep}' for k, v, sep in pairs) == inner, f"bad labels: {inner!r}"
                labels = tuple(sorted((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                                      for k, v, _ in pairs))
            assert labels not in families[name]["samples"], f"series twice: {line!r}"
            families[name]["samples"][labels] = float(value)
    return families


def value(families, name, **labels):
    return families[name]["samples"][tuple(sorted(labels.items()))]


def _segment(app, camera_id, start_us, seconds):
    w = app.store.open_writer(camera_id, stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, seconds, size=500, seed=1):
        w.write(p)
    summary = w.close()
    app.store.index_sealed(summary)
    return summary


@pytest.fixture
def recorded(appliance_factory, database_url, fake_clock):
    app = appliance_factory(CAMERAS, database_url=database_url)
    now = fake_clock.now_us()
    segs = [_segment(app, "entrance", now - 30_000_000, 10), _segment(app, "entrance", now - 20_000_000, 10),
            _segment(app, "hall", now - 300_000_000, 10)]
    with Session(app.engine) as s, s.begin():
        index.save_camera_state(s, "entrance", node_id="test-node", now_us=now - 1_000_000, online=True,
                                last_packet_us=now - 2_000_000, packets=4500, bytes_received=123_456_789,
                                fps=15.0, bitrate_bps=4_000_000.0, reconnects=3)
        index.save_camera_state(s, "hall", node_id="test-node", now_us=now - 60_000_000, online=False,
                                last_packet_us=now - 120_000_000, reconnects=11, gap_since_us=now - 119_000_000)
        # as vms.retention.janitor writes it: one typed record per node
        state.record(s, state.LastSweep("test-node", now - 5_000_000, deleted=7, failed=2, shredded=1,
                                        duration_ms=42.5))
        state.record(s, state.LastSweep("other-node", 1, deleted=99, failed=0, shredded=0, duration_ms=1.0))
        retention_queries.add_deletion_records(s, [
            retention_queries.DeletionRow(now - 600_000_000, "entrance", 0, 10, 3, 3000, "age"),
            retention_queries.DeletionRow(now - 300_000_000, "entrance", 10, 20, 2, 2000, "age"),
            retention_queries.DeletionRow(now - 200_000_000, "hall", 0, 10, 1, 999, "space"),
            retention_queries.DeletionRow(now - 7_200_000_000, "hall", 0, 10, 50, 50_000, "age"),  # too old
        ])
    return app, segs


def test_metrics_from_the_index(recorded, fake_clock):
    app, segs = recorded
    failures_before = counters.SIGNIN_FAILURES.value()
    done_before = counters.EXPORT_JOBS.value(outcome="done")
    counters.SIGNIN_FAILURES.inc()
    counters.SIGNIN_FAILURES.inc()
    counters.EXPORT_JOBS.inc(outcome="done")
    alarms = Alarms(node_id="test-node", clock=fake_clock)
    alarms.raise_alarm("camera_offline", "hall silent", camera="hall")

    fam = parse(metrics.render(app, alarms=alarms, usage_max_age_s=0))

    e, h = {"camera": "entrance", "node": "test-node"}, {"camera": "hall", "node": "test-node"}
    assert value(fam, "vms_camera_online", **e) == 1 and value(fam, "vms_camera_online", **h) == 0
    assert value(fam, "vms_camera_fps", **e) == 15.0
    assert value(fam, "vms_camera_bitrate_bits_per_second", **e) == 4_000_000
    assert value(fam, "vms_camera_reconnects_total", **h) == 11
    assert fam["vms_camera_reconnects_total"]["type"] == "counter"
    assert value(fam, "vms_camera_received_bytes_total", **e) == 123_456_789
    assert value(fam, "vms_camera_received_packets_total", **e) == 4500
    assert value(fam, "vms_camera_last_packet_age_seconds", **e) == 2.0
    assert value(fam, "vms_camera_last_packet_age_seconds", **h) == 120.0
    assert value(fam, "vms_camera_state_age_seconds", **h) == 60.0
    assert value(fam, "vms_camera_gap_open", **h) == 1 and value(fam, "vms_camera_gap_open", **e) == 0
    now = fake_clock.now_us()
    assert value(fam, "vms_camera_segment_lag_seconds", **e) == (now - segs[1].end_us) / 1e6
    assert value(fam, "vms_camera_segment_lag_seconds", **h) == (now - segs[2].end_us) / 1e6

    assert value(fam, "vms_storage_camera_bytes", **e) == segs[0].size_bytes + segs[1].size_bytes
    assert value(fam, "vms_storage_camera_segments", **e) == 2
    assert value(fam, "vms_storage_camera_bytes", **h) == segs[2].size_bytes
    free = value(fam, "vms_storage_free_bytes", node="test-node")
    size = value(fam, "vms_storage_size_bytes", node="test-node")
    assert 0 < free <= size
    assert value(fam, "vms_storage_free_floor_bytes", node="test-node") == max(1 << 30, int(size * 5 / 100))

    assert value(fam, "vms_janitor_last_sweep_timestamp_seconds", node="test-node") == (now - 5_000_000) / 1e6
    assert value(fam, "vms_janitor_last_sweep_age_seconds", node="test-node") == 5.0
    assert value(fam, "vms_janitor_last_sweep_duration_seconds", node="test-node") == pytest.approx(0.0425)
    assert value(fam, "vms_janitor_last_sweep_deleted_segments", node="test-node") == 7
    assert value(fam, "vms_janitor_last_sweep_shredded_keys", node="test-node") == 1
    assert value(fam, "vms_janitor_last_sweep_failed_segments", node="test-node") == 2
    assert all(labels != (("node", "other-node"),) for labels in fam["vms_janitor_last_sweep_deleted_segments"]["samples"])
    assert value(fam, "vms_deleted_segments_last_hour", camera="entrance", reason="age") == 5
    assert value(fam, "vms_deleted_bytes_last_hour", camera="entrance", reason="age") == 5000
    assert value(fam, "vms_deleted_segments_last_hour", camera="hall", reason="space") == 1
    assert (("camera", "hall"), ("reason", "age")) not in fam["vms_deleted_segments_last_hour"]["samples"]
    assert value(fam, "vms_deletion_records_truncated") == 0

    assert value(fam, "vms_signin_failures_total") == failures_before + 2
    assert value(fam, "vms_export_jobs_total", outcome="done") == done_before + 1
    assert value(fam, "vms_alarm_active", node="test-node", kind="camera_offline", camera="hall",
                 severity="warning") == 1
    assert value(fam, "vms_scrape_error", source="database") == 0
    assert value(fam, "vms_info", node="test-node", version=metrics.version()) == 1


def test_usage_is_cached_then_refreshed(recorded, fake_clock):
    app, segs = recorded
    e = {"camera": "entrance", "node": "test-node"}
    first = value(parse(metrics.render(app, usage_max_age_s=0)), "vms_storage_camera_segments", **e)
    _segment(app, "entrance", fake_clock.now_us() - 10_000_000, 5)
    cached = value(parse(metrics.render(app, usage_max_age_s=3600)), "vms_storage_camera_segments", **e)
    fresh = value(parse(metrics.render(app, usage_max_age_s=0)), "vms_storage_camera_segments", **e)
    assert (first, cached, fresh) == (2, 2, 3)


def test_bad_janitor_state_and_a_dead_database_still_render(appliance_factory, fake_clock):
    app = appliance_factory(CAMERAS)
    fam = parse(metrics.render(app))
    assert value(fam, "vms_scrape_error", source="disk") == 1  # no storage root yet: said, not invented
    assert "vms_storage_free_bytes" not in fam
    app.config.storage_path.mkdir(mode=0o700)
    with Session(app.engine) as s, s.begin():
        retention_queries.put_state(s, "janitor.last_sweep.test-node", {"at_us": "yesterday", "duration_s": None},
                                    now_us=fake_clock.now_us())
    fam = parse(metrics.render(app))
    assert "vms_janitor_last_sweep_timestamp_seconds" not in fam  # not a number: left out, not guessed
    assert value(fam, "vms_scrape_error", source="janitor_state") == 0

    good = app.engine
    app.engine = make_engine("postgresql://postgres@127.0.0.1:9/nothing")  # nobody listens on port 9
    try:
        fam = parse(metrics.render(app))
    finally:
        app.engine.dispose()
        app.engine = good
    assert value(fam, "vms_scrape_error", source="database") == 1
    assert "vms_storage_free_bytes" in fam and "vms_camera_online" not in fam


def test_label_values_are_escaped():
    registry = counters.Registry()
    c = registry.counter("vms_test_total", "test", ("what",))
    c.inc(what='a "quoted"\nline \\ end')
    out = metrics._Out()
    out.metric(c)
    fam = parse(out.text())
    assert value(fam, "vms_test_total", what='a "quoted"\nline \\ end') == 1
    with pytest.raises(ValueError):
        c.inc(-1, what="x")
    with pytest.raises(ValueError):
        c.inc(other="x")
    with pytest.raises(ValueError):
        registry.gauge("vms_test_total", "clash")
    assert registry.counter("vms_test_total", "again", ("what",)) is c


def test_health_and_readiness(appliance_factory, database_url):
    app = appliance_factory(CAMERAS, database_url=database_url)
    assert metrics.health(app) == {"status": "ok", "node_id": "test-node", "version": metrics.version()}
    ok, body = metrics.ready(app)
    assert ok and body["ready"] is True and set(body["checks"]) == {"database", "key_file", "storage_root"}

    app.config.storage_path.mkdir(parents=True, exist_ok=True)
    key = app.config.key_path
    key.chmod(0o644)
    ok, body = metrics.ready(app)
    assert not ok and body["checks"]["key_file"] == {"ok": False,
                                                     "detail": "master key file is accessible by group or others"}
    key.chmod(0o600)
    key.rename(key.with_suffix(".away"))
    ok, body = metrics.ready(app)
    assert not ok and body["checks"]["key_file"]["detail"] == "master key file missing"
    key.with_suffix(".away").rename(key)

    root = app.config.storage_path
    root.rename(root.with_name("moved"))
    root.write_bytes(b"")  # a file where the directory should be
    ok, body = metrics.ready(app)
    assert not ok and body["checks"]["storage_root"]["detail"] == "storage root is not a directory"
    root.unlink()
    assert metrics.ready(app)[1]["checks"]["storage_root"]["detail"] == "not created yet; can be created"
    root.with_name("moved").rename(root)

    good = app.engine
    app.engine = make_engine("postgresql://postgres:hunter2@127.0.0.1:9/nothing")
    try:
        ok, body = metrics.ready(app)
    finally:
        app.engine.dispose()
        app.engine = good
    assert not ok and body["checks"]["database"] == {"ok": False, "detail": "unreachable"}
    assert "hunter2" not in str(body) and str(app.config.data_dir) not in str(body)
    assert metrics.ready(app)[0]
