"""CPU cost of the encrypted segment format against the same bytes written plain.

    .venv/bin/python -m bench.segments [--minutes 60] [--mbps 4] [--dir DIR]

Writes then reads back N minutes of a 15 fps stream at the given bitrate
(default one hour of 4 Mbit/s, about 1.8 GB) as 60-second segments: once
through storage.segment (AES-256-GCM chunks) and once as the same packet
records written plain, with the same chunking, write calls and fsyncs.  Target
from the foundation issue: encrypted CPU at most 1.3x plain.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from bench.common import emit, measure
from storage.keys import derive_segment_key
from storage.packets import Packet
from storage.segment import CHUNK_SPAN_US, SegmentReader, SegmentWriter, decode_records, encode_records
from tests.support.fixtures import stream_info

FPS, GOP = 15, 30
T0 = 1_767_225_600_000_000


def packet_stream(minutes: float, mbps: float):
    """Packets with a camera-like size profile: keyframes ~8x a P-frame."""
    total = int(minutes * 60 * FPS)
    per_gop = mbps * 1e6 / 8 * GOP / FPS
    p_size = int(per_gop / (8 + GOP - 1))
    pool = os.urandom(8 * p_size + 64)
    step = 1_000_000 // FPS
    for i in range(total):
        key = i % GOP == 0
        size = 8 * p_size if key else p_size
        off = i % 64
        yield Packet(pool[off : off + size], T0 + i * step, i * 6000, i * 6000, key, 6000)


def write_encrypted(root: Path, minutes: float, mbps: float) -> int:
    day_key, n, w = os.urandom(32), 0, None
    seg_us = 60_000_000
    for p in packet_stream(minutes, mbps):
        if w is None or (p.keyframe and p.wall_us - w.start_us >= seg_us):
            if w:
                w.close()
            w = SegmentWriter(root / f"{p.wall_us}.vseg", day_key, camera="bench", day="2026-01-01", key_id=1,
                              start_us=p.wall_us, stream=stream_info())
            n += 1
        w.write(p)
    w.close()
    return day_key


def read_encrypted(root: Path, day_key: bytes) -> int:
    count = 0
    for path in sorted(root.glob("*.vseg")):
        for chunk in SegmentReader(path, lambda h: derive_segment_key(day_key, h.salt, h.raw)).chunks():
            count += len(chunk)
    return count


def write_plain(root: Path, minutes: float, mbps: float) -> None:
    fh, buf, seg_start = None, [], None

    def seal():
        data = encode_records(buf)
        fh.write(len(data).to_bytes(4, "big") + data)
        fh.flush()
        buf.clear()

    for p in packet_stream(minutes, mbps):
        if fh is None or (p.keyframe and p.wall_us - seg_start >= 60_000_000):
            if fh:
                seal()
                os.fsync(fh.fileno())
                fh.close()
            fh, seg_start = open(root / f"{p.wall_us}.plain", "wb"), p.wall_us
            fh.write(stream_info().codec.encode())
        if buf and p.wall_us - buf[0].wall_us >= CHUNK_SPAN_US:
            seal()
        buf.append(p)
    seal()
    os.fsync(fh.fileno())
    fh.close()


def read_plain(root: Path) -> int:
    count = 0
    for path in sorted(root.glob("*.plain")):
        with open(path, "rb") as fh:
            fh.read(4)
            while raw := fh.read(4):
                count += len(decode_records(fh.read(int.from_bytes(raw, "big")), path, 0))
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--mbps", type=float, default=4)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-segments-", dir=args.dir))
    res: dict = {}
    try:
        for rnd in range(2):  # alternate order so neither side always runs on a cold cache
            for kind in (("plain", "encrypted") if rnd == 0 else ("encrypted", "plain")):
                d = scratch / kind
                d.mkdir()
                if kind == "plain":
                    with measure(res, f"plain_write_{rnd}"):
                        write_plain(d, args.minutes, args.mbps)
                    res["bytes"] = sum(f.stat().st_size for f in d.iterdir())
                    with measure(res, f"plain_read_{rnd}"):
                        res["packets"] = read_plain(d)
                else:
                    with measure(res, f"enc_write_{rnd}"):
                        key = write_encrypted(d, args.minutes, args.mbps)
                    with measure(res, f"enc_read_{rnd}"):
                        n = read_encrypted(d, key)
                    assert n == res.get("packets", n)
                shutil.rmtree(d)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    enc = min(res["enc_write_0"] + res["enc_read_0"], res["enc_write_1"] + res["enc_read_1"])
    plain = min(res["plain_write_0"] + res["plain_read_0"], res["plain_write_1"] + res["plain_read_1"])
    emit({
        "minutes": args.minutes,
        "bytes_per_side": res["bytes"],
        "packets": res["packets"],
        "encrypted_cpu_s": enc,
        "plain_cpu_s": plain,
        "ratio": enc / plain,
    })


if __name__ == "__main__":
    main()
