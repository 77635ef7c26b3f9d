"""Finding the incident: what activity costs the recorder, and how fast timelines, thumbnails and searches are.

    python -m bench.finding [--record-seconds 20] [--search-minutes 30]

One 1080p15 ~4 Mbit/s H.264 clip with a keyframe every 2 s (testkit.clips, ``noise`` pattern, 20 s, made once
and cached in ``$TMPDIR/vms-bench``).

* ``activity_cpu_share``: the recorder (in this process, ``vms.recording.recorder.Recorder``) records the clip
  looping on GStreamer's RTSP server for ``--record-seconds`` of steady state; its CPU is this process's
  CPU over that window (nothing else runs in it meanwhile).  The activity part of that CPU is measured on
  the same run's packets: every packet recorded is read back and fed through the recorder's meter (its
  ``start``/``add``/``finish`` calls, as the recorder makes them), and each segment's record is sealed again
  (HKDF + AES-GCM), the best of five passes.  Share = activity CPU / (recorder CPU - activity CPU).  The
  insert of one 46-byte row per segment into the index is not counted (one per minute).
* ``timeline_24h_ms``: :func:`vms.finding.timeline.levels` over 24 h of one camera (1,440 one-minute
  segments with activity records, SQLite) at one level a minute (a heat strip); ``timeline_24h_1s_ms`` at
  one level a second (86,400).  Best of seven, wall time and (``*_cpu_ms``) the thread's CPU time (on a
  machine others share, the wall time includes waiting for a core).
* ``thumb_first_ms``: the first thumbnail of a moment 19 s into a 20-s segment, cold cache (segment
  decrypted up to there, keyframe decoded, scaled to 320 px, JPEG); wall time, median of five fresh
  caches.
* ``search_x_realtime``: seconds of footage a region search scans per CPU second of its thread
  (``time.thread_time``), over ``--search-minutes`` of the clip stored back to back.

* ``play_first_fragment_ms``: a seek to the middle of a ``--play-minutes`` (2-hour) window of 1080p15
  4 Mbit/s footage to the first fragment delivered, through ``vms serve`` (:mod:`bench.finding_play`, which
  also gives the page-reload player's first byte as its baseline, ``reload_play_first_byte_ms``).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import finding_play
from bench.common import cpu_s, emit, machine

CLIP_S = 20
WIDTH, HEIGHT, FPS, GOP, BITRATE = 1920, 1080, 15, 30, 4_000_000


def clip_path() -> Path:
    from testkit.clips import make_clip

    path = Path(tempfile.gettempdir()) / "vms-bench" / f"finding-{WIDTH}x{HEIGHT}-{BITRATE}-gop{GOP}-{CLIP_S}s.mp4"
    if not path.exists():
        print(f"making {path.name} (once) ...", flush=True)
        make_clip(path, seconds=CLIP_S, width=WIDTH, height=HEIGHT, fps=FPS, bitrate=BITRATE, pattern="noise", gop=GOP)
    return path


def _app(work: Path, name: str, cameras: list[dict]):
    from testkit.appliance import make_appliance
    from vms.core.clock import Clock

    return make_appliance(work / name, cameras, clock=Clock())


# ---------------------------------------------------------------- activity's share of the recorder


def activity_share(work: Path, clip: Path, seconds: float) -> dict:
    from storage.format import activity as record_format
    from testkit.recording import recording, stored, wait_for
    from testkit.rtsp_server import Mount, RtspServer, unavailable_reason
    from vms.recording.activity import ActivityMeter
    from vms.recording.recorder import Recorder

    if (reason := unavailable_reason()) is not None:
        raise SystemExit(f"bench.finding needs the RTSP test server: {reason}")
    server = RtspServer({"/cam": Mount(clip, loop=True, shared=True)}, log_path=work / "rtsp.log").start()
    try:
        app = _app(work, "rec", [{"id": "cam", "source": server.url("/cam"), "retain_days": 7,
                                  "segment_seconds": 10}])
        rec = Recorder(app)
        with recording(rec):
            wait_for(lambda: rec.cameras["cam"].stats.packets > 2 * FPS, 60, "the stream")
            time.sleep(2)
            c0, w0, p0 = cpu_s(), time.monotonic(), rec.cameras["cam"].stats.packets
            time.sleep(seconds)
            recorder_cpu, wall = cpu_s() - c0, time.monotonic() - w0
            packets = rec.cameras["cam"].stats.packets - p0
    finally:
        server.stop()
    segs = stored(app, "cam")
    all_packets = [p for _, ps in segs for p in ps]
    key = record_format.activity_key(bytes(32), "cam", "2026-01-01", 0)
    best = float("inf")
    for _ in range(5):
        meter = ActivityMeter()
        t0 = time.thread_time()
        for ref, ps in segs:
            meter.start(ps[0].wall_us)
            add = meter.add
            for p in ps:
                add(p.wall_us, len(p.data), p.keyframe)
            levels = meter.finish()
            record_format.seal(record_format.activity_key(key, "cam", "2026-01-01", 0), ref.start_us, levels)
        best = min(best, time.thread_time() - t0)
    per_packet_s = best / max(1, len(all_packets))
    extra = per_packet_s * packets
    return {"recorded_packets": packets, "recorder_cpu_share_of_core": recorder_cpu / wall,
            "activity_us_per_packet": per_packet_s * 1e6, "activity_cpu_share": extra / (recorder_cpu - extra)}


# ---------------------------------------------------------------- timeline of a day


def timeline_day(work: Path) -> dict:
    from storage.format.packets import Packet
    from testkit.appliance import stream_info
    from vms.finding import timeline

    app = _app(work, "day", [{"id": "cam", "source": "rtsp://127.0.0.1:1/x", "retain_days": 7}])
    now = app.clock.now_us()
    day0 = now - now % 86_400_000_000 - 86_400_000_000  # yesterday, 00:00 UTC
    info = stream_info()
    for m in range(1440):
        t = day0 + m * 60_000_000
        w = app.store.open_writer("cam", info, t, now_us=now)
        w.write(Packet(b"\0" * 64, t, 0, 0, True, 1_350_000 * 60 // 15))
        app.store.index_sealed(w.close([(m + i) % 15 for i in range(60)]))
    out = {}
    for key, step in (("timeline_24h_ms", 60), ("timeline_24h_1s_ms", 1)):
        walls, cpus = [], []
        for _ in range(7):
            t0, c0 = time.perf_counter(), time.thread_time()
            levels = timeline.levels(app, "cam", day0, day0 + 86_400_000_000, step)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.thread_time() - c0)
        assert len(levels) == 86_400 // step and all(v is not None for v in levels)
        out[key], out[key.replace("_ms", "_cpu_ms")] = min(walls) * 1000, min(cpus) * 1000
    return out


# ---------------------------------------------------------------- thumbnails and search over stored footage


def stored_footage(work: Path, clip: Path, minutes: float):
    from testkit.footage import read_clip, shift, store_packets

    app = _app(work, "search", [{"id": "cam", "source": "rtsp://127.0.0.1:1/x", "retain_days": 7}])
    start = app.clock.now_us() - 2 * 3_600_000_000
    info, packets = read_clip(clip, start)
    span_us = CLIP_S * 1_000_000
    ticks = round(CLIP_S / info.time_base)
    for i in range(int(minutes * 60 / CLIP_S)):
        store_packets(app, "cam", info, shift(packets, wall_us=i * span_us, ticks=i * ticks), segment_s=CLIP_S)
    return app, start, int(minutes * 60 / CLIP_S) * span_us


def thumb_first(app, start: int) -> dict:
    from vms.finding.thumbs import ThumbCache, _jpeg, _nearest

    times, size = [], 0
    for i in range(5):
        cache = ThumbCache()
        at = start + i * CLIP_S * 1_000_000 + 19_000_000
        t0 = time.perf_counter()
        kf = _nearest(app, "cam", at, start, at + 1)
        jpeg = _jpeg(kf)
        times.append(time.perf_counter() - t0)
        size = len(jpeg)
        cache.clear()
    return {"thumb_first_ms": statistics.median(times) * 1000, "thumb_bytes": size}


def search_speed(app, start: int, span_us: int) -> dict:
    from vms.finding.search import Region, Search, scan

    search = Search("bench", 1, "cam", 1, Region(0.25, 0.25, 0.5, 0.5), start, start + span_us, None)
    result: dict = {}

    def run():
        t0, w0 = time.thread_time(), time.perf_counter()
        result["state"] = scan(app, search)
        result["cpu"], result["wall"] = time.thread_time() - t0, time.perf_counter() - w0

    th = threading.Thread(target=run)
    th.start()
    th.join()
    assert result["state"] == "done"
    return {"search_footage_s": span_us / 1e6, "search_cpu_s": result["cpu"], "search_wall_s": result["wall"],
            "search_x_realtime": span_us / 1e6 / result["cpu"], "search_hits": len(search.hits)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.finding", description=__doc__.split("\n\n")[0])
    ap.add_argument("--record-seconds", type=float, default=20, help="steady-state seconds of recording")
    ap.add_argument("--search-minutes", type=float, default=30, help="minutes of footage a search scans")
    ap.add_argument("--play-minutes", type=float, default=120,
                    help="minutes of 1080p footage the seek of play_first_fragment_ms lands in the middle of (0: skip)")
    ap.add_argument("--work-dir", type=Path, default=Path("/var/tmp"))
    args = ap.parse_args(argv)
    clip = clip_path()
    work = Path(tempfile.mkdtemp(prefix="vms-bench-finding-", dir=args.work_dir))
    try:
        figures: dict = {"machine": machine(), "clip": f"{WIDTH}x{HEIGHT} {FPS} fps {BITRATE // 1000} kbit/s, "
                                                        f"keyframe every {GOP // FPS} s"}
        figures.update(activity_share(work, clip, args.record_seconds))
        figures.update(timeline_day(work))
        app, start, span_us = stored_footage(work, clip, args.search_minutes)
        figures.update(thumb_first(app, start))
        figures.update(search_speed(app, start, span_us))
        if args.play_minutes > 0:  # the continuous player's figure (bench/finding_play.py: vms serve, 2 h of 1080p)
            figures.update(finding_play.measure(args.play_minutes, work_dir=args.work_dir))
        else:
            figures["play_first_fragment_ms"] = None
        emit(figures)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
