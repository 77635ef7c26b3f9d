"""The door log's ingest from the real watched inbox, on SQLite and PostgreSQL: a good file, a file with one bad
line (nothing imported, the line named), a duplicate, a Windows-1252 ';' export; files leave the inbox; no CPR
number in clear anywhere afterwards (database file or pg_dump, storage root, log, audit trail)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.keys.doorlog_keys import DoorlogKeys
from storage.sql import doorlog as q
from storage.sql.models import AuditEntry, DoorlogEntry
from testkit.doorlog import FAKE_CPR, FAKE_CPR_DIGITS, VENDOR_1252, csv_default, csv_vendor_1252
from vms.access.audit import SYSTEM
from vms.doorlog import ingest
from vms.doorlog.inbox import InboxWatch

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MIN_US = 60_000_000
DAY_US = 86_400_000_000


def make(appliance_factory, database_url, fake_clock, **doorlog):
    fake_clock.set(T0 + 2 * DAY_US)
    return appliance_factory([{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}],
                             database_url=database_url, doorlog={"inbox": "inbox", **doorlog})


def drop(app, name: str, data: bytes, watch: InboxWatch, timeout_s: float = 15.0):
    """Write a file into the inbox the way a controller should (temporary name, rename) and wait until the
    watch has taken it."""
    inbox = Path(app.config.doorlog.inbox)
    tmp = inbox / f".{name}.tmp"
    tmp.write_bytes(data)
    os.rename(tmp, inbox / name)
    n = len(watch.results)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not (inbox / name).exists() and len(watch.results) > n:
            return watch.results[-1]
        time.sleep(0.05)
    pytest.fail(f"the inbox watch did not take {name} within {timeout_s} s")


@pytest.fixture
def watched(appliance_factory, database_url, fake_clock):
    made = []

    def start(**doorlog):
        app = make(appliance_factory, database_url, fake_clock, **doorlog)
        watch = InboxWatch(app, settle_s=0.2, scan_interval_s=0.5)
        watch.start()
        made.append(watch)
        return app, watch

    yield start
    for w in made:
        w.stop()


def entries(app) -> int:
    with Session(app.engine) as s:
        return q.count_entries(s)


def rows(n: int, start_us: int = T0 + DAY_US + 20 * 3_600_000_000, ident: str = "card1234") -> list:
    return [(start_us + k * MIN_US, f"door-{k % 2}", ident) for k in range(n)]


def test_good_file_is_imported_and_leaves_the_inbox(watched):
    app, watch = watched()
    data = csv_default(rows(5) + [(T0 + DAY_US + 21 * 3_600_000_000, "main", FAKE_CPR)])
    result = drop(app, "export-1.csv", data, watch)
    assert (result.status, result.rows, result.added) == ("imported", 6, 6)
    assert entries(app) == 6
    assert list(Path(app.config.doorlog.inbox).iterdir()) == []
    with Session(app.engine) as s:
        assert q.doors(s) == ["door-0", "door-1", "main"]
        (f,) = q.recent_files(s)
        assert (f.status, f.rows, f.added) == ("imported", 6, 6)


def test_one_bad_line_rejects_the_whole_file_and_names_it(watched, caplog):
    app, watch = watched()
    good = csv_default(rows(3)).decode().splitlines()
    good.insert(3, f"2026-01-02T21:00:00,main,{FAKE_CPR}")  # line 4: no UTC offset
    caplog.set_level(logging.INFO)
    result = drop(app, "export-2.csv", ("\n".join(good) + "\n").encode(), watch)
    assert result.status == "rejected" and result.added == 0
    assert "line 4: time: has no UTC offset" in result.report
    assert entries(app) == 0  # nothing half-imported
    assert list(Path(app.config.doorlog.inbox).iterdir()) == []  # the clear-text file is gone too
    assert "line 4" in caplog.text and FAKE_CPR_DIGITS not in caplog.text.replace("-", "")
    with Session(app.engine) as s:
        (f,) = q.recent_files(s)
        assert f.status == "rejected" and "line 4" in f.report and "310771" not in f.report


def test_a_file_imported_twice_adds_nothing(watched):
    app, watch = watched()
    data = csv_default(rows(4))
    assert drop(app, "a.csv", data, watch).added == 4
    again = drop(app, "a-again.csv", data, watch)
    assert (again.status, again.added) == ("duplicate", 0)
    overlapping = csv_default(rows(6))  # another export covering the same four passages and two more
    third = drop(app, "b.csv", overlapping, watch)
    assert (third.status, third.rows, third.added) == ("imported", 6, 2)
    assert entries(app) == 6


def test_a_file_over_two_days_is_sealed_per_day_and_counted_once(appliance_factory, database_url, fake_clock):
    """One file, two UTC days (two keys, two bulk inserts in one transaction), a line repeated inside the file
    and a passage stored by an earlier file: each entry opens under its own day's key to its identifier, and
    ``added`` counts only what was new."""
    app = make(appliance_factory, database_url, fake_clock)
    midnight = T0 + DAY_US
    earlier = [(midnight - 3 * MIN_US, "main", "card0001")]
    assert ingest.import_file(app, csv_default(earlier), name="a.csv", source="inbox", actor=SYSTEM).added == 1
    passages = earlier + [(midnight + (k - 2) * MIN_US, f"door-{k % 3}", f"card{k % 4:04d}") for k in range(5)]
    passages.append(passages[-1])  # the same line twice in one export
    result = ingest.import_file(app, csv_default(passages), name="b.csv", source="inbox", actor=SYSTEM)
    assert (result.status, result.rows, result.added) == ("imported", 7, 5)
    keys = DoorlogKeys(app.keys.keyring)
    with Session(app.engine) as s:
        stored = s.execute(select(DoorlogEntry.at_us, DoorlogEntry.door_id, DoorlogEntry.key_id, DoorlogEntry.id_hash,
                                  DoorlogEntry.id_sealed).order_by(DoorlogEntry.at_us)).all()
        day_keys = {d: keys.for_day(s, d, now_us=fake_clock.now_us()) for d in ("2026-01-01", "2026-01-02")}
    by_id = {k.key_id: k for k in day_keys.values()}
    assert len(stored) == 6 and {r.key_id for r in stored} == set(by_id)
    for r in stored:
        key = by_id[r.key_id]
        assert key is day_keys[ingest.utc_day(r.at_us)]
        ident = key.open(r.id_sealed)
        assert r.id_hash == key.digest(ident)
        assert (r.at_us, r.door_id, ident.decode()) in {(t, d, f"card:{i.upper()}") for t, d, i in passages}
    assert len({r.id_sealed[:12] for r in stored}) == 6  # a nonce of its own per entry


def test_windows_1252_semicolon_export_with_a_column_mapping(watched):
    app, watch = watched(**VENDOR_1252)
    data = csv_vendor_1252(rows(3) + [(T0 + DAY_US, "Hovedindgang", FAKE_CPR)])
    assert "Dør".encode("cp1252") in data
    result = drop(app, "Adgangslog æøå.csv", data, watch)
    assert (result.status, result.added) == ("imported", 4), result.report
    with Session(app.engine) as s:
        assert "Hovedindgang" in q.doors(s)
    utf8 = drop(app, "wrong.csv", "Tidspunkt;Dør;CPR-nr.\n02-01-2026 10:00:00;x;card9999\n".encode(), watch)
    assert utf8.status == "rejected" and "line 1" in utf8.report and "Windows-1252" not in utf8.report


def _pg_dump(url: str) -> bytes:
    parts = urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    schema = parse_qs(parts.query)["options"][0].split("search_path=")[1]
    dsn = f"postgresql://{parts.netloc}{parts.path}"
    return subprocess.run(["pg_dump", "--schema", schema, dsn], check=True, capture_output=True, timeout=60).stdout


def test_no_cpr_number_in_clear_anywhere_after_import(watched, database_url, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    app, watch = watched()
    drop(app, "good.csv", csv_default(rows(3) + [(T0 + DAY_US + 3_600_000_000, "main", FAKE_CPR)]), watch)
    bad = csv_default([(T0 + DAY_US, "main", FAKE_CPR), (T0 + DAY_US, "bad door!", FAKE_CPR)])
    drop(app, f"export {FAKE_CPR_DIGITS}.csv", bad, watch)  # rejected, and a CPR in its very name
    forms = [FAKE_CPR_DIGITS.encode(), FAKE_CPR.encode()]
    app.engine.dispose()  # SQLite: everything in the main file and WAL on disk
    if database_url.startswith("sqlite"):
        haystacks = {p.name: p.read_bytes() for p in tmp_path.rglob("index.db*")}
    else:
        haystacks = {"pg_dump": _pg_dump(database_url)}
        assert b"doorlog_entries" in haystacks["pg_dump"]
    for p in Path(app.config.data_dir).rglob("*"):
        if p.is_file() and "index.db" not in p.name:
            haystacks[str(p)] = p.read_bytes()
    haystacks["log"] = caplog.text.encode()
    with Session(app.engine) as s:
        trail = list(s.scalars(select(AuditEntry)))
    assert any(e.action == "doorlog.import" for e in trail)
    haystacks["audit"] = "\n".join(f"{e.object} {e.outcome} {e.detail}" for e in trail).encode()
    for where, data in haystacks.items():
        for form in forms:
            assert form not in data, f"the CPR number appears in clear in {where}"


def test_the_janitor_process_watches_the_inbox(appliance_factory, database_url, fake_clock, tmp_path):
    """'vms janitor' (as 'vms serve' does where the janitor runs) imports a dropped file and empties the inbox."""
    import signal
    import subprocess
    import sys

    from vms.core.clock import Clock

    app = make(appliance_factory, database_url, fake_clock)
    inbox = Path(app.config.doorlog.inbox)
    now = Clock().now_us()
    proc = subprocess.Popen([sys.executable, "-m", "vms.cli", "janitor", "--config", str(app.config_path)],
                            cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not inbox.is_dir() and time.monotonic() < deadline:
            time.sleep(0.1)
        (inbox / ".x.tmp").write_bytes(csv_default([(now - 3_600_000_000, "main", FAKE_CPR)]))
        os.rename(inbox / ".x.tmp", inbox / "x.csv")
        while (inbox / "x.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not (inbox / "x.csv").exists(), "the janitor process did not take the file"
        assert entries(app) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert FAKE_CPR_DIGITS not in err
