"""The ``vms`` command as a user runs it: init, config check, segment inspect/verify,
key rotation, user add; exit codes and messages for bad input.  In Danish (``VMS_LANG=da``, the default of a
server whose locale names no language), English where a test says so."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.appliance import stream_info, synthetic_packets

VMS = [sys.executable, "-m", "vms.cli"]
DA = {**os.environ, "VMS_LANG": "da"}
EN = {**os.environ, "VMS_LANG": "en"}
T0 = 1_767_225_600_000_000


def run(*args, check=True, env=DA):
    proc = subprocess.run([*VMS, *map(str, args)], capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"vms {args} exited {proc.returncode}: {proc.stderr}")
    return proc


@pytest.fixture
def installed(tmp_path):
    data = tmp_path / "data"
    proc = run("init", "--data", data)
    return data, proc


def test_init_creates_everything_once(installed):
    data, proc = installed
    password = re.search(r"Engangsadgangskode .*: (\S+)", proc.stdout).group(1)
    assert len(password) >= 20
    for rel in ("vms.toml", "keys/master.key", "keys/signing.key", "index.db"):
        assert (data / rel).exists(), rel
    for rel in ("keys/master.key", "keys/signing.key", "vms.toml"):
        assert (data / rel).stat().st_mode & 0o077 == 0, rel
    assert (data / "index.db").stat().st_mode & 0o077 == 0
    assert password not in (data / "index.db").read_bytes().decode("latin-1")
    again = run("init", "--data", data, check=False)
    assert again.returncode == 5 and "er allerede taget i brug" in again.stderr and "intet er ændret" in again.stderr
    again = run("init", "--data", data, check=False, env=EN)
    assert again.returncode == 5 and "already initialised" in again.stderr


def test_config_check_ok_and_bad(installed, tmp_path):
    data, _ = installed
    ok = run("config", "check", data / "vms.toml")
    assert "OK" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[cameras]]\nid = "a b"\nsource = "rtsp://h/x"\nretain_days = 7\n')
    proc = run("config", "check", bad, check=False)
    assert proc.returncode == 2 and str(bad) in proc.stderr and "cameras[0].id" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_segment_inspect_and_verify(installed):
    data, _ = installed
    cfg = data / "vms.toml"
    text = cfg.read_text() + '\n[[cameras]]\nid = "cam1"\nsource = "rtsp://127.0.0.1:1/x"\nretain_days = 14\n'
    cfg.write_text(text)
    from vms.appliance import Appliance

    app = Appliance.open(cfg)
    w = app.store.open_writer("cam1", stream_info(), T0, now_us=T0)
    for p in synthetic_packets(T0, 3.0):
        w.write(p)
    summary = w.close()
    app.store.index_sealed(summary)
    path = summary.path
    app.close()

    info = json.loads(run("segment", "inspect", path, "--json").stdout)
    assert info["camera"] == "cam1" and info["chunks"] == 3 and info["codec"] == "h264"
    ok = run("segment", "verify", path, "--config", cfg)
    assert "3 chunks er autentificeret, 45 pakker (3 nøglebilleder)" in ok.stdout

    data_bytes = bytearray(path.read_bytes())
    data_bytes[-20] ^= 1
    path.write_bytes(bytes(data_bytes))
    bad = run("segment", "verify", path, "--config", cfg, check=False)
    assert bad.returncode == 7 and "chunk 2" in bad.stderr and str(path) in bad.stderr

    path.write_bytes(b"not a segment")
    bad = run("segment", "inspect", path, check=False)
    assert bad.returncode == 7 and "not a segment file" in bad.stderr


def test_unsafe_key_permissions_stop_commands(installed):
    data, _ = installed
    os.chmod(data / "keys" / "master.key", 0o644)
    proc = run("segment", "verify", data / "x.vseg", "--config", data / "vms.toml", check=False)
    assert proc.returncode == 2 and "chmod 600" in proc.stderr


def test_key_rotation_and_user_add(installed):
    data, _ = installed
    cfg = data / "vms.toml"
    old = (data / "keys" / "master.key").read_bytes()
    out = run("keys", "rotate", "--config", cfg).stdout
    assert "hovednøglen er skiftet" in out and (data / "keys" / "master.key").read_bytes() != old
    add = run("user", "add", "maria", "--role", "manager", "--config", cfg)
    assert "brugeren maria (manager) er oprettet" in add.stdout and "engangsadgangskode" in add.stdout
    add = run("user", "add", "mads", "--role", "operator", "--config", cfg, env=EN)
    assert "user mads (operator) created" in add.stdout and "one-time password" in add.stdout
    dup = run("user", "add", "maria", "--role", "manager", "--config", cfg, check=False)
    assert dup.returncode == 5 and "already exists" in dup.stderr
    bad = run("user", "add", "Bad Name", "--role", "manager", "--config", cfg, check=False)
    assert bad.returncode == 2


def test_database_unreachable_is_a_clear_error(tmp_path):
    data = tmp_path / "d"
    run("init", "--data", data)
    cfg = data / "vms.toml"
    cfg.write_text(cfg.read_text() + '\ndatabase_url = "postgresql://vms:hunter2@127.0.0.1:1/nope"\n')
    proc = run("db", "upgrade", "--config", cfg, check=False)
    assert proc.returncode == 8 and "unreachable" in proc.stderr and "hunter2" not in proc.stderr


def test_console_script_is_installed():
    vms = Path(sys.executable).with_name("vms")
    assert vms.exists(), "the project must be installed (pip install -e .) so that .venv/bin/vms exists"
    proc = subprocess.run([vms, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "init" in proc.stdout


def test_output_to_a_closed_pipe_ends_quietly(tmp_path):
    """`vms config check FILE | head -1`: the reader goes away; no BrokenPipeError traceback."""
    import shlex

    cfg = tmp_path / "vms.toml"
    cfg.write_text('data_dir = "."\nnode_id = "n1"\n')
    cmd = " ".join(shlex.quote(str(a)) for a in [*VMS, "config", "check", cfg])
    # `true` exits before the command writes (Python starts slower), so every write meets a closed pipe
    r = subprocess.run(["sh", "-c", f"{cmd} | true; {cmd} --help | head -c 1 >/dev/null"], capture_output=True,
                       text=True, timeout=60)
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_tls_self_signed_makes_a_config_with_tls_valid(tmp_path):
    """The documented install: `vms tls self-signed` writes what [api] tls_cert/tls_key name; config check passes."""
    tls = tmp_path / "tls"
    tls.mkdir(mode=0o750)
    r = subprocess.run([*VMS, "tls", "self-signed", "--dir", str(tls), "--host", "vms.bibliotek.example",
                        "--host", "10.0.0.5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert oct((tls / "key.pem").stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "x509", "-in", str(tls / "cert.pem"), "-noout", "-text"], capture_output=True,
                          text=True, check=True).stdout
    assert "DNS:vms.bibliotek.example" in text and "IP Address:10.0.0.5" in text and "DNS:localhost" in text
    again = subprocess.run([*VMS, "tls", "self-signed", "--dir", str(tls)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 5 and "exists" in again.stderr and "Traceback" not in again.stderr
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    cfg = data / "vms.toml"
    cfg.write_text(f'data_dir = "."\nnode_id = "n1"\n[api]\nhost = "0.0.0.0"\nport = 8443\n'
                   f'tls_cert = "{tls / "cert.pem"}"\ntls_key = "{tls / "key.pem"}"\n')
    check = subprocess.run([*VMS, "config", "check", str(cfg)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
