"""Recorder vs. the ffmpeg stream-copy baseline, on the real RTSP server.

    python -m bench.recorder --streams N --seconds S

N looping mounts of one 1080p15 ~4 Mbit/s H.264 clip (generated once, cached)
on GStreamer's RTSP server (testkit/rtsp_server.py), one client per mount.
Phase 1 records them with ``vms record`` (one process, every stream, encrypted
segments, SQLite index); phase 2 with one ``ffmpeg -rtsp_transport tcp -i URL -c
copy -f segment -segment_time 60`` process per stream, as stream-copy NVRs do.
Both phases run S seconds of steady state after every stream has started.
Phase 3 measures the floor under the recorder: OpenCV's FFmpeg capture opened
as vms.recording.capture opens it, one thread per stream doing nothing but ``grab()``
(bench/capture_floor.py, its own process): ``capture_floor_ratio`` is that
against ffmpeg, the least any recorder reading through OpenCV can reach.

Per-process figures come from the kernel: CPU = utime + stime from
``/proc/PID/stat`` over the steady-state window, peak memory = ``VmHWM`` from
``/proc/PID/status``, bytes written = ``write_bytes`` from ``/proc/PID/io`` over
the whole process life (segments, index and fsyncs included).  Packets lost are
holes in the stored stream timestamps (a step of more than 1.5 frames), counted
after the run by reading every stored packet back (vms: decrypting through the
store's reader; ffmpeg: PyAV's demuxer).  Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import emit, machine

TICKS_PER_FRAME = 6000  # 90 kHz at 15 fps
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- /proc accounting


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_write_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("write_bytes:"))


def proc_peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def system_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of the whole machine."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


class Sample:
    """Figures of a set of processes at one moment (the last values seen of each)."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.cpu = {p: proc_cpu_s(p) for p in pids}
        self.wall = time.monotonic()
        self.sys = system_busy()

    def refresh_io(self, io: dict[int, int], rss: dict[int, float]) -> None:
        for p in self.pids:
            try:
                io[p] = proc_write_bytes(p)
                rss[p] = proc_peak_rss_mb(p)
            except (OSError, StopIteration):  # gone, or a zombie (no memory lines any more)
                pass


# ---------------------------------------------------------------- the clip and the server


def clip_path(args) -> Path:
    from testkit.clips import make_clip

    cache = Path(tempfile.gettempdir()) / "vms-bench"
    path = cache / f"bench-{args.width}x{args.height}-{args.bitrate}-{args.clip_seconds}s.mp4"
    if not path.exists():
        print(f"making {path.name} (once) ...", flush=True)
        make_clip(path, seconds=args.clip_seconds, width=args.width, height=args.height, bitrate=args.bitrate,
                  pattern="noise", gop=15)
    return path


def start_server(clip: Path, streams: int, log_path: Path):
    from testkit.rtsp_server import Mount, RtspServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        sys.exit(f"bench.recorder: {reason}")
    return RtspServer({f"/cam{i}": Mount(clip, loop=True) for i in range(streams)}, log_path=log_path).start()


# ---------------------------------------------------------------- phase 1: vms record


