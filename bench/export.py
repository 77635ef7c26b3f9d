"""Export throughput against ``ffmpeg -f concat -c copy``, and redaction frame rates.

    .venv/bin/python -m bench.export [--minutes 60] [--distinct-s 20] [--rounds 2] [--dir DIR]

1. Footage: ``--distinct-s`` seconds of 1080p15 H.264 at 4 Mbit/s are encoded
   once (libx264, moving noise texture so the bit rate is really spent, a
   keyframe every 2 s) and read back as camera packets (``vms.recording.capture``).  Those
   packets are repeated, with timestamps moved on, to fill ``--minutes`` (one
   hour by default): the bytes of the hour are the same distinct frames over and
   over, which costs the exporter and ffmpeg exactly what new frames would
   (neither decodes them).
2. The hour is stored twice: encrypted into a real appliance (SQLite index,
   60 s segments, as the recorder writes) and as 60 s plain MP4 segments (what
   a stream-copy NVR keeps).
3. Timed after a sync and one untimed read of both copies, alternately, best of ``--rounds``: ``vms.evidence.export.export_package`` of the
   whole hour (decrypt, remux, SHA-256, ZIP, sign, encrypt the package) and
   ``ffmpeg -f concat -safe 0 -i list -c copy out.mp4`` over the plain segments
   (CPU of the child process).  Both read from the page cache.
4. Redaction (faces + moving objects, re-encode) over a clip with a face, at
   1080p and 720p: frames per wall-clock second in one thread.

Last line: one JSON object with ``realtime_factor``, ``cpu_ratio_vs_ffmpeg``,
``redact_fps_1080p``, ``redact_fps_720p`` and the raw figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import av

from bench.common import emit, machine, measure
from storage.format.packets import Packet, StreamInfo
from storage.keys.keyring import write_key_file
from testkit.appliance import write_config
from testkit.clips import make_clip
from testkit.footage import read_clip
from testkit.media import face_clip
from vms.appliance import Appliance
from vms.cli.setup import write_signing_key
from vms.evidence.export import ExportRequest, export_package, package_store
from vms.evidence.redact import RedactClip, RedactionOptions
from vms.evidence.remux import StreamingSink

T0 = 1_767_225_600_000_000
FPS, GOP, MBPS = 15, 30, 4
SEGMENT_S = 60


def hour_of_packets(packets: list[Packet], distinct_s: float, minutes: float):
    """The distinct packets repeated (wall time and pts moved on) for ``minutes``."""
    total = int(minutes * 60 * FPS)
    n = len(packets)
    ticks = round(distinct_s * 90_000)
    for i in range(total):
        rep, k = divmod(i, n)
        p = packets[k]
        yield Packet(p.data, p.wall_us + rep * int(distinct_s * 1e6), p.pts + rep * ticks, p.dts + rep * ticks,
                     p.keyframe, p.duration)


def segments(packets, segment_s: float):
    """Lists of packets, each starting on a keyframe and about ``segment_s`` long."""
    current: list[Packet] = []
    for p in packets:
        if current and p.keyframe and p.wall_us - current[0].wall_us >= segment_s * 1e6:
            yield current
            current = []
        current.append(p)
    if current:
        yield current


def store_encrypted(app, stream: StreamInfo, packets) -> int:
    n = 0
    for seg in segments(packets, SEGMENT_S):
        w = app.store.open_writer("cam", stream, seg[0].wall_us, now_us=seg[0].wall_us)
        for p in seg:
            w.write(p)
        app.store.index_sealed(w.close())
        n += 1
    return n


def store_plain_mp4(root: Path, stream: StreamInfo, packets) -> list[Path]:
    """Plain (non-fragmented) MP4 segments, as ``ffmpeg -c copy -f segment`` would keep them."""
    from vms.recording.bitstream import parameter_sets_annexb

    params = parameter_sets_annexb(stream.codec, stream.extradata)
    files = []
    for seg in segments(packets, SEGMENT_S):
        path = root / f"seg{len(files):04d}.mp4"
        with av.open(str(path), "w", format="mp4") as out:
            st = out.add_mux_stream(stream.codec, rate=stream.fps, width=stream.width, height=stream.height)
            st.time_base = stream.time_base
            t0 = seg[0].dts
            for i, p in enumerate(seg):
                pkt = av.Packet(params + p.data if i == 0 else p.data)
                pkt.stream, pkt.time_base = st, stream.time_base
                pkt.pts, pkt.dts, pkt.duration, pkt.is_keyframe = p.pts - t0, p.dts - t0, p.duration, p.keyframe
                out.mux_one(pkt)
        files.append(path)
    return files


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_ffmpeg(files: list[Path], out: Path) -> tuple[float, float]:
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{f}'\n" for f in files))
    c0, w0 = children_cpu_s(), time.perf_counter()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                    str(out)], check=True)
    cpu, wall = children_cpu_s() - c0, time.perf_counter() - w0
    out.unlink()
    return cpu, wall


def redact_fps(root: Path, width: int, height: int, seconds: float) -> tuple[float, float, int]:
    """Faces + moving objects, decode to encode, one thread: (frames/s wall, CPU s per frame, frames)."""
    clip = face_clip(root / f"face{height}.mp4", seconds=seconds, width=width, height=height,
                     face_px=height * 5 // 6, step_px=width // 160)
    stream, packets = read_clip(clip, T0)
    sink = StreamingSink(lambda b: None)
    rc = RedactClip(sink, stream, T0, RedactionOptions(faces=True, moving=True))
    rc.add(packets[0], packets[0].duration)  # loads the model; not timed
    figures: dict = {}
    with measure(figures, "r"):
        for p in packets[1:]:
            rc.add(p, p.duration)
        rc.close()
    frames = len(packets) - 1
    return frames / figures["r_wall"], figures["r"] / frames, rc.frames_out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--distinct-s", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redact-seconds", type=float, default=6)
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.dir))
    try:
        print(f"machine: {machine()}; scratch: {root}", flush=True)
        src = make_clip(root / "distinct.mp4", seconds=args.distinct_s, width=1920, height=1080, fps=FPS, gop=GOP,
                        bitrate=MBPS * 1_000_000, pattern="noise")
        stream, distinct = read_clip(src.path, T0)
        print(f"distinct footage: {len(distinct)} packets, {src.bitrate_bps / 1e6:.2f} Mbit/s", flush=True)

        cfg = write_config(root / "appliance", [{"id": "cam", "source": "rtsp://127.0.0.1:1/c", "retain_days": 30}])
        write_key_file(root / "appliance" / "keys" / "master.key")
        app = Appliance.open(cfg)
        write_signing_key(app.config.signing_key_path)
        n_enc = store_encrypted(app, stream, hour_of_packets(distinct, args.distinct_s, args.minutes))
        (root / "plain").mkdir()
        plain = store_plain_mp4(root / "plain", stream, hour_of_packets(distinct, args.distinct_s, args.minutes))
        footage_bytes = sum(f.stat().st_size for f in plain)
        print(f"stored {n_enc} encrypted and {len(plain)} plain MP4 segments, {footage_bytes / 1e9:.2f} GB each",
              flush=True)

        os.sync()  # the writeback of what was just stored must not land inside a timed run
        for path in [*plain, *app.store.root.rglob("*.vseg")]:  # both sides start from the page cache
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass
        end_us = T0 + int(args.minutes * 60e6)
        req = ExportRequest("BENCH-1", "benchmark", "none", "a", "b", "c", ("cam",), T0, end_us)
        exp_cpu, exp_wall, ff_cpu, ff_wall = [], [], [], []
        for r in range(args.rounds):
            figures: dict = {}
            with measure(figures, "export"):
                info = export_package(app, req)
            exp_cpu.append(figures["export"])
            exp_wall.append(figures["export_wall"])
            package_store(app).delete(info.package_id)
            cpu, wall = run_ffmpeg(plain, root / "concat.mp4")
            ff_cpu.append(cpu)
            ff_wall.append(wall)
            print(f"round {r + 1}: export {exp_cpu[-1]:.2f} CPU s / {exp_wall[-1]:.2f} s wall; "
                  f"ffmpeg {cpu:.2f} CPU s / {wall:.2f} s wall", flush=True)
        app.close()

        fps_1080, cpu_1080, _ = redact_fps(root, 1920, 1080, args.redact_seconds)
        fps_720, cpu_720, _ = redact_fps(root, 1280, 720, args.redact_seconds)
        media_s = args.minutes * 60
        emit({
            "minutes": args.minutes,
            "distinct_s": args.distinct_s,
            "footage_gb": footage_bytes / 1e9,
            "package_gb": info.size_bytes / 1e9,
            "export_cpu_s": min(exp_cpu),
            "export_wall_s": min(exp_wall),
            "ffmpeg_cpu_s": min(ff_cpu),
            "ffmpeg_wall_s": min(ff_wall),
            "redact_cpu_ms_per_frame_1080p": cpu_1080 * 1000,
            "redact_cpu_ms_per_frame_720p": cpu_720 * 1000,
            "realtime_factor": media_s / min(exp_wall),
            "cpu_ratio_vs_ffmpeg": min(exp_cpu) / min(ff_cpu),
            "redact_fps_1080p": fps_1080,
            "redact_fps_720p": fps_720,
        })
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
