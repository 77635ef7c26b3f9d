"""Index queries on a full-size SQLite index.

    .venv/bin/python -m bench.index [--cameras 64] [--days 30] [--dir DIR]

Builds an index of CAMERAS x DAYS x 60-second segments (default about 2.8 M
rows) through the real migrations, then times the timeline query (one camera,
one day) and the expired-segments query (one camera, the sweep's query), each
the median of repeated runs with a warm cache, and reports the database size
per recording-minute.  Targets from the foundation issue: both queries under
20 ms, at most 1 KB per recording-minute.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from bench.common import emit
from storage.sql import index
from storage.sql.db import open_database
from storage.sql.models import Camera, DayKey, HourKey, Segment
from storage.store import segment_relpath

MIN_US = 60_000_000
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def build(url: str, cameras: int, days: int) -> int:
    engine = open_database(url)
    rows = 0
    with engine.begin() as conn:
        conn.execute(insert(Camera), [
            {"id": f"cam{c:02d}", "node_id": "node1", "created_us": T0, "retain_days": 30} for c in range(cameras)
        ])
        keys = []
        for c in range(cameras):
            for d in range(days):
                day = datetime.fromtimestamp((T0 + d * DAY_US) / 1e6, UTC).strftime("%Y-%m-%d")
                keys.append({"camera_id": f"cam{c:02d}", "day": day, "wrapped": os.urandom(60),
                             "master_id": "0123456789abcdef", "created_us": T0})
        conn.execute(insert(DayKey), keys)
    key_ids = {}
    with engine.connect() as conn:
        for kid, cam, day in conn.execute(text("SELECT id, camera_id, day FROM day_keys")):
            key_ids[(cam, day)] = kid
    with engine.begin() as conn:  # every camera-day's 24 hour keys, wrapped by its day key
        conn.execute(insert(HourKey), [
            {"day_key_id": key_ids[(f"cam{c:02d}", datetime.fromtimestamp((T0 + d * DAY_US) / 1e6, UTC)
                                    .strftime("%Y-%m-%d"))],
             "hour": h, "camera_id": f"cam{c:02d}", "start_us": T0 + d * DAY_US + h * HOUR_US,
             "wrapped": os.urandom(60), "created_us": T0}
            for c in range(cameras) for d in range(days) for h in range(24)])
    for d in range(days):
        day = datetime.fromtimestamp((T0 + d * DAY_US) / 1e6, UTC).strftime("%Y-%m-%d")
        batch = []
        for c in range(cameras):
            cam = f"cam{c:02d}"
            kid = key_ids[(cam, day)]
            for m in range(1440):
                start = T0 + d * DAY_US + m * MIN_US + random.randrange(0, 200_000)
                batch.append({"camera_id": cam, "node_id": "node1", "key_id": kid, "start_us": start,
                              "end_us": start + MIN_US - 66_666, "size_bytes": 30_000_000 + random.randrange(99999),
                              "packets": 900, "path": segment_relpath(cam, start), "status": "sealed",
                              "recovered": False})
        with engine.begin() as conn:
            conn.execute(insert(Segment), batch)
        rows += len(batch)
        print(f"  built day {d + 1}/{days}: {rows} rows", flush=True)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return rows


def timed(fn, repeat: int = 50) -> float:
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=64)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-index-", dir=args.dir))
    try:
        db = scratch / "index.db"
        url = f"sqlite:///{db}"
        t = time.perf_counter()
        rows = build(url, args.cameras, args.days)
        build_s = time.perf_counter() - t
        size = db.stat().st_size
        engine = open_database(url)
        mid_day = T0 + (args.days // 2) * DAY_US
        cam = f"cam{min(7, args.cameras - 1):02d}"
        with Session(engine) as s:
            def tl():
                got = index.timeline(s, cam, mid_day, mid_day + DAY_US, max_segment_us=10 * MIN_US)
                assert 1439 <= len(got) <= 1441, len(got)

            def expired():  # the sweep's question: what has expired since the last sweep (one minute)
                got = index.expired_segments(s, cam, T0 + 2 * MIN_US)
                assert len(got) in (1, 2), len(got)

            def expired_day():  # a whole day expired at once (the appliance was off)
                got = index.expired_segments(s, cam, T0 + DAY_US, limit=2000)
                assert 1438 <= len(got) <= 1441, len(got)

            timeline_ms, expired_ms, expired_day_ms = timed(tl), timed(expired), timed(expired_day, 10)
        engine.dispose()
        emit({
            "rows": rows,
            "build_s": build_s,
            "db_bytes": size,
            "timeline_ms": timeline_ms,
            "expired_ms": expired_ms,
            "expired_day_ms": expired_day_ms,
            "index_bytes_per_minute": size / rows,
        })
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
