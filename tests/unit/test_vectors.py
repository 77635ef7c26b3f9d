"""Test vectors for docs/segment-format.md.

``independent_read`` is written from the spec alone (struct + AES-GCM + HKDF),
not from storage.format.segment, so the spec and the implementation are checked
against each other."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.format.segment_reader import SegmentReader
from tests.vectors.make_vectors import VECTORS, activity_vector, build

HERE = Path(__file__).parents[1] / "vectors"


def independent_read(data: bytes, data_key: bytes) -> list[dict]:
    """``data_key``: the day key of a version-1 file, the hour key of a version-2 file."""
    assert data[:7] == b"VMSSEG\x00" and data[7] in (1, 2)
    (hlen,) = struct.unpack(">I", data[8:12])
    header = data[: 12 + hlen]
    doc = json.loads(header[12:])
    assert doc["v"] == data[7]
    assert ("hour" in doc) == (data[7] == 2) and (data[7] == 1 or doc["hour"] in range(24))
    info = b"vms-segment-v1" + hashlib.sha256(header).digest()
    key = HKDF(hashes.SHA256(), 32, bytes.fromhex(doc["salt"]), info).derive(data_key)
    prefix = bytes.fromhex(doc["nonce_prefix"])
    pos, counter, out = len(header), 0, []
    while True:
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        ct = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        last = pos == len(data)
        plain = AESGCM(key).decrypt(prefix + struct.pack(">I", counter) + bytes([last]), ct, None)
        p = 0
        while p < len(plain):
            flags, wall, pts, dts, dur, size = struct.unpack(">BqqqII", plain[p : p + 33])
            out.append({"flags": flags, "wall_us": wall, "pts": pts, "dts": dts, "duration": dur,
                        "data": plain[p + 33 : p + 33 + size].hex()})
            p += 33 + size
        counter += 1
        if last:
            return out


@pytest.mark.parametrize("name", list(VECTORS))
def test_vector_reads_by_spec_and_by_implementation(name):
    doc = json.loads((HERE / f"{name}.json").read_text())
    data = (HERE / f"{name}.vseg").read_bytes()
    key = doc["hour_key"] if name.startswith("hour-") else doc["day_key"]
    assert independent_read(data, bytes.fromhex(key)) == doc["packets"]
    reader = SegmentReader(HERE / f"{name}.vseg", lambda h: bytes.fromhex(doc["segment_key"]))
    assert len(list(reader.packets())) == len(doc["packets"])


@pytest.mark.parametrize("name", list(VECTORS))
def test_writer_reproduces_vector_bytes(name, tmp_path):
    path = build(name, VECTORS[name], tmp_path)
    assert path.read_bytes() == (HERE / f"{name}.vseg").read_bytes()


def test_activity_record_by_spec_and_by_implementation():
    """An activity record read from docs/segment-format.md alone, and sealed again byte for byte."""
    doc = json.loads((HERE / "activity.json").read_text())
    info = b"vms-activity-v1" + doc["camera"].encode() + b"\x00" + doc["day"].encode() + bytes([doc["hour"]])
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(bytes.fromhex(doc["hour_key"]))
    assert key.hex() == doc["activity_key"]
    plain = AESGCM(key).decrypt(struct.pack(">q", doc["start_us"]) + bytes(4), bytes.fromhex(doc["record"]), None)
    nibbles = [n for b in plain for n in (b >> 4, b & 15)]
    assert len(plain) == 31 and nibbles[-1] == 15  # 61 levels, padded
    assert [None if n == 15 else n for n in nibbles[:61]] == doc["levels"]
    assert activity_vector() == doc
