"""The S3 archive tier against a real S3 server (SeaweedFS on 127.0.0.1), on SQLite and PostgreSQL.

Segments are written through the store as the recorder writes them (format-level packets; the playback
of real RTSP footage from the archive on another node is in test_archive_multinode.py).
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from sqlalchemy.orm import Session

from storage.format.segment_reader import SegmentReader
from storage.keys.keyring import KeyError_
from storage.sql import archive_queries as aq
from storage.sql import index
from testkit.appliance import stream_info, synthetic_packets
from testkit.footage import store_packets
from vms.archive import reading
from vms.archive.worker import ArchiveWorker
from vms.retention import check as vcheck
from vms.retention import holds
from vms.retention.janitor import Janitor

DAY_US = 86_400_000_000
CAM = "entrance"


def _archived_appliance(appliance_factory, s3_server, database_url, bucket, **archive):
    app = appliance_factory([{"id": CAM, "source": "rtsp://127.0.0.1:1/x", "retain_days": 2}],
                            database_url=database_url, archive=s3_server.archive_config(bucket, **archive))
    return app


def _creds(tmp_path, s3_server):
    # the credentials file the factory's config names (data dir of the first appliance)
    return s3_server.write_credentials(tmp_path / "appliance0" / "keys" / "archive.toml")


def _record(app, seconds: float = 6, *, segment_s: float = 2.0) -> list[int]:
    now = app.clock.now_us()
    packets = synthetic_packets(now - int(seconds * 1e6) - 5_000_000, seconds, size=3000)
    return list(store_packets(app, CAM, stream_info(), packets, segment_s=segment_s))


def _locations(app, ids):
    with Session(app.engine) as s:
        return {i: aq.location(s, i) for i in ids}


@pytest.fixture
def archive_env(tmp_path, s3_server, appliance_factory, database_url):
    bucket = s3_server.make_bucket("vms-archive")
    _creds(tmp_path, s3_server)
    return _archived_appliance(appliance_factory, s3_server, database_url, bucket)


def test_worker_copies_sealed_segments_as_stored(archive_env, s3_server):
    app = archive_env
    ids = _record(app)
    worker = ArchiveWorker(app)
    res = worker.run_once()
    assert res.queued == len(ids) and res.uploaded == len(ids), res
    locs = _locations(app, ids)
    assert {loc.where for loc in locs.values()} == {"both"}
    c = s3_server.client()
    with Session(app.engine) as s:
        for i in ids:
            ref = index.segment_by_id(s, i)
            body = c.get_object(Bucket="vms-archive", Key=locs[i].object_key)["Body"].read()
            # byte for byte the encrypted file: nothing was decrypted for the upload
            assert body == app.store.abspath(ref.path).read_bytes()
            assert locs[i].object_key == f"test-node/{ref.path}"
    assert vcheck.check(app).problems == []
    worker.stop()


def test_store_down_local_disk_buffers_and_queue_resumes_after_restart(archive_env, s3_server, tmp_path):
    app = archive_env
    alarms = []
    worker = ArchiveWorker(app, on_alarm=lambda kind, msg: alarms.append((kind, msg)))
    worker.run_once()  # the bucket is seen once
    s3_server.stop()
    ids = _record(app)
    res = worker.run_once()
    assert res.uploaded == 0 and res.failed >= 1
    assert alarms and alarms[0][0] == "archive_unreachable"
    assert "unreachable" in alarms[0][1] and f"{len(ids)} segment(s)" in alarms[0][1], alarms
    assert s3_server.secret_key not in alarms[0][1]
    locs = _locations(app, ids)
    assert {loc.state for loc in locs.values()} == {"queued"}  # waiting, the files still on local disk
    worker.stop()

    # a restart of the appliance: the queue is in the database
    from vms.appliance import Appliance

    again = Appliance.open(app.config_path, clock=app.clock)
    s3_server.restart()
    cleared = []
    worker = ArchiveWorker(again, on_clear=cleared.append)
    assert worker.run_once().uploaded == 0  # backing off: the first retry waits 2 s
    app.clock.advance(3.0)
    assert worker.run_once().uploaded == len(ids)
    assert {loc.where for loc in _locations(again, ids).values()} == {"both"}
    worker.stop()
    again.close()


def test_local_copies_go_after_keep_local_days_and_playback_reads_the_bucket(archive_env, s3_server):
    app = archive_env
    ids = _record(app)
    with Session(app.engine) as s:
        refs = [index.segment_by_id(s, i) for i in ids]
    before = [list(app.store.detached_reader(r).packets()) for r in refs]
    ArchiveWorker(app).run_once()
    app.clock.advance(7 * 86400 + 60)  # keep_local_days defaults to 7; retain_days is 2 ... so pin the rows
    # a hold keeps them from expiring, so only the local copies go
    hold = holds.place(app, holds.cli_actor(), CAM, refs[0].start_us - 1, refs[-1].end_us + 1, "police case 2026-118")
    Janitor(app).sweep()
    assert all(not app.store.abspath(r.path).exists() for r in refs)
    assert {loc.where for loc in _locations(app, ids).values()} == {"archive"}
    assert vcheck.check(app).problems == []  # archive-only rows are not 'missing'
    reading.install(app)
    after = [list(app.store.detached_reader(r).packets()) for r in refs]
    assert [[p.data for p in ps] for ps in after] == [[p.data for p in ps] for ps in before]
    holds.release(app, holds.cli_actor(), hold, "case closed by the police")


def test_check_compares_the_index_with_the_bucket(archive_env, s3_server):
    app = archive_env
    ids = _record(app)
    ArchiveWorker(app).run_once()
    key = _locations(app, ids)[ids[0]].object_key
    c = s3_server.client()
    for v in c.list_object_versions(Bucket="vms-archive", Prefix=key).get("Versions", []):
        c.delete_object(Bucket="vms-archive", Key=key, VersionId=v["VersionId"])
    c.put_object(Bucket="vms-archive", Key="test-node/stray/object.vseg", Body=b"x")
    kinds = {(p.kind, p.path) for p in vcheck.check(app).problems}
    assert ("archive-missing", key) in kinds and ("archive-unknown", "test-node/stray/object.vseg") in kinds
    report = vcheck.check(app, repair=True)
    assert [p.kind for p, _why in report.unrepaired] == ["archive-unknown"]
    assert ArchiveWorker(app).run_once().uploaded == 1  # re-queued from the local copy
    assert [p.kind for p in vcheck.check(app).problems] == ["archive-unknown"]


def test_expiry_deletes_every_version_and_a_copy_taken_before_cannot_be_decrypted(archive_env, s3_server, tmp_path):
    app = archive_env
    ids = _record(app)
    worker = ArchiveWorker(app)
    worker.run_once()
    c = s3_server.client()
    locs = _locations(app, ids)
    key = locs[ids[0]].object_key
    copy = c.get_object(Bucket="vms-archive", Key=key)["Body"].read()  # e.g. the site's own backup of the bucket
    c.put_object(Bucket="vms-archive", Key=key, Body=copy)  # a second version of the same object
    assert len(c.list_object_versions(Bucket="vms-archive", Prefix=key)["Versions"]) == 2
    app.clock.advance(3 * 86400)  # retain_days = 2
    Janitor(app).sweep()
    assert {loc.state for loc in _locations(app, ids).values()} == {"expired"}
    assert worker.run_once().purged == len(ids)
    listing = c.list_object_versions(Bucket="vms-archive", Prefix="test-node/")
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    assert _locations(app, ids) == dict.fromkeys(ids)
    saved = tmp_path / "copy.vseg"
    saved.write_bytes(copy)
    with Session(app.engine) as s, pytest.raises(KeyError_):
        list(SegmentReader(saved, app.keys.key_for_segment(s, None)).chunks())


def test_legal_hold_in_an_object_lock_bucket(tmp_path, s3_server, appliance_factory, database_url):
    bucket = s3_server.make_bucket("vms-locked", object_lock=True)
    _creds(tmp_path, s3_server)
    app = _archived_appliance(appliance_factory, s3_server, database_url, bucket)
    ids = _record(app)
    with Session(app.engine) as s:
        held_ref = index.segment_by_id(s, ids[0])
    hold = holds.place(app, holds.cli_actor(), CAM, held_ref.start_us, held_ref.end_us - 1, "police case 2026-118")
    worker = ArchiveWorker(app)
    worker.run_once()
    assert worker.object_lock is True
    locs = _locations(app, ids)
    c = s3_server.client()
    key = locs[ids[0]].object_key
    version = c.list_object_versions(Bucket=bucket, Prefix=key)["Versions"][0]["VersionId"]
    assert c.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)["LegalHold"]["Status"] == "ON"
    assert locs[ids[0]].held and not locs[ids[-1]].held
    with pytest.raises(ClientError) as refused:
        c.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    holds.release(app, holds.cli_actor(), hold, "case closed by the police")
    app.clock.advance(31)  # holds are brought in step every 30 s
    assert worker.run_once().released == 1
    assert c.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)["LegalHold"]["Status"] == "OFF"
    app.clock.advance(3 * 86400)
    Janitor(app).sweep()
    assert worker.run_once().purged == len(ids)
    assert c.list_object_versions(Bucket=bucket, Prefix="test-node/").get("Versions", []) == []
