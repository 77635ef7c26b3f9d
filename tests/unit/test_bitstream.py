"""Annex-B / length-prefixed / avcC / hvcC conversions (vms/bitstream.py)."""

from __future__ import annotations

import pytest

from vms.recording.bitstream import (
    START,
    BitstreamError,
    has_parameter_sets,
    is_annexb,
    nal_length_size,
    parameter_sets_annexb,
    split_annexb,
    split_length_prefixed,
    to_annexb,
)

SPS = bytes.fromhex("6764001facd9405005bb011000000300100000030300f1831960")
PPS = bytes.fromhex("68ebecb22c")
# avcC (ISO/IEC 14496-15): version 1, profile/compat/level, 4-byte lengths, 1 SPS, 1 PPS
AVCC = (bytes.fromhex("0164001fffe1") + len(SPS).to_bytes(2, "big") + SPS
        + b"\x01" + len(PPS).to_bytes(2, "big") + PPS)
IDR = b"\x65\x88\x84\x00\x33\xff"
SLICE = b"\x41\x9a\x02\x03"


def lp(*nals: bytes, size: int = 4) -> bytes:
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def test_avcc_record_to_annexb():
    out = parameter_sets_annexb("h264", AVCC)
    nals = split_annexb(out)
    assert [n[0] & 0x1F for n in nals] == [7, 8]
    assert out.startswith(START) and has_parameter_sets("h264", out)
    assert nal_length_size("h264", AVCC) == 4
    assert nals == [SPS, PPS]


def test_annexb_extradata_passes_through():
    annexb = START + SPS + START + PPS
    assert parameter_sets_annexb("h264", annexb) == annexb
    assert parameter_sets_annexb("h264", b"\x00\x00\x01" + SPS + b"\x00\x00\x01" + PPS) == annexb
    assert nal_length_size("h264", annexb) == 4
    assert parameter_sets_annexb("h264", b"") == b""


def test_split_annexb_handles_3_and_4_byte_start_codes():
    data = START + SPS + b"\x00\x00\x01" + PPS + START + IDR
    assert split_annexb(data) == [SPS, PPS, IDR]


def test_length_prefixed_round_trip_and_sizes():
    for size in (1, 2, 4):
        assert split_length_prefixed(lp(IDR, SLICE, size=size), size) == [IDR, SLICE]
    assert to_annexb(lp(SPS, PPS, IDR)) == START + SPS + START + PPS + START + IDR
    with pytest.raises(BitstreamError):
        split_length_prefixed(lp(IDR)[:-1])
    with pytest.raises(BitstreamError):
        split_length_prefixed(lp(IDR), 3)
    assert split_length_prefixed(b"\x00\x00\x00\x09abc", strict=False) is None


def test_is_annexb_tells_shapes_apart():
    assert is_annexb(START + IDR)
    assert is_annexb(b"\x00\x00\x01" + IDR)
    assert not is_annexb(lp(IDR))
    # a length prefix of 256..511 also starts 00 00 01: well-formed lengths win
    big = b"\x65" + bytes(299)
    assert not is_annexb(lp(big))


def test_has_parameter_sets():
    assert has_parameter_sets("h264", START + SPS + START + PPS + START + IDR)
    assert not has_parameter_sets("h264", START + IDR)
    assert not has_parameter_sets("h264", START + SPS + START + IDR)
    vps, sps, pps = b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1"
    assert has_parameter_sets("hevc", START + vps + START + sps + START + pps + START + b"\x26\x01\xaf")


def test_hvcc_record_to_annexb():
    vps, sps, pps = b"\x40\x01\x0c\x01", b"\x42\x01\x01\x01", b"\x44\x01\xc1\x72"
    head = bytes([1]) + bytes(20) + bytes([0x0F | 0xF0 & 0xFC | 0x03])  # lengthSizeMinusOne = 3
    arrays = b"".join(bytes([0x80 | t]) + (1).to_bytes(2, "big") + len(n).to_bytes(2, "big") + n
                      for t, n in ((32, vps), (33, sps), (34, pps)))
    rec = head + bytes([3]) + arrays
    assert parameter_sets_annexb("hevc", rec) == START + vps + START + sps + START + pps
    assert nal_length_size("hevc", rec) == 4
    with pytest.raises(BitstreamError):
        parameter_sets_annexb("hevc", rec[:-2])


def test_bad_records_are_refused():
    with pytest.raises(BitstreamError):
        parameter_sets_annexb("h264", b"\x02" + AVCC[1:])
    with pytest.raises(BitstreamError):
        parameter_sets_annexb("h264", AVCC[:12])
    with pytest.raises(BitstreamError):
        nal_length_size("h264", b"\x01\x02")
