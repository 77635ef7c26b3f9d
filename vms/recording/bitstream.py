"""H.264/H.265 bitstream shapes: Annex-B (start codes) and length-prefixed (MP4).

Cameras deliver packets either way (RTSP and OpenCV's raw mode give Annex-B;
packets demuxed from MP4 are length-prefixed), and the parameter sets (SPS/PPS,
and VPS for H.265) come either as Annex-B or as an ``avcC``/``hvcC`` record.
The exporter normalises to Annex-B with the parameter sets in the first
keyframe: FFmpeg's MP4 muxer then builds ``avcC``/``hvcC`` itself and rewrites
every sample to length-prefixed form (what ``ffmpeg -c copy`` does from RTSP).

Pure functions of bytes; no I/O.
"""

from __future__ import annotations

import re

START = b"\x00\x00\x00\x01"

# NAL unit types that carry parameter sets
_H264_PARAMS = {7, 8}  # SPS, PPS
_HEVC_PARAMS = {32, 33, 34}  # VPS, SPS, PPS


class BitstreamError(ValueError):
    """Bytes that are neither valid Annex-B nor a valid length-prefixed/avcC/hvcC structure."""


def is_annexb(data: bytes) -> bool:
    """True if ``data`` starts with a start code and is not a well-formed
    length-prefixed packet (a 4-byte length of 256..511 also begins 00 00 01)."""
    if data[:4] == START:
        return True
    if data[:3] != START[1:]:
        return False
    return split_length_prefixed(data, 4, strict=False) is None


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B byte string (start codes removed)."""
    out: list[bytes] = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = n if j < 0 else j
        nal_end = end
        while nal_end > start and data[nal_end - 1] == 0:  # trailing zero / 4-byte start code
            nal_end -= 1
        if nal_end > start:
            out.append(data[start:nal_end])
        i = j
    return out


def split_length_prefixed(data: bytes, length_size: int = 4, *, strict: bool = True) -> list[bytes] | None:
    """NAL units of a length-prefixed packet.  ``None`` (or :class:`BitstreamError`
    when ``strict``) if the lengths do not add up exactly to the packet."""
    if length_size not in (1, 2, 4):
        raise BitstreamError(f"NAL length size {length_size} is not 1, 2 or 4")
    out, pos, n = [], 0, len(data)
    while pos < n:
        if pos + length_size > n:
            break
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if size == 0 or pos + size > n or data[pos] & 0x80:
            break
        out.append(data[pos : pos + size])
        pos += size
    else:
        return out
    if strict:
        raise BitstreamError("packet is neither Annex-B nor length-prefixed with consistent NAL lengths")
    return None


def to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """A length-prefixed packet rewritten with 4-byte start codes."""
    nals = split_length_prefixed(data, length_size)
    return b"".join(START + nal for nal in nals)


def nal_type(codec: str, nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F if codec == "hevc" else nal[0] & 0x1F


def has_picture(codec: str, annexb: bytes) -> bool:
    """Whether an Annex-B packet holds a coded slice (VCL NAL unit), i.e. is a frame at all."""
    vcl = range(0, 32) if codec == "hevc" else range(1, 6)
    return any(nal and nal_type(codec, nal) in vcl for nal in split_annexb(annexb))


def has_parameter_sets(codec: str, annexb: bytes) -> bool:
    """Whether an Annex-B packet carries the SPS (and PPS) in band."""
    wanted = _HEVC_PARAMS if codec == "hevc" else _H264_PARAMS
    types = {nal_type(codec, nal) for nal in split_annexb(annexb) if nal}
    return wanted <= types


def nal_length_size(codec: str, extradata: bytes) -> int:
    """NAL length size announced by an avcC/hvcC record (4 when there is none)."""
    if not extradata or extradata[:3] in (b"\x00\x00\x01",) or extradata[:4] == START:
        return 4
    if codec == "hevc":
        if len(extradata) < 23:
            raise BitstreamError("hvcC record shorter than 23 bytes")
        return (extradata[21] & 0x03) + 1
    if len(extradata) < 7:
        raise BitstreamError("avcC record shorter than 7 bytes")
    return (extradata[4] & 0x03) + 1


def parameter_sets_annexb(codec: str, extradata: bytes) -> bytes:
    """The parameter sets of ``extradata`` (avcC, hvcC or already Annex-B) as Annex-B."""
    if not extradata:
        return b""
    if extradata[:4] == START or extradata[:3] == START[1:]:
        return b"".join(START + nal for nal in split_annexb(extradata))
    return _hvcc_nals(extradata) if codec == "hevc" else _avcc_nals(extradata)


def annexb_extradata(codec: str, extradata: bytes) -> bytes:
    """Parameter sets as Annex-B, the form the packets have, for what a capture library hands over:
    avcC (H.264) and hvcC (H.265) are converted; Annex-B, empty and unparseable input come back as they are."""
    if len(extradata) < 7 or extradata[0] != 1:
        return extradata
    try:
        return parameter_sets_annexb(codec, extradata)
    except BitstreamError:
        return extradata


def codec_of_annexb(extradata: bytes) -> str | None:
    """The codec of Annex-B extradata, from its first parameter set (H.264 SPS 7, H.265 VPS 32)."""
    m = re.search(rb"\x00\x00\x01(.)", extradata, re.DOTALL)
    if not m:
        return None
    header = m.group(1)[0]
    if header & 0x1F == 7:
        return "h264"
    if (header >> 1) & 0x3F == 32:
        return "hevc"
    return None


def _take(data: bytes, pos: int, size: int, what: str) -> tuple[bytes, int]:
    if pos + size > len(data):
        raise BitstreamError(f"{what} runs past the end of the record")
    return data[pos : pos + size], pos + size


def _avcc_nals(rec: bytes) -> bytes:
    """ISO/IEC 14496-15 AVCDecoderConfigurationRecord -> Annex-B SPS/PPS."""
    if len(rec) < 7 or rec[0] != 1:
        raise BitstreamError("extradata is not an avcC record (configurationVersion != 1)")
    out, pos = [], 5
    for mask, what in ((0x1F, "SPS"), (0xFF, "PPS")):
        count = rec[pos] & mask
        pos += 1
        for _ in range(count):
            size_b, pos = _take(rec, pos, 2, what)
            nal, pos = _take(rec, pos, int.from_bytes(size_b, "big"), what)
            out.append(START + nal)
    return b"".join(out)


def _hvcc_nals(rec: bytes) -> bytes:
    """HEVCDecoderConfigurationRecord -> Annex-B VPS/SPS/PPS (and SEI arrays)."""
    if len(rec) < 23 or rec[0] != 1:
        raise BitstreamError("extradata is not an hvcC record (configurationVersion != 1)")
    out, pos = [], 23
    for _ in range(rec[22]):
        _, pos = _take(rec, pos, 1, "hvcC array")
        count_b, pos = _take(rec, pos, 2, "hvcC array")
        for _ in range(int.from_bytes(count_b, "big")):
            size_b, pos = _take(rec, pos, 2, "hvcC NAL")
            nal, pos = _take(rec, pos, int.from_bytes(size_b, "big"), "hvcC NAL")
            out.append(START + nal)
    return b"".join(out)
