"""The door log: ingest rate, and the two lookups over a full 14 days.

    .venv/bin/python -m bench.doorlog [--rows 1000000] [--days 14] [--db sqlite|postgresql] [--dir DIR]

Builds a real appliance (migrations, master key, audit key), writes ROWS passages spread over DAYS days at 8
doors by 5,000 people (fake CPR numbers) as one CSV file per day in the documented format, and imports them
through the use case the inbox watch calls (parse, seal and keyed-hash under the day key, insert, audit).
Then, inside an approved ticket covering every door and the whole span, times (median of 25, warm cache):

* ``lookup_door_30min_ms``: who passed one door in a 30-minute span (the service call: policy, query,
  decryption of every identifier, the audit entry);
* ``lookup_id_14d_ms``: when one identifier passed any door in the 14 days (a keyed hash per day key).

Floors measured in the same run: ``parse_rows_per_s`` (CSV reading alone), ``seal_rows_per_s`` (the keyed
hash per distinct identifier and the AES-GCM seal per entry of one day, as the import does them) and
``insert_rows_per_s`` (the database alone: one day's entries, sealed beforehand, inserted into the full table
and rolled back, best of three) bound what ingest can reach; ``ingest_floor_rows_per_s`` is the three one
after the other, the most the import (which does them one after the other) can do on the machine then.
``lookup_*_query_ms`` is the SQL alone, without the policy, decryption and audit entry.  Targets (issue 17):
ingest >= 50,000 rows/s, door lookup < 50 ms, identifier lookup < 200 ms.  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bench.common import emit, machine
from storage.keys.doorlog_keys import DoorlogKeys
from storage.sql import doorlog as q
from storage.sql import index
from testkit.appliance import make_appliance
from testkit.doorlog import csv_default, random_rows
from vms.access import tickets, users
from vms.access.audit import SYSTEM
from vms.access.auth import SESSION, Principal
from vms.core.clock import FakeClock
from vms.doorlog import csvfile, ingest, lookup

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MIN_US, DAY_US = 60_000_000, 86_400_000_000
PG_URL = os.environ.get("VMS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_schema() -> tuple[str, object, str]:
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", admin, schema


def _principal(app, name: str, role: str) -> Principal:
    users.add_user(app.engine, app.clock, users.CONSOLE, name, role)
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
    return Principal(user.id, name, role, 0, SESSION, False)


def _median_ms(fn, n: int = 25) -> float:
    fn()  # warm
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run(workdir: Path, rows: int, days: int, db: str) -> dict:
    clock = FakeClock(T0 + days * DAY_US + 60 * 1_000_000)
    url, admin, schema = _pg_schema() if db == "postgresql" else (None, None, None)
    app = make_appliance(workdir / "appliance", [{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}],
                         database_url=url, clock=clock, doorlog={"inbox": "inbox", "retain_days": days + 1},
                         legal_max_retain_days=max(30, days + 1))
    try:
        return _measure(app, rows, days, db)
    finally:
        app.close()
        if admin is not None:
            import sqlalchemy as sa

            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _measure(app, rows: int, days: int, db: str) -> dict:
    passages = random_rows(rows, T0 + 1, days * DAY_US - 1)
    per_day = [[p for p in passages if T0 + d * DAY_US <= p[0] < T0 + (d + 1) * DAY_US] for d in range(days)]
    files = [csv_default(chunk) for chunk in per_day]
    cfg = app.config.doorlog
    out: dict = {"machine": machine(), "db": db, "rows": rows, "days": days}

    t0 = time.perf_counter()
    parsed = [csvfile.parse(f, cfg, tz=ZoneInfo("Europe/Copenhagen"), now_us=app.clock.now_us()) for f in files]
    out["parse_rows_per_s"] = rows / (time.perf_counter() - t0)
    with Session(app.engine) as s:
        key = DoorlogKeys(app.keys.keyring).for_day(s, "2026-01-01", now_us=app.clock.now_us())
    idents = [p.identifier for p in parsed[0].passages]
    t0 = time.perf_counter()  # what the import does per day: a keyed hash per person, a seal per entry
    {ident: key.digest(ident) for ident in set(idents)}
    key.seal_many(idents)
    out["seal_rows_per_s"] = len(idents) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    added = sum(ingest.import_file(app, f, name=f"day{d}.csv", source="inbox", actor=SYSTEM).added
                for d, f in enumerate(files))
    out["ingest_s"] = time.perf_counter() - t0
    out["ingest_rows_per_s"] = rows / out["ingest_s"]
    out["rows_stored"] = added

    olga, mia = _principal(app, "olga", "operator"), _principal(app, "mia", "manager")
    with Session(app.engine) as s:
        doors = q.doors(s)
    t = tickets.file_ticket(app, olga, cameras=[], doors=doors, door_id_lookup=True, start_us=T0,
                            end_us=T0 + days * DAY_US, description="benchmark", purpose="benchmark",
                            legal_basis="benchmark", action="view", recipient="internal")
    tickets.decide(app, mia, t.id, approve=True, reason="benchmark")
    spans = [T0 + (k * 7919 * MIN_US) % (days * DAY_US - 30 * MIN_US) for k in range(26)]
    found = []

    def door_lookup(i: int = 0) -> None:
        found.append(len(lookup.at_doors(app, olga, t.id, doors=["door-3"], start_us=spans[i],
                                         end_us=spans[i] + 30 * MIN_US)))

    out["lookup_door_30min_ms"] = _median_ms(door_lookup)
    out["door_30min_passages"] = int(statistics.median(found))

    def door_query(i: int = 0) -> None:
        with Session(app.engine) as s:
            q.entries_at_doors(s, ["door-3"], spans[i], spans[i] + 30 * MIN_US, limit=lookup.MAX_ROWS)

    out["lookup_door_query_ms"] = _median_ms(door_query)
    people = sorted({p[2] for p in passages})
    hits = []

    def id_lookup(i: int = 0) -> None:
        hits.append(len(lookup.of_identifier(app, olga, t.id, people[(i * 97) % len(people)])))

    out["lookup_id_14d_ms"] = _median_ms(id_lookup)
    out["id_14d_passages"] = int(statistics.median(hits))
    assert max(hits) > 0, "the identifier lookups found nothing: the benchmark measures the wrong thing"
    with Session(app.engine) as s:
        out["index_bytes_per_row"] = _bytes_per_row(app, s, rows)
    # last: on PostgreSQL its rolled-back rows leave dead tuples behind until a vacuum
    out["insert_rows_per_s"] = _insert_floor(app, parsed[0].passages)
    out["ingest_floor_rows_per_s"] = 1 / sum(1 / out[k] for k in ("parse_rows_per_s", "seal_rows_per_s",
                                                                   "insert_rows_per_s"))
    return out


def _insert_floor(app, passages) -> float:
    """Rows per second of the database's part alone: one day's entries, already sealed and hashed (each a
    microsecond after a stored one, so none is skipped), inserted as the import does into the full table,
    then rolled back."""
    best = float("inf")
    for _ in range(3):  # the best of three: a floor
        with Session(app.engine) as s:
            s.begin()
            key = DoorlogKeys(app.keys.keyring).for_day(s, "2026-01-01", now_us=app.clock.now_us())
            digests = {p.identifier: key.digest(p.identifier) for p in passages}
            sealed = key.seal_many([p.identifier for p in passages])
            rows = sorted(((key.key_id, p.at_us + 1, p.door_id, digests[p.identifier], box, 0)
                           for p, box in zip(passages, sealed, strict=True)), key=lambda r: r[3])
            t0 = time.perf_counter()
            assert q.insert_entries(s, rows, fresh_key=True) == len(rows)  # as for a new day's file
            best = min(best, time.perf_counter() - t0)
            s.rollback()
    return len(passages) / best


def _bytes_per_row(app, s, rows: int) -> float:
    if app.engine.dialect.name == "sqlite":
        path = Path(app.engine.url.database)
        s.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size / rows
    size = s.connection().exec_driver_sql(
        "SELECT pg_total_relation_size('doorlog_entries')").scalar()
    return size / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--dir", type=Path, default=None)
    a = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-doorlog-", dir=a.dir))
    try:
        figures = run(workdir, a.rows, a.days, a.db)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures["targets_met"] = (figures["ingest_rows_per_s"] >= 50_000 and figures["lookup_door_30min_ms"] < 50
                              and figures["lookup_id_14d_ms"] < 200)
    emit(figures)


if __name__ == "__main__":
    main()
