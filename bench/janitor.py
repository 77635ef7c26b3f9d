"""Janitor sweeps on a full-size SQLite index.

    .venv/bin/python -m bench.janitor [--cameras 64] [--days 30] [--dir DIR]

Builds the index of bench.index (CAMERAS x DAYS x 60-second segments, about
2.8 M rows, all cameras keeping 30 days) through the real migrations, opens it
as an appliance and times :meth:`vms.retention.janitor.Janitor.sweep`:

* ``first_sweep_ms``: the first sweep of a fresh janitor, which also checks
  every day key and every hour key for shredding (it does this once per UTC day);
* ``idle_sweep_ms``: median sweep with nothing to delete (the steady state
  every ``sweep_interval_s``); baseline in the same run: the same sweep on an
  index of one day (``idle_sweep_small_ms``), to show that the cost does not
  grow with what is stored;
* ``day_sweep_s``: the sweep in which one whole day of every camera expires
  (CAMERAS x 1,440 segments: rows marked, records written, files unlinked,
  rows removed, hour keys and day keys shredded, WAL checkpointed).

Files: only the expiring day has files on disk (16 bytes each, one per row);
the other rows have none, because the sweep never looks at footage it keeps.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import tomli_w
from sqlalchemy import text

from bench.common import emit
from bench.index import DAY_US, T0, build
from storage.keys.keyring import write_key_file
from storage.sql.db import open_database
from vms.appliance import Appliance
from vms.core.clock import FakeClock
from vms.retention.janitor import Janitor


def make_appliance(scratch: Path, name: str, cameras: int, days: int, now_us: int) -> tuple[Appliance, int]:
    data = scratch / name
    data.mkdir(mode=0o700)
    url = f"sqlite:///{data / 'index.db'}"
    rows = build(url, cameras, days)
    cfg = {
        "node_id": "node1", "data_dir": ".", "database_url": url,
        "janitor": {"min_free_bytes": 0, "min_free_percent": 0},
        "cameras": [{"id": f"cam{c:02d}", "source": "rtsp://127.0.0.1:1/x", "retain_days": 30}
                    for c in range(cameras)],
    }
    (data / "vms.toml").write_text(tomli_w.dumps(cfg))
    write_key_file(data / "keys" / "master.key")
    return Appliance.open(data / "vms.toml", clock=FakeClock(now_us)), rows


def make_files(app: Appliance, before_us: int) -> int:
    """A 16-byte file for every row that started before ``before_us``."""
    engine = open_database(app.config.db_url)
    with engine.connect() as conn:
        paths = [p for (p,) in conn.execute(text("SELECT path FROM segments WHERE start_us < :t"), {"t": before_us})]
    engine.dispose()
    root = app.store.root
    made_dirs: set[str] = set()
    for rel in paths:
        d = rel.rsplit("/", 1)[0]
        if d not in made_dirs:
            (root / d).mkdir(parents=True, exist_ok=True)
            made_dirs.add(d)
        with open(root / rel, "wb") as fh:
            fh.write(b"\0" * 16)
    return len(paths)


def idle_ms(janitor: Janitor, repeat: int = 30) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        res = janitor.sweep()
        samples.append((time.perf_counter() - t) * 1000)
        assert res.segments_deleted == 0, res
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=64)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-janitor-", dir=args.dir))
    os.chmod(scratch, 0o700)
    idle_at = T0 + 30 * DAY_US - 1  # every segment is younger than 30 days
    try:
        small, _ = make_appliance(scratch, "small", args.cameras, 1, idle_at)
        small_janitor = Janitor(small)
        small_janitor.sweep()
        idle_small = idle_ms(small_janitor)
        small.close()

        t = time.perf_counter()
        app, rows = make_appliance(scratch, "full", args.cameras, args.days, idle_at)
        build_s = time.perf_counter() - t
        files = make_files(app, T0 + DAY_US)
        janitor = Janitor(app)
        t = time.perf_counter()
        janitor.sweep()
        first_ms = (time.perf_counter() - t) * 1000
        idle_full = idle_ms(janitor)

        app.clock.set(T0 + 31 * DAY_US - 1)  # day 1 of every camera has expired
        t = time.perf_counter()
        res = janitor.sweep()
        day_s = time.perf_counter() - t
        left = sum(len(fs) for _d, _s, fs in os.walk(app.store.root))
        assert left == 0, f"{left} files left"
        assert len(res.shredded) == args.cameras, res.shredded
        assert len(res.shredded_hours) == 24 * args.cameras, len(res.shredded_hours)
        idle_after = idle_ms(janitor)
        app.close()
        emit({
            "segments": rows,
            "build_s": build_s,
            "files": files,
            "first_sweep_ms": first_ms,
            "idle_sweep_ms": idle_full,
            "idle_sweep_small_ms": idle_small,
            "idle_sweep_after_ms": idle_after,
            "day_sweep_s": day_s,
            "segments_deleted": res.segments_deleted,
            "day_keys_shredded": len(res.shredded),
            "hour_keys_shredded": len(res.shredded_hours),
            "delete_us_per_segment": day_s * 1e6 / max(1, res.segments_deleted),
        })
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