def run_vms(server, streams: int, seconds: float, work: Path) -> dict:
    from sqlalchemy.orm import Session

    from storage.keys.keyring import write_key_file
    from storage.sql import index
    from testkit.appliance import write_config
    from testkit.recording import stored
    from vms.appliance import Appliance

    data = work / "vms"
    cams = [{"id": f"cam{i}", "source": server.url(f"/cam{i}"), "retain_days": 7} for i in range(streams)]
    cfg = write_config(data, cams, recorder={"state_interval_s": 1.0})
    write_key_file(data / "keys" / "master.key")
    app = Appliance.open(cfg)  # migrates the index before the recorder starts

    def states():
        with Session(app.engine) as s:
            return {r.camera_id: r for r in index.camera_states(s)}

    log = open(work / "vms-record.log", "wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("vms")), "record", "--config", str(cfg)],
                            stdout=log, stderr=log)
    io, rss = {}, {}
    try:
        deadline = time.monotonic() + 30 + 3 * streams
        while not (len(st := states()) == streams and all(r.packets > 0 for r in st.values())):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"vms record did not start every stream (see {work / 'vms-record.log'})")
            time.sleep(0.5)
        time.sleep(2)
        t0 = Sample([proc.pid])
        while time.monotonic() - t0.wall < seconds:
            time.sleep(1)
            t0.refresh_io(io, rss)
        t1 = Sample([proc.pid])
        t1.refresh_io(io, rss)
        proc.send_signal(signal.SIGTERM)
        # write_bytes after the seal: poll until the process is gone
        while proc.poll() is None:
            t1.refresh_io(io, rss)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    received = sum(r.bytes_received for r in states().values())
    lost = 0
    for i in range(streams):
        pts = [p.pts for _, ps in stored(app, f"cam{i}") for p in ps]
        lost += sum(max(0, round((b - a) / TICKS_PER_FRAME) - 1) for a, b in zip(pts, pts[1:], strict=False)
                    if b - a > 1.5 * TICKS_PER_FRAME)
    app.close()
    return {"cpu_s": t1.cpu[proc.pid] - t0.cpu[proc.pid], "window_s": t1.wall - t0.wall,
            "write_bytes": io[proc.pid], "received_bytes": received, "peak_rss_mb": rss[proc.pid],
            "packets_lost": lost, "sys": (t0.sys, t1.sys)}


# ---------------------------------------------------------------- phase 3: the reading floor


def run_capture_floor(server, streams: int, seconds: float, work: Path) -> dict:
    """CPU of OpenCV's FFmpeg reading alone (bench/capture_floor.py), over the same steady-state window."""
    log = open(work / "capture-floor.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "bench.capture_floor", *(server.url(f"/cam{i}") for i in range(streams))],
                            stdout=subprocess.PIPE, stderr=log)
    try:
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the capture floor did not start every stream (see {work / 'capture-floor.log'})")
        time.sleep(2)
        t0 = Sample([proc.pid])
        time.sleep(seconds)
        t1 = Sample([proc.pid])
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    return {"cpu_s": t1.cpu[proc.pid] - t0.cpu[proc.pid], "window_s": t1.wall - t0.wall, "sys": (t0.sys, t1.sys)}


# ---------------------------------------------------------------- phase 2: ffmpeg -c copy


def run_ffmpeg(server, streams: int, seconds: float, work: Path) -> dict:
    procs = []
    for i in range(streams):
        out = work / "ffmpeg" / f"cam{i}"
        out.mkdir(parents=True)
        procs.append(subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", server.url(f"/cam{i}"),
             "-c", "copy", "-f", "segment", "-segment_time", "60", "-segment_format", "mp4",
             "-reset_timestamps", "1", str(out / "%05d.mp4")],
            stdout=subprocess.DEVNULL, stderr=open(work / f"ffmpeg{i}.log", "wb")))
    pids = [p.pid for p in procs]
    io, rss = {}, {}
    try:
        time.sleep(2 + 0.2 * streams)  # every ffmpeg has probed its stream and is copying
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"an ffmpeg exited early (see {work}/ffmpeg*.log)")
        t0 = Sample(pids)
        while time.monotonic() - t0.wall < seconds:
            time.sleep(1)
            t0.refresh_io(io, rss)
        t1 = Sample(pids)
        t1.refresh_io(io, rss)
        for p in procs:
            p.send_signal(signal.SIGINT)  # ffmpeg finishes the open segment on SIGINT
        for p in procs:
            while p.poll() is None:
                t1.refresh_io(io, rss)
                time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    lost, received = ffmpeg_holes(work / "ffmpeg")
    return {"cpu_s": sum(t1.cpu[p] - t0.cpu[p] for p in pids), "window_s": t1.wall - t0.wall,
            "write_bytes": sum(io.values()), "received_bytes": received,
            "peak_rss_mb": sum(rss.values()), "packets_lost": lost, "sys": (t0.sys, t1.sys)}


