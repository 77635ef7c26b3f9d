"""Appliances, configs and packets for tests and benchmarks (no pytest needed)."""

from __future__ import annotations

import os
import secrets
from fractions import Fraction
from pathlib import Path

import tomli_w

from storage.format.packets import Packet, StreamInfo
from storage.keys.keyring import write_key_file
from vms.appliance import Appliance
from vms.core.clock import Clock

H264_EXTRADATA = bytes.fromhex("0164001fffe100196764001facd9405005bb011000000300100000030300f18319601000468ebecb22c0")


def stream_info(**kw) -> StreamInfo:
    base = dict(codec="h264", width=1280, height=720, fps=Fraction(15), time_base=Fraction(1, 90000),
                extradata=H264_EXTRADATA)
    base.update(kw)
    return StreamInfo(**base)


def synthetic_packets(start_us: int, seconds: float, *, fps: int = 15, gop: int = 15, size: int = 2000,
                      seed: int | None = None) -> list[Packet]:
    """Packets with realistic timing (not decodable video; for format tests)."""
    rnd = secrets.token_bytes if seed is None else None
    out = []
    step_us = 1_000_000 // fps
    for i in range(int(seconds * fps)):
        data = rnd(size) if rnd else bytes((i * 7 + j + (seed or 0)) % 256 for j in range(size))
        out.append(Packet(data, start_us + i * step_us, i * 90000 // fps, i * 90000 // fps, i % gop == 0, 90000 // fps))
    return out


def write_config(data_dir: Path, cameras: list[dict] | None = None, **top) -> Path:
    doc = {"data_dir": ".", "node_id": "test-node", **top}
    if cameras:
        doc["cameras"] = cameras
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    path = data_dir / "vms.toml"
    path.write_text(tomli_w.dumps(doc))
    return path



def make_appliance(data_dir: Path, cameras: list[dict] | None = None, *, database_url: str | None = None,
                   clock: Clock | None = None, **top) -> Appliance:
    """An initialised appliance in ``data_dir``: config, master key, migrated database."""
    if database_url:
        top["database_url"] = database_url
    cfg = write_config(data_dir, cameras, **top)
    write_key_file(data_dir / "keys" / "master.key")
    return Appliance.open(cfg, clock=clock)
