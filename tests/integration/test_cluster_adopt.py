"""A recording node gone for good: another node adopts it, and its footage expires on time again.

Two nodes on one database (SQLite and PostgreSQL) and one real S3 bucket (SeaweedFS): node-a records
one camera (retain 2 days) and archives part of it; node-a is lost with its disk.  Without adoption the
surviving node's janitor never touches node-a's footage (a retention violation); after
``vms cluster adopt node-a`` it expires it under the camera's own retention, shreds its keys, deletes its
archived objects and keeps what a legal hold covers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.keys.keyring import write_key_file
from storage.sql import archive_queries as aq
from storage.sql import index
from storage.sql.models import AuditEntry, Camera, DayKey, Segment
from testkit.appliance import stream_info, synthetic_packets, write_config
from testkit.footage import store_packets
from vms.appliance import Appliance
from vms.archive import reading
from vms.archive.worker import ArchiveWorker
from vms.core.errors import DomainError, Kind
from vms.ops import adopt, doctor
from vms.retention import check as vcheck
from vms.retention import holds, rules
from vms.retention.janitor import Janitor

DAY_S = 86_400
VMS = os.path.join(os.path.dirname(sys.executable), "vms")


def _node(tmp_path, name, cams, url, s3_server, bucket, clock):
    data = tmp_path / name
    cfg = write_config(data, cams, node_id=name, database_url=url, archive=s3_server.archive_config(bucket))
    master = tmp_path / "master.key"
    if not master.exists():
        write_key_file(master)
    (data / "keys").mkdir(mode=0o700, exist_ok=True)
    shutil.copy(master, data / "keys" / "master.key")
    os.chmod(data / "keys" / "master.key", 0o600)
    s3_server.write_credentials(data / "keys" / "archive.toml")
    return Appliance.open(cfg, clock=clock), cfg


def _record(app, camera, seconds):
    now = app.clock.now_us()
    packets = synthetic_packets(now - int(seconds * 1e6) - 5_000_000, seconds, size=3000)
    return list(store_packets(app, camera, stream_info(), packets, segment_s=2.0))


def _audit(app, action):
    with Session(app.engine) as s:
        return [(e.outcome, e.detail) for e in s.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                                          .order_by(AuditEntry.seq))]


def _segments(app, camera):
    with Session(app.engine) as s:
        return list(s.scalars(select(Segment.id).where(Segment.camera_id == camera).order_by(Segment.id)))


@pytest.fixture
def two_nodes(tmp_path, database_url, s3_server, fake_clock):
    bucket = s3_server.make_bucket("vms-site")
    a, _ = _node(tmp_path, "node-a", [{"id": "cam-a", "source": "rtsp://127.0.0.1:1/a", "retain_days": 2}],
                 database_url, s3_server, bucket, fake_clock)
    b, b_cfg = _node(tmp_path, "node-b", [{"id": "cam-b", "source": "rtsp://127.0.0.1:1/b", "retain_days": 30}],
                     database_url, s3_server, bucket, fake_clock)
    yield a, b, b_cfg
    for app in (a, b):
        app.close()


def test_a_lost_node_is_adopted_and_its_footage_expires_on_time(two_nodes, tmp_path, s3_server):
    a, b, _ = two_nodes
    archived = _record(a, "cam-a", 6)
    assert ArchiveWorker(a).run_once().uploaded == len(archived)
    a.clock.advance(60)
    only_local = _record(a, "cam-a", 4)  # node-a dies before these are uploaded
    with Session(a.engine) as s:
        held_ref = index.segment_by_id(s, archived[0])
    hold = holds.place(b, holds.cli_actor(), "cam-a", held_ref.start_us, held_ref.end_us - 1, "police case 2026-7")

    # node-a was alive a moment ago: refused, nothing moved, the refusal audited
    with pytest.raises(DomainError) as alive:
        adopt.adopt(b, "node-a", holds.cli_actor())
    assert alive.value.kind == Kind.PRECONDITION and "sign of life" in alive.value.message
    with Session(b.engine) as s:
        assert {s.get(Segment, i).node_id for i in archived + only_local} == {"node-a"}

    a.close()  # node-a is gone, and so is its disk
    shutil.rmtree(tmp_path / "node-a" / "segments")
    b.clock.advance(3 * DAY_S)
    Janitor(b).sweep()  # without adoption nobody expires node-a's footage: the promise is broken
    assert _segments(b, "cam-a") == sorted(archived + only_local)
    report = rules.build_report(b.engine, b.config, b.clock.now_us())
    assert next(c for c in report.cameras if c.camera_id == "cam-a").violations > 0

    done = adopt.adopt(b, "node-a", holds.cli_actor())
    fp = done.footprint
    assert (fp.cameras, fp.segments, fp.archived, fp.only_local) == (["cam-a"], len(archived) + len(only_local),
                                                                    len(archived), len(only_local))
    with Session(b.engine) as s:
        cam = s.get(Camera, "cam-a")
        assert cam.node_id == "node-b" and cam.removed_us is not None and cam.retain_days == 2
    # the archived footage plays on node-b from the bucket; the lost-only segments are reported missing
    reading.install(b)
    with Session(b.engine) as s:
        ref = index.segment_by_id(s, archived[1])
    assert len(list(b.store.detached_reader(ref).packets())) > 0
    problems = {(p.kind, p.segment_id) for p in vcheck.check(b).problems}
    assert {i for k, i in problems if k == "missing"} == set(only_local)
    assert not {k for k, _ in problems if k.startswith("archive-")}, problems  # the adopted prefix is listed

    Janitor(b).sweep()
    assert _segments(b, "cam-a") == [archived[0]]  # only what the hold covers
    purged = ArchiveWorker(b).run_once().purged
    assert purged == len(archived) - 1
    c = s3_server.client()
    left = [v["Key"] for v in c.list_object_versions(Bucket="vms-site", Prefix="node-a/").get("Versions", [])]
    with Session(b.engine) as s:
        assert left == [aq.location(s, archived[0]).object_key]
        day_keys = list(s.scalars(select(DayKey).where(DayKey.camera_id == "cam-a")))
    assert day_keys and all(k.wrapped is None for k in day_keys)  # shredded: the held segment has its own key
    report = rules.build_report(b.engine, b.config, b.clock.now_us())
    assert next(c for c in report.cameras if c.camera_id == "cam-a").violations == 0

    holds.release(b, holds.cli_actor(), hold, "case closed")
    b.clock.advance(31)
    Janitor(b).sweep()
    ArchiveWorker(b).run_once()
    assert _segments(b, "cam-a") == []
    assert c.list_object_versions(Bucket="vms-site", Prefix="node-a/").get("Versions", []) == []
    outcomes = [o for o, _ in _audit(b, "cluster.adopt")]
    assert outcomes[0].startswith("refused: node node-a showed a sign of life") and outcomes[1] == "ok"
    assert "into=node-b cameras=cam-a" in _audit(b, "cluster.adopt")[1][1]


def test_the_command_shows_the_plan_and_refuses_what_it_cannot_do(two_nodes, english_cli):
    a, b, b_cfg = two_nodes
    _record(a, "cam-a", 4)

    def vms(*args):
        return subprocess.run([VMS, "cluster", "adopt", *args, "--config", str(b_cfg)], capture_output=True,
                              text=True, timeout=60)

    plan = vms("node-a")
    assert plan.returncode == 0, plan.stderr
    assert "node node-a owns 1 camera(s) (cam-a), 2 segment(s)" in plan.stdout and "--yes" in plan.stdout
    assert _audit(b, "cluster.adopt") == []  # a plan changes nothing
    unknown = vms("node-x", "--yes")
    assert unknown.returncode == 3 and "the index names no node node-x" in unknown.stderr
    assert "node-a" in unknown.stderr
    itself = vms("node-b", "--yes")
    assert itself.returncode == 2 and "node-b is this node" in itself.stderr
    bad = vms("node-a", "--yes", "--min-silence-minutes", "-5")
    assert bad.returncode == 2 and "--min-silence-minutes" in bad.stderr
    with Session(b.engine) as s:
        assert s.get(Camera, "cam-a").node_id == "node-a"
    # node-a's footage is months old by the wall clock: the doctor on node-b says nobody expires it
    skip = frozenset({"cameras", "mqtt", "clock", "archive", "disk"})
    nodes = [f for f in doctor.run(b_cfg, skip=skip) if f.check == "nodes"]
    assert [f.status for f in nodes] == ["warn"] and "run 'vms cluster adopt node-a' here" in nodes[0].message
    adopt.adopt(b, "node-a", holds.cli_actor(), min_silence_s=0)
    assert [f for f in doctor.run(b_cfg, skip=skip) if f.check == "nodes"] == []
