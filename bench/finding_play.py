"""First fragment after a seek: the continuous player in the middle of a 2-hour window.

    .venv/bin/python -m bench.finding_play [--minutes 120] [--mbps 4] [--seeks 12] [--dir DIR]

(``python -m bench.finding`` runs it too, with the defaults, for its ``play_first_fragment_ms``.)

The real app runs as ``vms serve --no-recorder --no-janitor`` (uvicorn, one process) on an appliance whose
camera holds ``--minutes`` of 1080p15 footage at ``--mbps`` with a keyframe every 2 s in 60 s segments (as
bench.playback_memory stores it: the parameter sets of a real 1080p x264 stream and random payloads;
playback remuxes, it never decodes).  An operator's approved ticket covers the window; one play is
started (``POST /api/tickets/{id}/plays``).

``play_first_fragment_ms``: from sending a seek's fragment request (``GET .../fragment?at=`` the middle of
the window, 1 s wanted: a GOP or two, as the player asks right after a seek) to the last byte of the fragment received, the median of
``--seeks`` seeks spread over two minutes around the middle (each a different GOP, so nothing is reused);
``_max`` the slowest.  Baseline, same run and server: the page-reload player that this replaces,
``GET .../play?start=&end=`` of the ``api.playback_max_s`` span from the same moments, time to its first
byte (``reload_play_first_byte_ms``, the median).  Target: under 500 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.api import Database, bearer_token, call, free_port, iso, make_appliance, serving
from bench.common import emit, machine
from bench.playback_memory import store_footage

TARGET_MS = 500
PLAYBACK_MAX_S = 600  # the configuration's default


def _timed(url: str, token: str, *, whole: bool) -> tuple[float, int, dict]:
    """(ms to the last byte, or to the first when not ``whole``; bytes read; headers)."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        if not whole:
            first = r.read(1)
            ms = (time.perf_counter() - t) * 1000
            n = len(first)
            while piece := r.read(1 << 20):  # drain, untimed
                n += len(piece)
            return ms, n, dict(r.headers)
        data = r.read()
        return (time.perf_counter() - t) * 1000, len(data), dict(r.headers)


def measure(minutes: float = 120, mbps: float = 4, seeks: int = 12, work_dir: Path | None = None) -> dict:
    """The figures (``play_first_fragment_ms`` and its baseline); bench.finding calls this too."""
    scratch = Path(tempfile.mkdtemp(prefix="vms-bench-seek-", dir=work_dir))
    db = Database("sqlite", scratch, "seek")
    port = free_port()
    cfg = make_appliance(scratch, "seek", db, api={"host": "127.0.0.1", "port": port,
                                                    "playback_max_s": PLAYBACK_MAX_S})
    span_us = int(minutes * 60e6)
    start_us = (time.time_ns() // 1000) - span_us - 3600_000_000
    t = time.perf_counter()
    store_footage(cfg, scratch, minutes, mbps, start_us)
    store_s = time.perf_counter() - t
    try:
        with serving(cfg, port, scratch) as (base, _proc):
            figures = _seeks(base, start_us, span_us, seeks)
    finally:
        db.drop()
        shutil.rmtree(scratch, ignore_errors=True)
    return figures | {"play_store_s": round(store_s, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120)
    ap.add_argument("--mbps", type=float, default=4)
    ap.add_argument("--seeks", type=int, default=12)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    figures = measure(args.minutes, args.mbps, args.seeks, args.dir)
    print(f"{args.minutes:g} min of 1080p15 at {args.mbps:g} Mbit/s; seek to the middle -> first fragment "
          f"{figures['play_first_fragment_ms']:.0f} ms median, {figures['play_first_fragment_ms_max']:.0f} ms max "
          f"({figures['fragment_kb']:.0f} KiB); page-reload player's first byte "
          f"{figures['reload_play_first_byte_ms']:.0f} ms (target {TARGET_MS} ms)")
    emit({"bench": "finding_play", "minutes": args.minutes, "mbps": args.mbps, "seeks": args.seeks, **figures,
          "target_ms": TARGET_MS, "machine": machine()})


def _seeks(base: str, start_us: int, span_us: int, seeks: int) -> dict:
    olga, mia = bearer_token(base, "olga"), bearer_token(base, "mia")
    body = {"cameras": ["cam00"], "start": iso(start_us), "end": iso(start_us + span_us),
            "description": "bench", "purpose": "bench", "legal_basis": "bench", "action": "view",
            "recipient": "internal"}
    status, ticket, _ = call(base, "POST", "/api/tickets", body, {"Authorization": f"Bearer {olga}"})
    assert status == 201, (status, ticket)
    tid = ticket["id"]
    status, _, _ = call(base, "POST", f"/api/tickets/{tid}/approve", {"reason": "bench"},
                        {"Authorization": f"Bearer {mia}"})
    assert status == 200
    status, play, _ = call(base, "POST", f"/api/tickets/{tid}/plays", {"cameras": ["cam00"]},
                           {"Authorization": f"Bearer {olga}"})
    assert status == 201, (status, play)
    middle = start_us + span_us // 2
    moments = [middle + (k - seeks // 2) * 10_300_000 for k in range(seeks)]  # 10.3 s apart: new GOPs
    fragment_ms, sizes, reload_ms = [], [], []
    for at in moments:
        ms, n, headers = _timed(f"{base}/api/tickets/{tid}/cameras/cam00/fragment?play={play['id']}"
                                f"&at={iso(at)}&span_s=1", olga, whole=True)
        assert headers.get("content-type") == "video/mp4" and n > 0, headers
        fragment_ms.append(ms)
        sizes.append(n)
    for at in moments[: max(3, seeks // 3)]:
        ms, _, _ = _timed(f"{base}/api/tickets/{tid}/cameras/cam00/play?start={iso(at + 1)}"
                          f"&end={iso(min(at + PLAYBACK_MAX_S * 1_000_000, start_us + span_us))}", olga, whole=False)
        reload_ms.append(ms)
    return {"play_first_fragment_ms": round(statistics.median(fragment_ms), 1),
            "play_first_fragment_ms_max": round(max(fragment_ms), 1),
            "fragment_kb": round(statistics.median(sizes) / 1024, 1),
            "reload_play_first_byte_ms": round(statistics.median(reload_ms), 1)}


if __name__ == "__main__":
    main()
