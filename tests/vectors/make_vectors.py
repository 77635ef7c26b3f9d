"""Regenerate the segment-format test vectors (deterministic).

    .venv/bin/python -m tests.vectors.make_vectors

Each vector NAME has NAME.vseg (the file) and NAME.json (the inputs: day key,
salt, nonce prefix, the derived segment key, and the packets in hex)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from storage.format.packets import Packet, StreamInfo
from storage.format.segment import SegmentWriter, derive_segment_key, inspect_header

HERE = Path(__file__).parent
DAY_KEY = bytes(range(32))
SALT = bytes([0x01] * 16)
PREFIX = bytes([0x02] * 7)
T0 = 1_767_225_600_000_000
STREAM = StreamInfo("h264", 640, 360, Fraction(15), Fraction(1, 90000), bytes.fromhex("01640016ffe1"))


def packets(n: int, step_us: int) -> list[Packet]:
    return [
        Packet(bytes([i]) * (3 + i), T0 + i * step_us, i * 6000, i * 6000, i % 15 == 0, 6000) for i in range(n)
    ]


VECTORS = {"empty": [], "one-chunk": packets(3, 66_666), "two-chunks": packets(3, 600_000)}


def build(name: str, pkts: list[Packet], out_dir: Path) -> Path:
    chunks = iter([SALT, PREFIX])
    w = SegmentWriter(out_dir / f"{name}.vseg", DAY_KEY, camera="cam1", day="2026-01-01", key_id=7, start_us=T0,
                      stream=STREAM, random_bytes=lambda n: next(chunks), monotonic=lambda: 0.0)
    for p in pkts:
        w.write(p)
    return w.close().path


def main() -> None:
    for name, pkts in VECTORS.items():
        path = build(name, pkts, HERE)
        header = inspect_header(path)
        doc = {
            "day_key": DAY_KEY.hex(), "salt": SALT.hex(), "nonce_prefix": PREFIX.hex(),
            "segment_key": derive_segment_key(DAY_KEY, SALT, header.raw).hex(),
            "packets": [{"flags": int(p.keyframe), "wall_us": p.wall_us, "pts": p.pts, "dts": p.dts,
                         "duration": p.duration, "data": p.data.hex()} for p in pkts],
        }
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
