"""The segment format: round trip, seeking, and every way a file can be wrong."""

from __future__ import annotations

import os
import struct

import pytest

from storage.format.segment import (
    OPEN_SUFFIX,
    SegmentError,
    SegmentTruncated,
    SegmentWriter,
    derive_segment_key,
)
from storage.format.segment_reader import SegmentReader, inspect_chunks, recover
from testkit.appliance import stream_info, synthetic_packets

DAY_KEY = bytes(range(32))
T0 = 1_767_225_600_000_000


class Mono:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def write_segment(tmp_path, packets, *, name="seg.vseg", close=True, mono=None):
    w = SegmentWriter(tmp_path / name, DAY_KEY, camera="cam1", day="2026-01-01", key_id=1,
                      start_us=packets[0].wall_us if packets else T0, stream=stream_info(),
                      monotonic=mono or Mono())
    for p in packets:
        w.write(p)
    return (w.close() if close else w), w


def key_for(header):
    return derive_segment_key(DAY_KEY, header.salt, header.raw)


def test_round_trip_keeps_every_packet_and_field(tmp_path):
    packets = synthetic_packets(T0, 5.0)
    summary, _ = write_segment(tmp_path, packets)
    reader = SegmentReader(summary.path, key_for)
    got = list(reader.packets())
    assert got == packets
    assert reader.header.stream == stream_info()
    assert summary.packets == 75 and summary.keyframes == 5
    assert summary.chunks == 5  # one per second of wall-clock time; the last one carries the final flag
    assert summary.end_us == packets[-1].wall_us + 1_000_000 // 15
    assert summary.size_bytes == summary.path.stat().st_size
    assert not (tmp_path / ("seg" + OPEN_SUFFIX)).exists()


def test_each_chunk_spans_at_most_one_second(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 10.0))
    for chunk in SegmentReader(summary.path, key_for).chunks():
        assert chunk[-1].wall_us - chunk[0].wall_us < 1_000_000


def test_flush_due_seals_a_quiet_chunk(tmp_path):
    mono = Mono()
    _, w = write_segment(tmp_path, synthetic_packets(T0, 0.2), close=False, mono=mono)
    size = w.size_bytes
    assert not w.flush_due()
    mono.t = 1.0
    assert w.flush_due()
    assert w.size_bytes > size and os.path.getsize(w.open_path) == w.size_bytes
    w.close()


def test_seek_starts_at_keyframe_at_or_before(tmp_path):
    packets = synthetic_packets(T0, 4.0, gop=15)
    summary, _ = write_segment(tmp_path, packets)
    reader = SegmentReader(summary.path, key_for)
    got = list(reader.packets(start_us=T0 + 2_500_000, end_us=T0 + 3_200_000))
    assert got[0].keyframe and got[0].wall_us == T0 + 2 * 15 * (1_000_000 // 15)
    assert got[-1].wall_us < T0 + 3_200_000
    assert got == [p for p in packets if got[0].wall_us <= p.wall_us < T0 + 3_200_000]


def test_empty_segment_is_valid(tmp_path):
    summary, _ = write_segment(tmp_path, [])
    assert list(SegmentReader(summary.path, key_for).packets()) == []
    assert summary.chunks == 1


def test_wrong_key_names_file_and_chunk(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 2.0))
    with pytest.raises(SegmentError) as exc:
        list(SegmentReader(summary.path, lambda h: bytes(32)).packets())
    assert exc.value.chunk == 0 and str(summary.path) in str(exc.value) and "wrong key" in str(exc.value)


def _chunk_offsets(path, header_len):
    data = path.read_bytes()
    pos, out = header_len, []
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((pos, 4 + n))
        pos += 4 + n
    return data, out


@pytest.mark.parametrize("where", ["header", "chunk0", "chunk2", "tag"])
def test_bit_flip_is_detected(tmp_path, where):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 4.0))
    header_len = SegmentReader(summary.path, key_for).header.length
    data, chunks = _chunk_offsets(summary.path, header_len)
    pos = {"header": header_len - 5, "chunk0": chunks[0][0] + 40, "chunk2": chunks[2][0] + 100,
           "tag": chunks[1][0] + chunks[1][1] - 1}[where]
    flipped = bytearray(data)
    flipped[pos] ^= 0x01
    summary.path.write_bytes(bytes(flipped))
    with pytest.raises(SegmentError) as exc:
        list(SegmentReader(summary.path, key_for).packets())
    expected_chunk = {"header": 0, "chunk0": 0, "chunk2": 2, "tag": 1}[where]
    if where == "header":  # the header feeds the key derivation: its parse fails (no chunk) or chunk 0 does not open
        assert exc.value.chunk in (None, expected_chunk)
    else:
        assert exc.value.chunk == expected_chunk, exc.value


