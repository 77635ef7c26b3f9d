"""Segment store: sealed segments indexed, killed writers recovered and flagged,
timeline and expiry queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.appliance import stream_info, synthetic_packets

T0 = 1_767_225_600_000_000
MIN = 60_000_000


@pytest.fixture
def app(appliance_factory, database_url):
    return appliance_factory(
        [{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}], database_url=database_url
    )


def test_sealed_segment_is_indexed_with_its_facts(app):
    w = app.store.open_writer("cam1", stream_info(), T0, now_us=T0)
    for p in synthetic_packets(T0, 4.0):
        w.write(p)
    summary = w.close()
    seg_id = app.store.index_sealed(summary)
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, seg_id)
    assert ref.path == "cam1/2026-01-01/20260101T000000.000000Z.vseg"
    assert (ref.start_us, ref.end_us, ref.packets) == (T0, summary.end_us, 60)
    assert ref.size_bytes == app.store.abspath(ref.path).stat().st_size
    assert ref.node_id == "test-node" and ref.status == "sealed" and not ref.recovered


def test_killed_writer_is_recovered_and_marked(app):
    w = app.store.open_writer("cam1", stream_info(), T0, now_us=T0)
    packets = synthetic_packets(T0, 3.5)
    for p in packets:
        w.write(p)
    w.abandon()
    done = app.store.recover()
    assert len(done) == 1 and done[0].recovered
    with Session(app.engine) as s:
        ref = index.segment_by_path(s, "cam1/2026-01-01/20260101T000000.000000Z.vseg")
        assert ref.recovered and ref.packets == done[0].packets
        got = list(app.store.reader(s, ref).packets())
    assert got == packets[: len(got)] and packets[-1].wall_us - got[-1].wall_us <= 1_000_000
    assert app.store.recover() == []  # idempotent


def test_timeline_and_expired_queries(app):
    ids = []
    for i in range(10):
        start = T0 + i * MIN
        w = app.store.open_writer("cam1", stream_info(), start, now_us=start)
        for p in synthetic_packets(start, 0.5):
            w.write(p)
        summary = w.close()
        ids.append(app.store.index_sealed(summary))
    with Session(app.engine) as s:
        tl = index.timeline(s, "cam1", T0 + 2 * MIN + 100, T0 + 5 * MIN, max_segment_us=10 * MIN)
        # segments 2..4 start inside; segment 2 ends at +0.5 s so [2*MIN+100, ...) overlaps it
        assert [r.id for r in tl] == ids[2:5]
        expired = index.expired_segments(s, "cam1", T0 + 3 * MIN + 600_000)
        assert [r.id for r in expired] == ids[:4]
        assert index.expired_segments(s, "cam1", T0 - 1) == []
