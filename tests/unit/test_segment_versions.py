"""Segment format versions (docs/segment-format.md): version 2 names the hour whose hour key encrypts the
segment, version 1 (day-keyed, written before hour keys) has no hour.  Bad headers are refused with the file named."""

from __future__ import annotations

import io
import json
import struct

import pytest

from storage.format.segment import MAGIC_V1, MAGIC_V2, SegmentError, encode_header, read_header
from testkit.appliance import stream_info

COMMON = dict(camera="cam1", day="2026-01-01", key_id=3, start_us=1_767_229_200_000_000, stream=stream_info(),
              salt=b"\x01" * 16, nonce_prefix=b"\x02" * 7)


def header_with(magic: bytes, **changes) -> bytes:
    doc = json.loads(encode_header(**COMMON, hour=1)[12:])
    doc.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del doc[key]
    body = json.dumps(doc).encode()
    return magic + struct.pack(">I", len(body)) + body


def test_version_2_header_names_its_hour_and_version_1_has_none():
    v2 = read_header(io.BytesIO(encode_header(**COMMON, hour=1)), "a.vseg")
    v1 = read_header(io.BytesIO(encode_header(**COMMON)), "b.vseg")
    assert v2.hour == 1 and v2.raw[:8] == MAGIC_V2
    assert v1.hour is None and v1.raw[:8] == MAGIC_V1


@pytest.mark.parametrize("raw, reason", [
    (header_with(MAGIC_V2, hour=24), "'hour' must be an integer 0..23"),
    (header_with(MAGIC_V2, hour=-1), "'hour' must be an integer 0..23"),
    (header_with(MAGIC_V2, hour="1"), "'hour' must be an integer 0..23"),
    (header_with(MAGIC_V2, hour=True), "'hour' must be an integer 0..23"),
    (header_with(MAGIC_V2, hour=None), "'hour' must be an integer 0..23"),
    (header_with(MAGIC_V1, v=1), "a version-1 header has no 'hour' field"),
    (header_with(MAGIC_V1), "'v' is not 1, the version in the magic"),
    (header_with(MAGIC_V2, v=1), "'v' is not 2, the version in the magic"),
    (header_with(b"VMSSEG\x00\x03", v=3), "bad magic; expected VMSSEG version 1 or 2"),
])
def test_bad_version_or_hour_is_refused_naming_the_file(raw, reason):
    with pytest.raises(SegmentError, match="x.vseg, header") as err:
        read_header(io.BytesIO(raw), "x.vseg")
    assert reason in str(err.value)


@pytest.mark.parametrize("hour", [24, -1, True, 1.0])
def test_writer_refuses_an_impossible_hour(hour):
    with pytest.raises(ValueError, match="hour must be 0..23"):
        encode_header(**COMMON, hour=hour)
