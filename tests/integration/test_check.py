"""``vms check [--full] [--repair]`` through the command line on SQLite and PostgreSQL:
what it finds, what it repairs only when asked, and its exit status."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql.models import DeletionRecord
from testkit.appliance import stream_info, synthetic_packets
from tests.integration.test_janitor_sweep import CAMS, S_US, T0, files, record, segments
from vms.cli import main
from vms.retention import layout

pytestmark = pytest.mark.usefixtures("english_cli")  # these tests read the command's English words


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory(CAMS, database_url=database_url)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def unindexed_segment(app, start_us: int):
    w = app.store.open_writer("lib30", stream_info(), start_us, now_us=start_us)
    for p in synthetic_packets(start_us, 1.0, size=200, seed=3):
        w.write(p)
    return w.close().path


def test_clean_store_passes(app, capsys):
    record(app, "lib14", T0)
    code, out, _ = run(capsys, "check", "--full", "--config", str(app.config_path))
    assert code == 0 and "index and disk agree" in out and "1 indexed segment(s)" in out


def test_drift_is_reported_then_repaired_only_when_asked(app, capsys, monkeypatch):
    root = app.store.root
    ids = [record(app, "lib14", T0 + i * 60 * S_US) for i in range(4)]
    rel = {i: segments(app)[i][2] for i in ids}
    (root / rel[ids[0]]).unlink()  # missing
    with open(root / rel[ids[1]], "ab") as fh:  # size changed
        fh.write(b"xx")
    found = unindexed_segment(app, T0 + 3600 * S_US)  # sealed, never indexed
    junk = root / "lib30" / "2026-01-01" / "20260101T020000.000000Z.vseg"
    junk.write_bytes(b"VMSSEG\x00\x01 truncated")  # segment-shaped name, not a segment
    (root / "stray\x1b[31m.txt").write_text("x")  # unknown, with an escape sequence in its name
    with Session(app.engine) as s, s.begin():
        index.mark_deleting(s, [ids[2]])  # an interrupted deletion
    before = files(app)

    code, out, _ = run(capsys, "check", "--config", str(app.config_path))
    assert code == 1
    kinds = sorted(line.split()[0] for line in out.splitlines()[1:])
    assert kinds == ["deleting", "missing", "size", "unindexed", "unindexed", "unknown"]
    assert "--repair would" in out and "\x1b" not in out and "\\x1b" in out
    assert "-> --repair would move it to the quarantine folder" in out
    monkeypatch.setenv("VMS_LANG", "da")
    code, out, _ = run(capsys, "check", "--config", str(app.config_path))
    assert code == 1 and out.startswith("kontrol, hurtig (navne og størrelser): ")
    assert "-> --repair ville flytte den til karantænemappen" in out
    assert "-> --repair ville gøre den afbrudte sletning færdig" in out
    monkeypatch.setenv("VMS_LANG", "en")
    assert files(app) == before  # nothing changed without --repair

    code, out, _ = run(capsys, "check", "--repair", "--json", "--config", str(app.config_path))
    doc = json.loads(out)
    assert code == 0 and doc["repaired"] == 6 and doc["unrepaired"] == []
    code, out, _ = run(capsys, "check", "--full", "--config", str(app.config_path))
    assert code == 0, out
    now = segments(app)
    assert ids[0] not in now and ids[1] not in now and ids[2] not in now and ids[3] in now
    assert app.store.relpath(found) in {p for _c, _s, p in now.values()}  # authenticated and indexed
    assert len(os.listdir(root / layout.QUARANTINE)) == 3  # changed file, junk, stray: kept, not deleted
    with Session(app.engine) as s:
        reasons = sorted(r.reason for r in s.scalars(select(DeletionRecord)))
    assert reasons == ["missing", "quarantine"]  # the interrupted deletion had its record already


def test_repair_leaves_held_footage_alone(app, capsys):
    root = app.store.root
    ids = [record(app, "lib14", T0 + i * 60 * S_US) for i in range(3)]
    rel = {i: segments(app)[i][2] for i in ids}
    with Session(app.engine) as s, s.begin():  # a hold over the first two segments (an incident)
        index.add_hold(s, camera_id="lib14", start_us=T0, end_us=T0 + 90 * S_US, reason="ticket 7", now_us=T0)
    (root / rel[ids[0]]).unlink()  # held and missing
    with open(root / rel[ids[1]], "ab") as fh:  # held and changed
        fh.write(b"xx")
    (root / rel[ids[2]]).unlink()  # unheld and missing: repaired as usual

    code, out, _ = run(capsys, "check", "--repair", "--json", "--config", str(app.config_path))
    doc = json.loads(out)
    assert code == 1 and doc["repaired"] == 1, out
    assert sorted(u["kind"] for u in doc["unrepaired"]) == ["missing", "size"]
    assert all("legal hold" in u["reason"] for u in doc["unrepaired"]), doc["unrepaired"]
    now = segments(app)
    assert ids[0] in now and ids[1] in now and ids[2] not in now  # held rows (and their keys) are kept
    assert (root / rel[ids[1]]).exists() and not (root / layout.QUARANTINE).exists()
    with Session(app.engine) as s:
        assert app.keys.key_for_segment(s, ids[1])  # the held segment's key survives


def test_full_check_authenticates_every_chunk(app, capsys):
    seg = record(app, "lib14", T0, seconds=3.0)
    path = app.store.root / segments(app)[seg][2]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    path.write_bytes(bytes(data))
    assert run(capsys, "check", "--config", str(app.config_path))[0] == 0  # names and sizes agree
    code, out, _ = run(capsys, "check", "--full", "--json", "--config", str(app.config_path))
    problems = json.loads(out)["problems"]
    assert code == 1 and [p["kind"] for p in problems] == ["corrupt"]
    assert "authentication failed" in problems[0]["detail"] and "chunk" in problems[0]["detail"]


def test_bad_config_is_refused_with_exit_2(tmp_path, capsys):
    cfg = tmp_path / "vms.toml"
    cfg.write_text('node_id = "n"\n[janitor]\nsweep_interval_s = 3600\n')
    code, _, err = run(capsys, "check", "--config", str(cfg))
    assert code == 2 and "janitor.sweep_interval_s" in err and "60" in err
    cfg.write_text('[janitor]\nsweep_every = 5\n')
    code, _, err = run(capsys, "janitor", "--once", "--config", str(cfg))
    assert code == 2 and "janitor.sweep_every" in err and "unknown key" in err
    code, _, err = run(capsys, "retention", "report", "--config", str(tmp_path / "absent.toml"))
    assert code == 2 and "does not exist" in err
