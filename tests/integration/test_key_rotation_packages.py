"""``vms keys rotate`` re-wraps export packages' keys too, and refuses while a service runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vms.evidence.export import package_store

VMS = Path(sys.executable).with_name("vms")


def _rotate(app) -> subprocess.CompletedProcess:
    return subprocess.run([str(VMS), "keys", "rotate", "--config", str(app.config_path)], capture_output=True,
                          text=True, timeout=120)


def _package(app, payload: bytes) -> str:
    store = package_store(app)
    package_id = "ab" * 16
    with store.create(package_id) as pending:
        pending.writer.write(payload)
        pending.commit(ticket_id="7", filename="evidence.zip", cameras=("door",), created_us=app.clock.now_us(),
                       manifest_sha256="0" * 64, key_fingerprint="f" * 64, redacted=False, expires_us=None)
    return package_id


def test_packages_stay_readable_after_rotation(appliance_factory, sqlite_url):
    app = appliance_factory(database_url=sqlite_url)
    payload = os.urandom(300_000)
    package_id = _package(app, payload)
    r = _rotate(app)
    assert r.returncode == 0, r.stderr
    app.close()
    reopened = type(app).open(app.config_path)  # only the new key file exists now
    try:
        assert b"".join(package_store(reopened).open(package_id)) == payload
    finally:
        reopened.close()


def test_rotation_refused_while_a_service_runs(appliance_factory, sqlite_url):
    app = appliance_factory(database_url=sqlite_url)
    before = app.config.key_path.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from vms.core.service_lock import hold_shared; "
                              "hold_shared(sys.argv[1]); print('held', flush=True); time.sleep(60)",
                              str(app.config.data_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        r = _rotate(app)
        assert r.returncode == 6, r.stderr
        assert "stopped" in r.stderr and app.config.key_path.read_bytes() == before
    finally:
        child.kill()
        child.wait()
    assert _rotate(app).returncode == 0  # the lock died with the service