def test_reordered_chunks_are_detected(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 4.0))
    header_len = SegmentReader(summary.path, key_for).header.length
    data, chunks = _chunk_offsets(summary.path, header_len)
    (a, alen), (b, blen) = chunks[1], chunks[2]
    swapped = data[:a] + data[b : b + blen] + data[a : a + alen] + data[b + blen :]
    summary.path.write_bytes(swapped)
    with pytest.raises(SegmentError) as exc:
        list(SegmentReader(summary.path, key_for).packets())
    assert exc.value.chunk == 1


def test_truncation_is_detected_at_every_cut(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 3.0, size=300))
    data = summary.path.read_bytes()
    header_len = SegmentReader(summary.path, key_for).header.length
    _, chunks = _chunk_offsets(summary.path, header_len)
    cuts = [header_len, chunks[1][0], chunks[1][0] + 3, chunks[-1][0] + 10, len(data) - 1]
    for cut in cuts:
        summary.path.write_bytes(data[:cut])
        with pytest.raises(SegmentTruncated):
            list(SegmentReader(summary.path, key_for).packets())


def test_dropping_the_final_chunk_is_detected(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 3.0))
    header_len = SegmentReader(summary.path, key_for).header.length
    data, chunks = _chunk_offsets(summary.path, header_len)
    summary.path.write_bytes(data[: chunks[-1][0]])
    with pytest.raises(SegmentTruncated, match="final chunk"):
        list(SegmentReader(summary.path, key_for).packets())


def test_trailing_garbage_is_detected(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 1.0))
    with open(summary.path, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(SegmentError, match="after the final chunk"):
        list(SegmentReader(summary.path, key_for).packets())


@pytest.mark.parametrize("content", [b"", b"hello", b"\x00" * 100, b"VMSSEG\x00\x01\xff\xff\xff\xff", os.urandom(4096)])
def test_other_files_are_refused_clearly(tmp_path, content):
    path = tmp_path / "x.vseg"
    path.write_bytes(content)
    with pytest.raises(SegmentError) as exc:
        SegmentReader(path, key_for)
    assert str(path) in str(exc.value)


def test_recover_keeps_every_authenticated_chunk(tmp_path):
    packets = synthetic_packets(T0, 5.5)
    _, w = write_segment(tmp_path, packets, close=False)
    w.abandon()  # the process is killed: the last half second is still in memory
    with open(w.open_path, "ab") as fh:
        fh.write(b"\x00\x00\x10\x00partial-chunk")  # a chunk cut off mid-write
    summary = recover(w.open_path, key_for)
    assert summary.recovered and not w.open_path.exists() and summary.path == w.final_path
    got = list(SegmentReader(summary.path, key_for).packets())
    assert got == packets[: len(got)]
    lost_us = packets[-1].wall_us - got[-1].wall_us
    assert 0 < lost_us <= 1_000_000  # only the unsealed last second is lost
    assert summary.packets == len(got)


def test_recover_removes_a_file_without_chunks(tmp_path):
    _, w = write_segment(tmp_path, [], close=False)
    w.abandon()
    assert recover(w.open_path, key_for) is None
    assert not w.open_path.exists()


def test_recover_refuses_damage_in_the_middle(tmp_path):
    _, w = write_segment(tmp_path, synthetic_packets(T0, 4.0), close=False)
    w.abandon()
    data = bytearray(w.open_path.read_bytes())
    data[-30] ^= 0xFF  # inside an already written chunk
    w.open_path.write_bytes(bytes(data))
    with pytest.raises(SegmentError):
        recover(w.open_path, key_for)
    assert w.open_path.exists()  # nothing is thrown away


def test_inspect_needs_no_key(tmp_path):
    summary, _ = write_segment(tmp_path, synthetic_packets(T0, 2.0))
    info = inspect_chunks(summary.path)
    assert info["camera"] == "cam1" and info["codec"] == "h264" and info["chunks"] == 2
    assert info["width"] == 1280 and info["fps"] == "15/1"



def test_a_chunk_never_grows_past_what_a_reader_accepts(tmp_path, monkeypatch):
    """A stream of more than MAX_CHUNK_PLAINTEXT per second is split into smaller chunks."""
    import storage.format.segment as seg

    monkeypatch.setattr(seg, "MAX_CHUNK_PLAINTEXT", 20_000)  # small, so the test stays small
    packets = synthetic_packets(0, 1, size=3000, seed=1)  # 15 packets in one second: 45 kB
    w = SegmentWriter(tmp_path / "a.vseg", DAY_KEY, camera="cam1", day="2026-01-01", key_id=1, start_us=0,
                      stream=stream_info())
    for p in packets:
        w.write(p)
    summary = w.close()
    chunks = list(SegmentReader(summary.path, key_for).chunks())
    assert len(chunks) >= 3 and all(sum(len(p.data) for p in c) <= 20_000 for c in chunks)
    assert [p.data for c in chunks for p in c] == [p.data for p in packets]
    w = SegmentWriter(tmp_path / "b.vseg", DAY_KEY, camera="cam1", day="2026-01-01", key_id=1, start_us=0,
                      stream=stream_info())
    with pytest.raises(ValueError, match="exceeds the largest chunk"):
        w.write(synthetic_packets(0, 0.1, size=30_000)[0])
    w.abandon()
