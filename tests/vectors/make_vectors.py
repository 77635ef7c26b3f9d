"""Regenerate the segment-format test vectors (deterministic).

    .venv/bin/python -m tests.vectors.make_vectors

Each vector NAME has NAME.vseg (the file) and NAME.json (the inputs: the data
key, salt, nonce prefix, the derived segment key, and the packets in hex).
``hour-*`` vectors are format version 2 (hour-keyed, data key ``hour_key``);
the others version 1 (day-keyed, data key ``day_key``), as written before hour keys.
``activity.json`` is one activity record (docs/segment-format.md, "Activity records")."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from storage.format import activity
from storage.format.packets import Packet, StreamInfo
from storage.format.segment import SegmentWriter, derive_segment_key, inspect_header

HERE = Path(__file__).parent
DAY_KEY = bytes(range(32))
HOUR_KEY = bytes(range(32, 64))
HOUR = 0  # the UTC hour of T0
SALT = bytes([0x01] * 16)
PREFIX = bytes([0x02] * 7)
T0 = 1_767_225_600_000_000
STREAM = StreamInfo("h264", 640, 360, Fraction(15), Fraction(1, 90000), bytes.fromhex("01640016ffe1"))


def packets(n: int, step_us: int) -> list[Packet]:
    return [
        Packet(bytes([i]) * (3 + i), T0 + i * step_us, i * 6000, i * 6000, i % 15 == 0, 6000) for i in range(n)
    ]


VECTORS = {"empty": [], "one-chunk": packets(3, 66_666), "two-chunks": packets(3, 600_000),
           "hour-empty": [], "hour-one-chunk": packets(3, 66_666), "hour-two-chunks": packets(3, 600_000)}


def data_key(name: str) -> tuple[str, bytes, int | None]:
    """(JSON field, data key, hour) of a vector: version 2 for ``hour-*``, version 1 otherwise."""
    return ("hour_key", HOUR_KEY, HOUR) if name.startswith("hour-") else ("day_key", DAY_KEY, None)


def build(name: str, pkts: list[Packet], out_dir: Path) -> Path:
    chunks = iter([SALT, PREFIX])
    _field, key, hour = data_key(name)
    w = SegmentWriter(out_dir / f"{name}.vseg", key, camera="cam1", day="2026-01-01", key_id=7, start_us=T0,
                      stream=STREAM, hour=hour, random_bytes=lambda n: next(chunks), monotonic=lambda: 0.0)
    for p in pkts:
        w.write(p)
    return w.close().path


ACTIVITY_LEVELS = [0, 0, 1, 14, None, 7] * 10 + [3]  # 61 seconds: an odd count, padded


def activity_vector() -> dict:
    """The activity record of a segment of camera cam1 starting at T0 (hour 0), under HOUR_KEY."""
    key = activity.activity_key(HOUR_KEY, "cam1", "2026-01-01", HOUR)
    return {"hour_key": HOUR_KEY.hex(), "camera": "cam1", "day": "2026-01-01", "hour": HOUR, "start_us": T0,
            "levels": ACTIVITY_LEVELS, "activity_key": key.hex(),
            "record": activity.seal(key, T0, ACTIVITY_LEVELS).hex()}


def main() -> None:
    (HERE / "activity.json").write_text(json.dumps(activity_vector(), indent=1) + "\n")
    for name, pkts in VECTORS.items():
        path = build(name, pkts, HERE)
        header = inspect_header(path)
        field, key, _hour = data_key(name)
        doc = {
            field: key.hex(), "salt": SALT.hex(), "nonce_prefix": PREFIX.hex(),
            "segment_key": derive_segment_key(key, SALT, header.raw).hex(),
            "packets": [{"flags": int(p.keyframe), "wall_us": p.wall_us, "pts": p.pts, "dts": p.dts,
                         "duration": p.duration, "data": p.data.hex()} for p in pkts],
        }
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