def ffmpeg_holes(root: Path) -> tuple[int, int]:
    import av

    lost = total_bytes = 0
    for cam in sorted(root.iterdir()):
        for seg in sorted(cam.glob("*.mp4")):
            with av.open(str(seg)) as c:
                st = c.streams.video[0]
                frame_pts = 1 / (15 * st.time_base)
                pts = []
                for pkt in c.demux(st):
                    if pkt.size:
                        pts.append(pkt.pts)
                        total_bytes += pkt.size
                pts.sort()
                lost += sum(max(0, round((b - a) / frame_pts) - 1) for a, b in zip(pts, pts[1:], strict=False)
                            if b - a > 1.5 * frame_pts)
    return lost, total_bytes


# ---------------------------------------------------------------- main


def machine_busy_percent(r: dict) -> float:
    (b0, t0), (b1, t1) = r["sys"]
    return 100 * (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)  # in percent of one core


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.recorder", description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60, help="steady-state seconds per phase")
    ap.add_argument("--clip-seconds", type=int, default=10)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--bitrate", type=int, default=4_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the recorded files (printed path)")
    ap.add_argument("--work-dir", type=Path, default=Path("/var/tmp"),
                    help="where to record (a real disk, not tmpfs: write amplification is read from the "
                         "kernel's block-I/O accounting; default /var/tmp, never the checkout)")
    args = ap.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        sys.exit("bench.recorder: ffmpeg not found (Debian package ffmpeg)")

    clip = clip_path(args)
    work = Path(tempfile.mkdtemp(prefix="bench-recorder-", dir=args.work_dir))
    load_before = open("/proc/loadavg").read().split()[:3]
    server = start_server(clip, args.streams, work / "rtsp-server.log")
    try:
        vms = run_vms(server, args.streams, args.seconds, work)
        ff = run_ffmpeg(server, args.streams, args.seconds, work)
        floor = run_capture_floor(server, args.streams, args.seconds, work)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    n = args.streams

    def per_stream_hour(r):
        return r["cpu_s"] / (n * r["window_s"]) * 3600

    figures = {
        "machine": machine(),
        "loadavg_before": " ".join(load_before),
        "machine_busy_pct_one_core_vms_phase": round(machine_busy_percent(vms), 1),
        "machine_busy_pct_one_core_ffmpeg_phase": round(machine_busy_percent(ff), 1),
        "streams": n,
        "seconds": round(vms["window_s"], 1),
        "vms_cpu_s_per_stream_hour": per_stream_hour(vms),
        "ffmpeg_cpu_s_per_stream_hour": per_stream_hour(ff),
        "ratio": per_stream_hour(vms) / per_stream_hour(ff) if ff["cpu_s"] else float("nan"),
        # OpenCV's FFmpeg reading alone, nothing else: what any recorder built on it costs at least
        "capture_floor_cpu_s_per_stream_hour": per_stream_hour(floor),
        "capture_floor_ratio": per_stream_hour(floor) / per_stream_hour(ff) if ff["cpu_s"] else float("nan"),
        "packets_lost": vms["packets_lost"],
        "ffmpeg_packets_lost": ff["packets_lost"],
        "peak_rss_mb_per_stream": vms["peak_rss_mb"] / n,
        "ffmpeg_peak_rss_mb_per_stream": ff["peak_rss_mb"] / n,
        "write_amplification": vms["write_bytes"] / max(1, vms["received_bytes"]),
        "ffmpeg_write_amplification": ff["write_bytes"] / max(1, ff["received_bytes"]),
    }
    if args.keep:
        print(f"kept {work}")
    emit(figures)


if __name__ == "__main__":
    main()
