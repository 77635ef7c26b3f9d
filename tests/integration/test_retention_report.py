"""``vms retention report`` and ``vms janitor`` through the command line (real clock):
violations make the exit status non-zero until the janitor has swept; holds are
not violations; the running service stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from tests.integration.test_janitor_sweep import CAMS, DAY_US, HOUR_US, record, segments
from vms.access import audit
from vms.cli import main
from vms.core.clock import Clock
from vms.retention import holds

pytestmark = pytest.mark.usefixtures("english_cli")  # these tests read the command's English words

ROOT = Path(__file__).parents[2]


@pytest.fixture
def app(appliance_factory, database_url):
    return appliance_factory(CAMS, database_url=database_url, clock=Clock())


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_report_counts_violations_until_the_janitor_sweeps(app, capsys, monkeypatch):
    now = Clock().now_us()
    record(app, "lib14", now - 13 * DAY_US)  # young enough
    old = record(app, "lib14", now - 15 * DAY_US)  # a violation
    held = record(app, "lib14", now - 16 * DAY_US)  # older, but held: not a violation
    record(app, "lib30", now - 20 * DAY_US)
    with Session(app.engine) as s, s.begin():
        index.add_hold(s, camera_id="lib14", start_us=now - 16 * DAY_US, end_us=now - 16 * DAY_US + 1,
                       reason="incident 12", now_us=now)
    cfg = str(app.config_path)

    code, out = run(capsys, "retention", "report", "--json", "--config", cfg)
    doc = json.loads(out)
    assert code == 1 and doc["violations"] == 1 and doc["last_sweep"] == {}
    cams = {c["camera_id"]: c for c in doc["cameras"]}
    assert cams["lib14"]["retain_days"] == 14 and cams["lib14"]["segments"] == 3
    assert cams["lib14"]["held_segments"] == 1 and cams["lib14"]["violations"] == 1
    assert 15.9 < cams["lib14"]["oldest_age_s"] / 86400 < 16.1
    assert cams["lib30"]["violations"] == 0 and cams["lib30"]["size_bytes"] > 0

    code, out = run(capsys, "retention", "report", "--config", cfg)
    assert code == 1 and "VIOLATION: 1 segment(s)" in out and "never" in out
    monkeypatch.setenv("VMS_LANG", "da")
    code, out = run(capsys, "retention", "report", "--config", cfg)
    assert code == 1 and "OVERTRÆDELSE: 1 segment(er) er ældre end tilladt og ikke tilbageholdt" in out
    assert "seneste oprydning: aldrig" in out and out.splitlines()[2].split()[:4] == ["kamera", "opbev.", "ældste",
                                                                                       "optagelse"]
    monkeypatch.setenv("VMS_LANG", "en")

    code, out = run(capsys, "janitor", "--once", "--config", cfg)
    assert code == 0 and json.loads(out)["deleted"] == {"age": 1}
    assert old not in segments(app) and held in segments(app)

    code, out = run(capsys, "retention", "report", "--config", cfg)
    assert code == 0 and "no violations" in out and "last sweep on test-node" in out


def test_a_removed_camera_is_still_reported(app, capsys):
    import tomllib

    import tomli_w

    record(app, "lib30", Clock().now_us() - 31 * DAY_US)
    doc = tomllib.loads(app.config_path.read_text())
    doc["cameras"] = [c for c in doc["cameras"] if c["id"] != "lib30"]
    app.config_path.write_text(tomli_w.dumps(doc))
    code, out = run(capsys, "retention", "report", "--config", str(app.config_path))
    assert code == 1 and "lib30 (removed)" in out


def test_hold_commands(app, capsys):
    cfg = str(app.config_path)
    code, out = run(capsys, "hold", "add", "lib14", "--from", "2026-03-01T10:00:00Z", "--to", "2026-03-01T11:00Z",
                    "--reason", "police request 2026-113", "--config", cfg)
    assert code == 0 and "hold 1 placed" in out
    assert "police request" in run(capsys, "hold", "list", "--config", cfg)[1]
    assert main(["hold", "release", "1", "--reason", "short", "--config", cfg]) == 2  # a reason is required
    assert run(capsys, "hold", "release", "1", "--reason", "the police closed case 2026-113", "--config", cfg)[0] == 0
    assert "no active holds" in run(capsys, "hold", "list", "--config", cfg)[1]
    assert main(["hold", "release", "1", "--reason", "the police closed case 2026-113", "--config", cfg]) == 5
    assert main(["hold", "release", "99", "--reason", "the police closed case 2026-113", "--config", cfg]) == 3

    # each hand hold is in the audit trail, attributed to the person at the terminal, and the chain verifies
    entries = [e for e in audit.search(app.engine) if e.action.startswith("hold.")]
    assert [(e.action, e.object, e.role) for e in entries] == [("hold.add", "hold:1", "cli"), ("hold.release", "hold:1", "cli")]
    assert all(e.actor == holds.cli_actor().name and e.actor.startswith("cli:") for e in entries)
    assert "police request 2026-113" in entries[0].detail and "closed case" in entries[1].detail
    code, out = run(capsys, "audit", "verify", "--config", cfg)
    assert code == 0, out
    assert main(["hold", "add", "nope", "--from", "2026-03-01T10:00Z", "--to", "2026-03-01T11:00Z",
                 "--reason", "a long enough reason", "--config", cfg]) == 3
    assert main(["hold", "add", "lib14", "--from", "2026-03-01T10:00", "--to", "2026-03-01T11:00Z",
                 "--reason", "a long enough reason", "--config", cfg]) == 2  # no zone
    err = capsys.readouterr().err
    assert "has no time zone" in err


def test_janitor_service_sweeps_and_stops_on_sigterm(app, tmp_path):
    seg = record(app, "lib14", Clock().now_us() - 15 * DAY_US - HOUR_US)
    proc = subprocess.Popen([sys.executable, "-m", "vms.cli", "janitor", "--config", str(app.config_path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while seg in segments(app) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seg not in segments(app)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "janitor running" in err
