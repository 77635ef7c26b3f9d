"""The door log in an evidence package, on SQLite and PostgreSQL: a ticket covering a camera and a door exports
the clip and doorlog/doorlog.csv; the manifest lists the CSV and its doorlog section; sha256sum -c and both
openssl signature checks pass, and vms export verify too; one changed byte in the CSV fails them."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.doorlog import FAKE_CPR, csv_default
from testkit.footage import ensure_signing_key, store_clip
from tests.support.export_tools import openssl_verify, sha256sum_check, unpack
from vms.access import tickets, users
from vms.access.audit import SYSTEM
from vms.access.auth import SESSION, Principal
from vms.doorlog import ingest
from vms.evidence import export_jobs
from vms.evidence.export import package_store
from vms.evidence.verify import verify_package

T0 = 1_767_225_600_000_000
S = 1_000_000


def principal(app, name: str, role: str) -> Principal:
    users.add_user(app.engine, app.clock, users.CONSOLE, name, role)
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
    return Principal(user.id, name, role, 0, SESSION, False)


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0 + 3600 * S)
    app = appliance_factory([{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14}],
                            database_url=database_url, doorlog={"inbox": "inbox"})
    ensure_signing_key(app)
    return app


def test_package_carries_a_signed_doorlog_csv(app, clip_factory, tmp_path):
    store_clip(app, "entrance", clip_factory.get(seconds=8).path, T0)
    passages = [(T0 + 2 * S, "main", FAKE_CPR), (T0 + 3 * S, "main", "card1234"), (T0 + 9 * S, "main", "card9")]
    ingest.import_file(app, csv_default(passages), name="a.csv", source="inbox", actor=SYSTEM)
    olga, mia = principal(app, "olga", "operator"), principal(app, "mia", "manager")
    t = tickets.file_ticket(app, olga, cameras=["entrance"], doors=["main"], start_us=T0 + S, end_us=T0 + 6 * S,
                            description="a window broken at the entrance", purpose="police report",
                            legal_basis="TV-overvågningsloven § 4 c", action="export", recipient="police")
    tickets.decide(app, mia, t.id, approve=True, reason="police asked")
    job = export_jobs.start(app, olga, t.id)
    deadline = time.monotonic() + 120
    while (st := export_jobs.status(app, olga, job.job_id)).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.1)
    assert st.state == "succeeded", st.error
    zpath = tmp_path / "p.zip"
    with open(zpath, "wb") as fh:
        for chunk in package_store(app).open(st.package_id):
            fh.write(chunk)
    folder = unpack(zpath, tmp_path / "x")
    rows = list(csv.reader(io.StringIO((folder / "doorlog/doorlog.csv").read_text("utf-8"))))
    assert rows[0] == ["time_utc", "time_local", "door", "kind", "identifier"]
    assert [(r[0], r[2], r[3], r[4]) for r in rows[1:]] == [
        ("2026-01-01T00:00:02.000000Z", "main", "cpr", FAKE_CPR), ("2026-01-01T00:00:03.000000Z", "main", "card", "CARD1234")]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "doorlog/doorlog.csv" in {f["path"] for f in manifest["files"]}
    assert manifest["doorlog"]["passages"] == 2 and manifest["doorlog"]["doors"] == ["main"]
    assert any(p.startswith("clips/") for p in (f["path"] for f in manifest["files"]))
    assert "doorlog/doorlog.csv" in (folder / "SHA256SUMS").read_text()
    r = sha256sum_check(folder)
    assert r.returncode == 0 and "doorlog/doorlog.csv: OK" in r.stdout, r.stdout + r.stderr
    for data, sig in (("manifest.json", "manifest.sig"), ("SHA256SUMS", "SHA256SUMS.sig")):
        assert openssl_verify(folder, data, sig).returncode == 0
    assert verify_package(zpath).ok

    csv_file = folder / "doorlog/doorlog.csv"
    data = bytearray(csv_file.read_bytes())
    data[-3] ^= 0x01  # one changed byte (a digit of the last card number)
    csv_file.write_bytes(bytes(data))
    r = sha256sum_check(folder)
    assert r.returncode != 0 and "doorlog/doorlog.csv: FAILED" in r.stdout
    report = verify_package(folder)
    assert not report.ok and "doorlog/doorlog.csv" in " ".join(report.problems)
