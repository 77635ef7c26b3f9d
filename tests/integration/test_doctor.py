"""`vms doctor` on real installs: a healthy one passes; each fault is named in words
and makes the exit status non-zero; secrets never appear."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql.db import open_database
from vms.cli import main
from vms.cli.setup import initialise
from vms.ops.doctor import clock_status

pytestmark = pytest.mark.usefixtures("english_cli")  # these tests read the command's English words


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install(tmp_path, cameras: list[dict], extra: str = "", top: str = ""):
    """A real install made by `vms init`, then cameras (and more TOML) appended."""
    result = initialise(tmp_path / "data", node_id="test-node")
    path = result.config_path
    text = path.read_text().replace('node_id = "test-node"\n', f'node_id = "test-node"\n{top}')
    for cam in cameras:
        text += "\n[[cameras]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cam.items())
    path.write_text(text + extra)
    return path


def doctor(capsys, path, *args) -> tuple[int, str]:
    code = main(["doctor", "-c", str(path), "--camera-timeout", "3", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def findings(capsys, path, *args) -> tuple[int, dict[str, list[dict]]]:
    code, out = doctor(capsys, path, "--json", *args)
    by_check: dict[str, list[dict]] = {}
    for f in json.loads(out)["checks"]:
        by_check.setdefault(f["check"], []).append(f)
    return code, by_check


@pytest.fixture
def camera_url(rtsp_server):
    return rtsp_server.url("/loop")


def test_healthy_install_passes(tmp_path, capsys, camera_url):
    path = install(tmp_path, [{"id": "entrance", "source": camera_url, "retain_days": 14}])
    code, checks = findings(capsys, path, "--skip", "clock")
    assert {c: [f["status"] for f in fs] for c, fs in checks.items()} == {
        "config": ["ok"], "permissions": ["ok"], "key_file": ["ok"], "signing_key": ["ok"], "database": ["ok"],
        "schema": ["ok"], "storage_root": ["ok"], "disk": ["unknown"], "cameras": ["ok"], "tls": ["ok"],
        "janitor": ["warn"],
    }
    assert code == 0
    code, text = doctor(capsys, path, "--skip", "clock")
    assert code == 0 and "no problems found." in text and "camera(s) answered: entrance" in text


def test_findings_in_danish_and_json_unchanged(tmp_path, capsys, monkeypatch):
    """People read the findings in their language; --json keeps the English message scripts may match."""
    path = install(tmp_path, [], extra='[[cameras]]\nid = "hall"\nsource = "rtsp://127.0.0.1:1/x"\nretain_days = 14\n'
                                        'quota_bytes = 2000000000\n')
    skip = ("--skip", "cameras,clock")
    _, checks = findings(capsys, path, *skip)
    monkeypatch.setenv("VMS_LANG", "da")
    _, checks_da = findings(capsys, path, *skip)
    assert checks_da == checks  # the same JSON in every language
    assert checks["janitor"][0]["message"] == "no janitor sweep recorded yet (is 'vms serve' or 'vms janitor' running?)"
    assert checks["disk"][0]["message"].startswith("retention needs about 2.0 GB, about ")
    assert "GB free of" in checks["disk"][0]["message"]
    code, text = doctor(capsys, path, *skip)
    assert code == 0 and "ingen problemer fundet." in text
    assert "  OBS   janitor       oprydningen har endnu ikke registreret noget gennemløb" in text
    assert "opbevaringen kræver ca. 2,0 GB, og der er ca. " in text and "GB fri af" in text
    assert "kan kun læses af sin ejer" in text and "no janitor" not in text


def test_clock_is_judged_in_words(tmp_path, capsys, camera_url):
    """Whatever this machine's clock is, the doctor says which source it asked, and a
    clock it finds unsynchronised is a problem (non-zero exit)."""
    status, words = clock_status()
    assert status in ("ok", "fail", "unknown")
    assert any(src in words for src in ("timedatectl", "chronyc", "adjtimex", "cannot tell"))
    path = install(tmp_path, [{"id": "entrance", "source": camera_url, "retain_days": 14}])
    code, checks = findings(capsys, path)
    assert checks["clock"][0]["status"] == status
    assert code == (1 if status == "fail" else 0)
    if status == "fail":
        assert "not synchronised" in words


def test_bad_key_permissions(tmp_path, capsys, camera_url):
    path = install(tmp_path, [{"id": "entrance", "source": camera_url, "retain_days": 14}])
    (path.parent / "keys" / "master.key").chmod(0o644)
    code, text = doctor(capsys, path, "--skip", "clock")
    assert code == 1
    assert "FAIL  key_file" in text and "mode 0644" in text and "chmod 600" in text
    assert "FAIL  permissions" in text
    assert "1 problem" not in text and "problem(s) found." in text


def test_unreachable_camera_named_without_credentials(tmp_path, capsys, camera_url):
    dead = f"rtsp://viewer:s3cret-pw@127.0.0.1:{_free_port()}/stream1"
    path = install(tmp_path, [{"id": "entrance", "source": camera_url, "retain_days": 14},
                              {"id": "car-park", "source": dead, "retain_days": 30}])
    code, text = doctor(capsys, path, "--skip", "clock")
    assert code == 1
    assert "FAIL  cameras       camera car-park (rtsp://***@127.0.0.1:" in text
    assert "cannot be opened within 3 s" in text
    assert "s3cret-pw" not in text and "viewer" not in text
    assert "entrance" not in [line for line in text.splitlines() if "FAIL" in line][0]


def test_database_unreachable(tmp_path, capsys):
    port = _free_port()
    path = install(tmp_path, [], top=f'database_url = "postgresql://vms:db-secret@127.0.0.1:{port}/vms"\n')
    code, text = doctor(capsys, path, "--skip", "clock,cameras")
    assert code == 1
    assert f"FAIL  database      database postgresql://vms:***@127.0.0.1:{port}/vms is unreachable" in text
    assert "db-secret" not in text


def test_tls_missing_on_a_public_address(tmp_path, capsys):
    path = install(tmp_path, [], extra='\n[api]\nhost = "0.0.0.0"\n')
    code, text = doctor(capsys, path, "--skip", "clock,cameras")
    assert code == 1
    assert "FAIL  tls" in text and "without TLS" in text and "api.tls_cert" in text


def test_disk_too_small_for_the_retention(tmp_path, capsys):
    path = install(tmp_path, [{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 30}])
    engine = open_database(f"sqlite:///{path.parent / 'index.db'}")
    with Session(engine) as s, s.begin():
        index.upsert_camera(s, "entrance", node_id="test-node", retain_days=30, now_us=0)
        # 100 Gbit/s for 30 days: about 32 PB, more than any disk this test runs on
        index.save_camera_state(s, "entrance", node_id="test-node", now_us=0, bitrate_bps=100e9)
    engine.dispose()
    code, checks = findings(capsys, path, "--skip", "clock,cameras")
    assert code == 1
    disk = checks["disk"][0]
    assert disk["status"] == "fail"
    assert "retention needs about" in disk["message"] and "entrance" in disk["message"]
    assert "100000.0 Mbit/s x 30 d" in disk["message"]


def test_invalid_config_stops_with_its_reason(tmp_path, capsys):
    path = install(tmp_path, [{"id": "Bad Id", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14}])
    code, checks = findings(capsys, path)
    assert code == 1
    assert list(checks) == ["config"]
    assert "cameras[0].id" in checks["config"][0]["message"]


def test_the_installed_command(tmp_path, camera_url):
    """The console script, as an administrator runs it."""
    path = install(tmp_path, [{"id": "entrance", "source": camera_url, "retain_days": 14}])
    (path.parent / "keys" / "signing.key").chmod(0o640)
    vms = [sys.executable, "-m", "vms.cli"]
    done = subprocess.run([*vms, "doctor", "-c", str(path), "--skip", "clock"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  signing_key" in done.stdout and "mode 0640" in done.stdout
    done = subprocess.run([*vms, "doctor", "-c", str(path), "--skip", "nonsense"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "unknown check(s) nonsense" in done.stderr


def test_janitor_that_stopped_sweeping(tmp_path, capsys):
    import time

    from vms.retention import state

    path = install(tmp_path, [])
    engine = open_database(f"sqlite:///{path.parent / 'index.db'}")
    an_hour_ago_us = int((time.time() - 3600) * 1e6)
    with Session(engine) as s, s.begin():  # as vms.retention.janitor writes it
        state.record(s, state.LastSweep("test-node", an_hour_ago_us, deleted=0, failed=0, shredded=0,
                                        duration_ms=3.0))
    engine.dispose()
    code, checks = findings(capsys, path, "--skip", "clock,cameras")
    assert code == 1
    assert checks["janitor"][0]["status"] == "fail"
    assert "last janitor sweep was 60 min ago" in checks["janitor"][0]["message"]
    assert "retention is not being enforced" in checks["janitor"][0]["message"]
