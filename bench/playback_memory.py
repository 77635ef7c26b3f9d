"""Server memory per viewer: concurrent 10-minute plays of 1080p 4 Mbit/s footage.

    .venv/bin/python -m bench.playback_memory [--viewers 8] [--minutes 10] [--mbps 4] [--dir DIR]

The real app runs as ``vms serve --no-recorder --no-janitor`` (uvicorn, one process) on an appliance
whose camera holds ``--minutes`` of 1080p footage at ``--mbps`` (15 fps, a keyframe every 2 s; the
packets carry the parameter sets of a real 1080p x264 stream and random payloads: playback remuxes,
it never decodes).  An operator's approved ticket covers it.  ``--viewers`` clients then play the
whole span at once through ``GET /api/tickets/{id}/cameras/{cam}/play`` (each its own span, so no
clip is shared through the cache), reading the answers to the end in 64 KiB pieces.

Figures: the server's resident memory (``VmRSS`` of the process, sampled every 20 ms) before the
plays and at its peak during them: ``extra_mb_per_viewer`` = (peak - before) / viewers, against the
target of 64 MB.  ``clip_mb`` is what one play's MP4 weighs: what the earlier design held in memory
per viewer (the whole clip, plus a copy for a full answer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from sqlalchemy.orm import Session

from bench.api import PASSWORD, Database, bearer_token, call, free_port, iso, make_appliance, serving
from bench.common import emit, machine
from storage.format.packets import Packet
from storage.sql import index
from testkit.clips import make_clip
from testkit.footage import read_clip, store_packets
from vms.access import users
from vms.appliance import Appliance

FPS, GOP = 15, 30
TARGET_MB = 64


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def store_footage(cfg: Path, scratch: Path, minutes: float, mbps: float, start_us: int) -> None:
    stream, _ = read_clip(make_clip(scratch / "params.mp4", seconds=0.2, width=1920, height=1080).path, 0)
    size = int(mbps * 1e6 / 8 / FPS)
    app = Appliance.open(cfg)
    try:
        pw = users.hash_password(PASSWORD)
        with Session(app.engine) as s, s.begin():
            for name, role in (("olga", "operator"), ("mia", "manager")):
                index.add_user(s, name, role=role, password_hash=pw, now_us=app.clock.now_us(), must_change=False)
        step_us, ticks = 1_000_000 // FPS, 90_000 // FPS
        payload = os.urandom(size + 4096)
        for minute in range(int(minutes)):  # one minute at a time: bounded memory here too
            packets = []
            for j in range(60 * FPS):
                i = minute * 60 * FPS + j
                data = b"\x00\x00\x00\x01\x65" if i % GOP == 0 else b"\x00\x00\x00\x01\x41"
                data += payload[i % 4096 : i % 4096 + size]
                packets.append(Packet(data, start_us + i * step_us, i * ticks, i * ticks, i % GOP == 0, ticks))
            store_packets(app, "cam00", stream, packets, segment_s=60)
    finally:
        app.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--mbps", type=float, default=4)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="vms-bench-play-", dir=args.dir))
    db = Database("sqlite", scratch, "play")
    port = free_port()
    cfg = make_appliance(scratch, "play", db, api={"host": "127.0.0.1", "port": port, "playback_max_s": 3600})
    span_us = int(args.minutes * 60e6)
    start_us = (time.time_ns() // 1000) - span_us - 3600_000_000
    t = time.perf_counter()
    store_footage(cfg, scratch, args.minutes, args.mbps, start_us)
    store_s = time.perf_counter() - t

    try:
        with serving(cfg, port, scratch) as (base, proc):
            peak, sizes, before, plays_s = _plays(base, proc, start_us, span_us, args, scratch)
    finally:
        db.drop()
        shutil.rmtree(scratch, ignore_errors=True)
    extra = (peak - before) / args.viewers
    print(f"{args.viewers} viewers x {args.minutes:g} min at {args.mbps:g} Mbit/s: clip {sizes[0] / 2**20:.0f} MiB "
          f"each; server RSS {before:.0f} -> peak {peak:.0f} MiB; {extra:.1f} MiB extra per viewer "
          f"(target {TARGET_MB}); all plays done in {plays_s:.1f} s")
    emit({"bench": "playback_memory", "viewers": args.viewers, "minutes": args.minutes, "mbps": args.mbps,
          "clip_mb": round(sizes[0] / 2**20, 1), "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1),
          "extra_mb_per_viewer": round(extra, 1), "target_mb_per_viewer": TARGET_MB, "plays_s": round(plays_s, 1),
          "store_s": round(store_s, 1), "machine": machine()})


def _plays(base: str, proc, start_us: int, span_us: int, args, scratch: Path):
    """Approve a ticket, play the span with ``args.viewers`` clients at once while sampling the server's RSS;
    returns (peak MiB, clip sizes, RSS before MiB, seconds)."""
    olga, mia = bearer_token(base, "olga"), bearer_token(base, "mia")
    body = {"cameras": ["cam00"], "start": iso(start_us), "end": iso(start_us + span_us + 1_000_000),
            "description": "bench", "purpose": "bench", "legal_basis": "bench", "action": "view",
            "recipient": "internal"}
    status, ticket, _ = call(base, "POST", "/api/tickets", body, {"Authorization": f"Bearer {olga}"})
    assert status == 201, (status, ticket)
    status, _, _ = call(base, "POST", f"/api/tickets/{ticket['id']}/approve", {"reason": "bench"},
                        {"Authorization": f"Bearer {mia}"})
    assert status == 200
    time.sleep(1.0)
    before = rss_mb(proc.pid)
    peak, done, sizes, errors = [before], threading.Event(), [], []

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(proc.pid))
            time.sleep(0.02)

    def play(v: int) -> None:
        # each viewer its own span (one frame shorter per viewer), so no clip is shared via the cache
        end = start_us + span_us - v * 66_667
        url = (f"{base}/api/tickets/{ticket['id']}/cameras/cam00/play?start={iso(start_us)}&end={iso(end)}")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {olga}"})
        try:
            n = 0
            with urllib.request.urlopen(req, timeout=600) as r:
                while piece := r.read(64 << 10):
                    n += len(piece)
            sizes.append(n)
        except Exception as exc:  # a failed play is no figure
            errors.append(repr(exc))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    viewers = [threading.Thread(target=play, args=(v,)) for v in range(args.viewers)]
    for th in viewers:
        th.start()
    for th in viewers:
        th.join()
    plays_s = time.perf_counter() - t
    done.set()
    sampler.join()
    if errors or len(sizes) != args.viewers:
        raise SystemExit(f"plays failed: {errors}\n{(scratch / 'serve.log').read_text()[-3000:]}")
    return peak[0], sizes, before, plays_s


if __name__ == "__main__":
    main()
