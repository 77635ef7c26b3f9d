"""``vms serve`` as a process: recorder, janitor and API together; SIGTERM; SIGHUP.

A looping local clip is the camera (as in the demo).  The process is the
installed command; the test reads the database through its own Appliance.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storage.format.segment import OPEN_SUFFIX
from storage.keys.keyring import write_key_file
from testkit.appliance import write_config
from testkit.recording import camera_state, segments, wait_for
from vms.appliance import Appliance
from vms.core.clock import Clock

VMS = Path(sys.executable).with_name("vms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def served(tmp_path, h264_clip):
    """Start ``vms serve`` on a free port with one file camera; yields (proc, app, base_url, cfg, log)."""
    port = _free_port()
    data = tmp_path / "data"
    cfg = write_config(data, [{"id": "lobby", "source": str(h264_clip.path), "retain_days": 14,
                               "segment_seconds": 2, "loop": True}],
                       api={"host": "127.0.0.1", "port": port}, recorder={"state_interval_s": 0.5})
    write_key_file(data / "keys" / "master.key")
    app = Appliance.open(cfg, clock=Clock())
    log_path = tmp_path / "serve.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(VMS), "serve", "--config", str(cfg)], stdout=log, stderr=log,
                                start_new_session=True)
    try:
        yield proc, app, f"http://127.0.0.1:{port}", cfg, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        app.close()


def test_serve_records_serves_and_stops_cleanly(served):
    proc, app, base, _cfg, log_path = served
    wait_for(lambda: _get(base + "/readyz")[0] == 200, 60, "the API to be ready")
    assert json.loads(_get(base + "/healthz")[1])["status"] == "ok"
    # recording within 30 s of start, sealed segments in the index
    wait_for(lambda: len(segments(app, "lobby")) >= 2, 30, "two sealed segments of the file camera")
    assert camera_state(app, "lobby")["online"]
    status, body = _get(base + "/metrics")  # loopback: no credentials needed
    assert status == 200 and b'vms_camera_online{camera="lobby"' in body
    status, _ = _get(base + "/api/tickets")
    assert status == 401  # everything else needs a signed-in user
    started = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0, log_path.read_text()
    assert time.monotonic() - started < 5
    leftovers = list(Path(app.config.storage_path).rglob(f"*{OPEN_SUFFIX}"))
    assert leftovers == [], "SIGTERM must seal every open segment"
    log = log_path.read_text()
    assert "every open segment sealed" in log
    assert "Traceback" not in log


def test_sighup_with_a_broken_config_keeps_running(served):
    proc, app, base, cfg, log_path = served
    wait_for(lambda: _get(base + "/readyz")[0] == 200, 60, "the API to be ready")
    good = cfg.read_text()
    cfg.write_text(good + "\nunknown_key = 1\n")
    os.kill(proc.pid, signal.SIGHUP)
    wait_for(lambda: "unknown_key" in log_path.read_text(), 10, "the reload refusal in the log")
    assert _get(base + "/healthz")[0] == 200
    packets = camera_state(app, "lobby")["packets"]
    wait_for(lambda: camera_state(app, "lobby")["packets"] > packets, 10, "recording to go on")
    assert proc.poll() is None
    cfg.write_text(good)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(10) == 0


def _self_signed(directory: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def test_serve_speaks_https_with_a_certificate(tmp_path):
    import ssl

    data = tmp_path / "data"
    port = _free_port()
    cfg = write_config(data, api={"host": "127.0.0.1", "port": port, "tls_cert": "tls.crt", "tls_key": "tls.key"})
    write_key_file(data / "keys" / "master.key")
    _self_signed(data)
    with open(tmp_path / "serve.log", "ab") as log:
        proc = subprocess.Popen([str(VMS), "serve", "--config", str(cfg), "--no-recorder", "--no-janitor"],
                                stdout=log, stderr=log, start_new_session=True)
    try:
        ctx = ssl.create_default_context(cafile=str(data / "tls.crt"))
        ctx.check_hostname = False

        def https_ok() -> bool:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=5, context=ctx) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(https_ok, 60, "HTTPS on the API port")
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] != 200, "plain HTTP must not be served"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tls_key_readable_by_others_is_refused(tmp_path):
    data = tmp_path / "data"
    cfg = write_config(data, api={"tls_cert": "tls.crt", "tls_key": "tls.key"})
    write_key_file(data / "keys" / "master.key")
    _, key = _self_signed(data)
    os.chmod(key, 0o644)
    r = subprocess.run([str(VMS), "config", "check", str(cfg)], capture_output=True, text=True)
    assert r.returncode == 2 and "api.tls_key" in r.stderr and "chmod 600" in r.stderr


@pytest.mark.parametrize("trusted, expected", [([], "127.0.0.1"), (["127.0.0.1"], "203.0.113.5")])
def test_client_address_behind_a_trusted_proxy(tmp_path, trusted, expected):
    from vms.access import audit

    data = tmp_path / "data"
    port = _free_port()
    cfg = write_config(data, api={"host": "127.0.0.1", "port": port, "trusted_proxies": trusted})
    write_key_file(data / "keys" / "master.key")
    app = Appliance.open(cfg, clock=Clock())
    with open(tmp_path / "serve.log", "ab") as log:
        proc = subprocess.Popen([str(VMS), "serve", "--config", str(cfg), "--no-recorder", "--no-janitor"],
                                stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "the API")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/signin", method="POST",
                                     data=json.dumps({"name": "nobody", "password": "wrong password"}).encode(),
                                     headers={"content-type": "application/json", "X-Forwarded-For": "203.0.113.5"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        (entry,) = audit.search(app.engine, action="auth.signin")
        assert entry.client == expected and entry.outcome.startswith("refused")
    finally:
        proc.kill()
        proc.wait()
        app.close()
