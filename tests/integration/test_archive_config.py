"""``[archive]``: bad config refused with a message naming the key; ``vms doctor`` explains the store's state
(against a real S3 server, SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import os
import socket

import pytest
from sqlalchemy.orm import Session

from storage.sql import archive_queries as aq
from testkit.appliance import make_appliance, stream_info, synthetic_packets, write_config
from testkit.footage import store_packets
from vms.archive.worker import ArchiveWorker
from vms.core.config import ConfigError, load_config, parse_config
from vms.core.i18n import translator
from vms.ops import doctor
from vms.retention.rules import build_report, render_text

GOOD = {"endpoint": "http://127.0.0.1:9000", "bucket": "vms-site", "credentials_file": "keys/archive.toml"}


def _toml(**archive) -> str:
    lines = [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {v}" for k, v in archive.items()]
    return "[archive]\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(("change", "key", "says"), [
    ({"bucket": "My_Bucket"}, "archive.bucket", "not an S3 bucket name"),
    ({"endpoint": "ftp://store"}, "archive.endpoint", "must be http(s)://HOST[:PORT]"),
    ({"endpoint": "http://vms:hunter2@store:9000"}, "archive.endpoint", "the URL given"),
    ({"endpoint": "http://store:9000/bucket"}, "archive.endpoint", "no path"),
    ({"key_prefix": "/abs"}, "archive.key_prefix", "ending in '/'"),
    ({"concurrency": 0}, "archive.concurrency", "greater than or equal to 1"),
    ({"keep_local_days": -1}, "archive.keep_local_days", "greater than or equal to 0"),
    ({"secret_key": "x"}, "archive.secret_key", "allowed here: bucket, concurrency, credentials_file"),
])
def test_bad_archive_config_names_the_key(change, key, says):
    with pytest.raises(ConfigError) as exc:
        parse_config(_toml(**{**GOOD, **change}), "vms.toml")
    assert exc.value.key == key, str(exc.value)
    assert says in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_credentials_file_must_be_private(tmp_path):
    cfg = write_config(tmp_path, archive=GOOD)
    (tmp_path / "keys").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="archive.credentials_file: .* does not exist"):
        load_config(cfg)
    creds = tmp_path / "keys" / "archive.toml"
    creds.write_text('access_key_id = "abc"\nsecret_access_key = "def"\n')
    os.chmod(creds, 0o644)
    with pytest.raises(ConfigError, match=r"archive.credentials_file: .* mode 0644; .*chmod 600"):
        load_config(cfg)
    os.chmod(creds, 0o600)
    assert load_config(cfg).archive.credentials_file == creds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _doctor(cfg) -> dict[str, doctor.Finding]:
    skip = frozenset({"cameras", "clock", "mqtt", "tls", "disk"})
    return {f.check: f for f in doctor.run(cfg, skip=skip) if f.check.startswith("archive")}


def test_doctor_explains_the_store(tmp_path, s3_server, sqlite_url):
    locked = s3_server.make_bucket("vms-locked", object_lock=True)
    plain = s3_server.make_bucket("vms-plain", versioning=False)
    creds = s3_server.write_credentials(tmp_path / "n" / "keys" / "archive.toml")
    make_appliance(tmp_path / "n", database_url=sqlite_url, archive=s3_server.archive_config(locked)).close()
    cfg = tmp_path / "n" / "vms.toml"

    found = _doctor(cfg)
    assert found["archive"].status == "ok"
    assert found["archive_versioning"].status == "ok"
    assert found["archive_object_lock"].status == "ok" and "legal holds are mirrored" in found["archive_object_lock"].message
    assert found["archive_queue"].status == "ok"

    write_config(tmp_path / "n", node_id="test-node", database_url=sqlite_url, archive=s3_server.archive_config(plain))
    found = _doctor(cfg)
    assert found["archive_versioning"].status == "warn" and "versioning is off" in found["archive_versioning"].message
    assert found["archive_object_lock"].status == "warn" and "no object lock" in found["archive_object_lock"].message

    write_config(tmp_path / "n", node_id="test-node", database_url=sqlite_url,
                 archive=s3_server.archive_config("no-such-bucket"))
    assert "the bucket does not exist" in _doctor(cfg)["archive"].message

    creds.write_text('access_key_id = "VMSWRONG"\nsecret_access_key = "wrong-secret-wrong"\n')
    write_config(tmp_path / "n", node_id="test-node", database_url=sqlite_url, archive=s3_server.archive_config(locked))
    found = _doctor(cfg)["archive"]
    assert found.status == "fail" and "refuses the access key or secret" in found.message, found
    assert "wrong-secret-wrong" not in found.message

    creds.write_text("access_key_id = \n")
    found = _doctor(cfg)["archive"]
    assert found.status == "fail" and str(creds) in found.message and "not valid TOML" in found.message

    s3_server.write_credentials(creds)
    dead = dict(s3_server.archive_config(locked), endpoint=f"http://127.0.0.1:{_free_port()}", timeout_s=2.0)
    write_config(tmp_path / "n", node_id="test-node", database_url=sqlite_url, archive=dead)
    found = _doctor(cfg)
    assert found["archive"].status == "fail" and "cannot be reached" in found["archive"].message
    assert "wait on local disk" in found["archive"].message
    assert found["archive_queue"].status == "ok"  # nothing recorded yet


def test_retention_report_covers_the_archive(tmp_path, s3_server, sqlite_url, fake_clock):
    bucket = s3_server.make_bucket("vms-site")
    s3_server.write_credentials(tmp_path / "n" / "keys" / "archive.toml")
    app = make_appliance(tmp_path / "n", [{"id": "hall", "source": "rtsp://127.0.0.1:1/x", "retain_days": 2}],
                         database_url=sqlite_url, clock=fake_clock, archive=s3_server.archive_config(bucket))
    try:
        now = fake_clock.now_us()
        store_packets(app, "hall", stream_info(), synthetic_packets(now - 20_000_000, 6, size=2000))
        ArchiveWorker(app).run_once()
        report = build_report(app.engine, app.config, fake_clock.now_us())
        with Session(app.engine) as s:
            n = sum(c.objects for c in aq.counts(s) if c.state == "archived")
        assert n >= 2
        assert report.to_dict()["archive"] == [{"state": "archived, also on local disk", "objects": n,
                                                "size_bytes": report.archive[0]["size_bytes"], "oldest_us": None}]
        assert f"archive: {n} object(s)" in render_text(report, translator("en"))
    finally:
        app.close()
