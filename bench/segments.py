"""CPU cost of the encrypted segment format against the same bytes written plain.

    .venv/bin/python -m bench.segments [--minutes 60] [--mbps 4] [--rounds 3] [--dir DIR]

Writes then reads back N minutes of a 15 fps stream at the given bitrate
(default one hour of 4 Mbit/s, about 1.8 GB) as 60-second segments: once
through storage.format.segment (AES-256-GCM chunks) and once as the same records
written plain.  The plain side is the segment format with the cipher taken
out, done the cheapest way we know, so the ratio is what encryption costs:

* same header bytes, same one-second chunks with the same length prefix and
  33-byte packet records, one write call per chunk (``os.writev`` straight from
  the packets' buffers, no staging copy), flushed;
* same sealing: ``.open`` name, fsync, rename, directory fsync;
* same reading: header parsed, each chunk read with one ``readinto`` into a
  reused buffer and decoded by the same ``decode_records`` into ``Packet``
  objects (what a reader of the plain format would hand to playback or export).

Packet payloads are built before timing (no per-packet copy inside the timed
part; the ``Packet`` objects themselves are made in the timed loop on both
sides, as the recorder makes them).  An untimed warm-up of both sides comes
first, then ``--rounds`` rounds in alternating order; CPU = user + system
seconds of this process.  Also measured in the same run: AES-256-GCM's own
speed on this CPU, and from it the least CPU any AES-256-GCM format must add
(encrypt plus decrypt every byte once).  Target from the foundation issue:
encrypted CPU at most 1.3x plain.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.common import cpu_s, emit, machine, measure
from storage.format.packets import Packet
from storage.format.segment import (
    CHUNK_SPAN_US,
    MAX_CHUNK_PLAINTEXT,
    SegmentWriter,
    decode_records,
    derive_segment_key,
    encode_header,
    read_header,
)
from storage.format.segment_reader import SegmentReader
from testkit.appliance import stream_info

FPS, GOP = 15, 30
T0 = 1_767_225_600_000_000
SEGMENT_US = 60_000_000
_LEN = struct.Struct(">I")
_RECORD = struct.Struct(">BqqqII")  # as in storage.format.segment


def payloads(mbps: float) -> tuple[list[bytes], list[bytes]]:
    """64 distinct keyframe and 64 distinct P-frame payloads (keyframes ~8x a P-frame), built once."""
    per_gop = mbps * 1e6 / 8 * GOP / FPS
    p_size = int(per_gop / (8 + GOP - 1))
    pool = os.urandom(8 * p_size + 64)
    return [pool[o : o + 8 * p_size] for o in range(64)], [pool[o : o + p_size] for o in range(64)]


def packet_stream(minutes: float, pools: tuple[list[bytes], list[bytes]]):
    keys, ps = pools
    step = 1_000_000 // FPS
    for i in range(int(minutes * 60 * FPS)):
        key = i % GOP == 0
        yield Packet((keys if key else ps)[i % 64], T0 + i * step, i * 6000, i * 6000, key, 6000)


def write_encrypted(root: Path, minutes: float, pools) -> bytes:
    day_key, w = os.urandom(32), None
    for p in packet_stream(minutes, pools):
        if w is None or (p.keyframe and p.wall_us - w.start_us >= SEGMENT_US):
            if w:
                w.close()
            w = SegmentWriter(root / f"{p.wall_us}.vseg", day_key, camera="bench", day="2026-01-01", key_id=1,
                              start_us=p.wall_us, stream=stream_info())
        w.write(p)
    w.close()
    return day_key


def read_encrypted(root: Path, day_key: bytes) -> int:
    count = 0
    for path in sorted(root.glob("*.vseg")):
        for chunk in SegmentReader(path, lambda h: derive_segment_key(day_key, h.salt, h.raw)).chunks():
            count += len(chunk)
    return count


class PlainWriter:
    """SegmentWriter with the cipher taken out: same chunks, summary bookkeeping,
    write calls, fsyncs and rename."""

    def __init__(self, final_path: Path, start_us: int, monotonic=time.monotonic):
        self.final_path, self.start_us = final_path, start_us
        self._monotonic, self._buf_since = monotonic, 0.0
        self.packets = self.keyframes = 0
        self.end_us = start_us
        tb = stream_info().time_base
        self._us_num, self._us_den = tb.numerator * 1_000_000, tb.denominator
        self.open_path = final_path.with_name(final_path.name + ".open")
        self._fh = open(self.open_path, "xb", buffering=0)
        self._fh.write(encode_header(camera="bench", day="2026-01-01", key_id=1, start_us=start_us,
                                     stream=stream_info(), salt=os.urandom(16), nonce_prefix=os.urandom(7)))
        self._buf: list[Packet] = []
        self._buf_bytes = 0

    def write(self, p: Packet) -> None:
        if self._buf and p.wall_us - self._buf[0].wall_us >= CHUNK_SPAN_US:
            self._seal()
        if not self._buf:
            self._buf_since = self._monotonic()
        self._buf.append(p)
        self._buf_bytes += _RECORD.size + len(p.data)
        # the summary the index needs, kept as SegmentWriter keeps it
        self.packets += 1
        self.keyframes += p.keyframe
        end_us = p.wall_us + p.duration * self._us_num // self._us_den
        if end_us > self.end_us:
            self.end_us = end_us

    def _seal(self) -> None:
        parts = [_LEN.pack(self._buf_bytes)]
        for p in self._buf:
            parts.append(_RECORD.pack(1 if p.keyframe else 0, p.wall_us, p.pts, p.dts, p.duration, len(p.data)))
            parts.append(p.data)
        want = _LEN.size + self._buf_bytes
        if os.writev(self._fh.fileno(), parts) != want:  # regular files: never short in practice
            raise OSError("short write")
        self._buf, self._buf_bytes = [], 0

    def close(self) -> None:
        self._seal()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.open_path, self.final_path)
        fd = os.open(self.final_path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_plain(root: Path, minutes: float, pools) -> None:
    w = None
    for p in packet_stream(minutes, pools):
        if w is None or (p.keyframe and p.wall_us - w.start_us >= SEGMENT_US):
            if w:
                w.close()
            w = PlainWriter(root / f"{p.wall_us}.plain", p.wall_us)
        w.write(p)
    w.close()


def read_plain(root: Path) -> int:
    count = 0
    for path in sorted(root.glob("*.plain")):
        buf = bytearray()  # per file, as SegmentReader
        with open(path, "rb") as fh:
            read_header(fh, path)
            while raw := fh.read(_LEN.size):
                (n,) = _LEN.unpack(raw)
                if n > MAX_CHUNK_PLAINTEXT:
                    raise ValueError(f"{path}: chunk length {n}")
                if len(buf) < n:
                    buf = bytearray(max(n, len(buf) * 5 // 4))
                view = memoryview(buf)[:n]
                if fh.readinto(view) < n:
                    raise ValueError(f"{path}: truncated")
                count += len(decode_records(view, path, 0))
    return count


def aes_gcm_gb_s(chunk: int = 512 * 1024, total: int = 1 << 30) -> tuple[float, float]:
    """AES-256-GCM encrypt and decrypt speed of one core, in GB/s, on data in cache."""
    aead, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    plain, out = os.urandom(chunk), bytearray(chunk + 16)
    reps = total // chunk
    t0 = cpu_s()
    for _ in range(reps):
        aead.encrypt_into(nonce, plain, None, out)
    t1 = cpu_s()
    back, ct = bytearray(chunk), bytes(out)
    for _ in range(reps):
        aead.decrypt_into(nonce, ct, None, back)
    t2 = cpu_s()
    return reps * chunk / (t1 - t0) / 1e9, reps * chunk / (t2 - t1) / 1e9


def run_side(kind: str, d: Path, minutes: float, pools, res: dict | None) -> int:
    d.mkdir()
    try:
        scratch: dict = {}
        if kind == "plain":
            with measure(scratch, "write"):
                write_plain(d, minutes, pools)
            size = sum(f.stat().st_size for f in d.iterdir())
            with measure(scratch, "read"):
                n = read_plain(d)
        else:
            with measure(scratch, "write"):
                key = write_encrypted(d, minutes, pools)
            size = sum(f.stat().st_size for f in d.iterdir())
            with measure(scratch, "read"):
                n = read_encrypted(d, key)
        if res is not None:
            res.setdefault(kind, []).append((scratch["write"], scratch["read"]))
            res.setdefault("bytes_" + kind, size)
            res.setdefault("packets_" + kind, n)
        return n
    finally:
        shutil.rmtree(d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--mbps", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup-minutes", type=float, default=3)
    ap.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    pools = payloads(args.mbps)
    scratch = Path(tempfile.mkdtemp(prefix="bench-segments-", dir=args.dir))
    res: dict = {}
    w0 = time.perf_counter()
    try:
        for kind in ("plain", "encrypted"):  # untimed: page cache, heap and code paths warm for both
            run_side(kind, scratch / f"warm-{kind}", args.warmup_minutes, pools, None)
        for rnd in range(args.rounds):  # alternate order so neither side always runs first
            for kind in (("plain", "encrypted") if rnd % 2 == 0 else ("encrypted", "plain")):
                run_side(kind, scratch / f"{kind}-{rnd}", args.minutes, pools, res)
        gen: dict = {}
        with measure(gen, "stream"):
            for _ in packet_stream(args.minutes, pools):
                pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if res["packets_plain"] != res["packets_encrypted"]:
        raise SystemExit("plain and encrypted sides read back different packet counts")
    enc = [w + r for w, r in res["encrypted"]]
    plain = [w + r for w, r in res["plain"]]
    ratios = [e / p for e, p in zip(enc, plain, strict=True)]  # each round's two sides ran back to back
    aes_enc, aes_dec = aes_gcm_gb_s()
    plaintext_bytes = res["bytes_plain"]
    aes_floor = plaintext_bytes / (aes_enc * 1e9) + plaintext_bytes / (aes_dec * 1e9)
    emit({
        "machine": machine(),
        "minutes": args.minutes,
        "rounds": args.rounds,
        "bytes_plain": res["bytes_plain"],
        "bytes_encrypted": res["bytes_encrypted"],
        "packets": res["packets_plain"],
        "encrypted_write_cpu_s": min(w for w, _ in res["encrypted"]),
        "encrypted_read_cpu_s": min(r for _, r in res["encrypted"]),
        "plain_write_cpu_s": min(w for w, _ in res["plain"]),
        "plain_read_cpu_s": min(r for _, r in res["plain"]),
        "encrypted_cpu_s": min(enc),
        "plain_cpu_s": min(plain),
        "ratio": min(enc) / min(plain),
        "ratio_median_round": statistics.median(ratios),
        "ratio_min_round": min(ratios),
        "ratio_max_round": max(ratios),
        "packet_stream_cpu_s": gen["stream"],
        "aes_gcm_encrypt_gb_s": aes_enc,
        "aes_gcm_decrypt_gb_s": aes_dec,
        "aes_floor_cpu_s": aes_floor,
        "floor_ratio": (min(plain) + aes_floor) / min(plain),
        "malloc_env": " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")) or "default",
        "wall_s": time.perf_counter() - w0,
    })


if __name__ == "__main__":
    main()
