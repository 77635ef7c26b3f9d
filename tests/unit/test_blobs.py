"""Encrypted blob files (storage/blobs.py): round trips, the partial-file contract,
and every kind of damage detected with the file and chunk named."""

from __future__ import annotations

import os

import pytest

from storage.format.blobs import PARTIAL_SUFFIX, BlobError, BlobWriter, read_blob, read_blob_range

KEY = bytes(range(32))


def write(path, data: bytes, *, chunk_bytes: int = 16, pieces: int = 3, key: bytes = KEY) -> BlobWriter:
    w = BlobWriter(path, key, purpose="test", chunk_bytes=chunk_bytes)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        w.write(data[i : i + step])
    w.close()
    return w


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 100])
def test_round_trip_at_chunk_boundaries(tmp_path, size):
    data = os.urandom(size)
    w = write(tmp_path / "b", data)
    assert w.tell() == size
    chunks = list(read_blob(tmp_path / "b", KEY))
    assert b"".join(chunks) == data
    assert all(len(c) == 16 for c in chunks[:-1]) and len(chunks[-1]) <= 16
    assert w.size_bytes == (tmp_path / "b").stat().st_size


def test_large_write_passes_through_whole_chunks(tmp_path):
    data = os.urandom(5000)
    w = BlobWriter(tmp_path / "b", KEY, purpose="t", chunk_bytes=64)
    w.write(data[:10])
    w.write(memoryview(data)[10:])
    w.close()
    assert b"".join(read_blob(tmp_path / "b", KEY)) == data


def test_final_name_appears_only_on_close(tmp_path):
    path = tmp_path / "b"
    w = BlobWriter(path, KEY, purpose="t", chunk_bytes=16)
    w.write(b"x" * 100)
    assert not path.exists() and (tmp_path / ("b" + PARTIAL_SUFFIX)).exists()
    w.close()
    assert path.exists() and not (tmp_path / ("b" + PARTIAL_SUFFIX)).exists()


def test_abort_and_exception_leave_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with BlobWriter(tmp_path / "b", KEY, purpose="t") as w:
            w.write(b"secret footage")
            raise RuntimeError("job failed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        w.write(b"more")


def test_every_flipped_byte_is_detected(tmp_path):
    path = tmp_path / "b"
    write(path, os.urandom(40))
    raw = path.read_bytes()
    for i in range(len(raw)):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        path.write_bytes(bad)
        with pytest.raises(BlobError) as exc:
            b"".join(read_blob(path, KEY))
        assert str(path) in str(exc.value)


def test_damage_names_the_chunk(tmp_path):
    path = tmp_path / "b"
    write(path, os.urandom(40))  # chunks of 16, 16, 8
    raw = path.read_bytes()
    bad = bytearray(raw)
    bad[-5] ^= 0xFF  # inside the last chunk (number 2)
    path.write_bytes(bad)
    with pytest.raises(BlobError) as exc:
        list(read_blob(path, KEY))
    assert exc.value.chunk == 2 and "authentication failed" in exc.value.reason


def test_truncation_wrong_key_and_trailing_data(tmp_path):
    path = tmp_path / "b"
    write(path, os.urandom(40))
    raw = path.read_bytes()
    chunk_len = 4 + 16 + 16
    path.write_bytes(raw[:-(4 + 8 + 16)])  # drop the final chunk: the rest still authenticates
    with pytest.raises(BlobError, match="truncated"):
        list(read_blob(path, KEY))
    path.write_bytes(raw + b"\x00")
    with pytest.raises(BlobError, match="after the final chunk"):
        list(read_blob(path, KEY))
    path.write_bytes(raw)
    with pytest.raises(BlobError, match="wrong key"):
        list(read_blob(path, bytes(32)))
    header_len = len(raw) - 2 * chunk_len - (4 + 8 + 16)
    swapped = raw[:header_len] + raw[header_len + chunk_len : header_len + 2 * chunk_len] \
        + raw[header_len : header_len + chunk_len] + raw[header_len + 2 * chunk_len :]
    path.write_bytes(swapped)
    with pytest.raises(BlobError, match="chunk 0"):
        list(read_blob(path, KEY))


def test_not_a_blob(tmp_path):
    (tmp_path / "x").write_bytes(b"PK\x03\x04 a zip, not a blob")
    with pytest.raises(BlobError, match="bad magic"):
        list(read_blob(tmp_path / "x", KEY))


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        BlobWriter(tmp_path / "a", b"short", purpose="t")
    with pytest.raises(ValueError):
        BlobWriter(tmp_path / "a", KEY, purpose="t", chunk_bytes=0)


@pytest.mark.parametrize("size", [1, 16, 17, 32, 100])
def test_any_range_reads_only_its_chunks(tmp_path, size):
    data = os.urandom(size)
    write(tmp_path / "b", data)
    for first in range(size):
        for last in range(first, size):
            got = list(read_blob_range(tmp_path / "b", KEY, size, first, last))
            assert b"".join(got) == data[first : last + 1]
            assert len(got) == last // 16 - first // 16 + 1  # one piece per chunk touched
    with pytest.raises(ValueError):
        read_blob_range(tmp_path / "b", KEY, size, 0, size)


def test_a_range_fails_on_damage_and_on_a_wrong_size(tmp_path):
    data = os.urandom(40)
    write(tmp_path / "b", data)
    raw = bytearray((tmp_path / "b").read_bytes())
    raw[-5] ^= 1  # inside the last chunk
    (tmp_path / "c").write_bytes(raw)
    assert b"".join(read_blob_range(tmp_path / "c", KEY, 40, 0, 31)) == data[:32]  # untouched chunks still read
    with pytest.raises(BlobError, match="chunk 2"):
        list(read_blob_range(tmp_path / "c", KEY, 40, 30, 39))
    with pytest.raises(BlobError):  # a size that puts the final chunk elsewhere
        list(read_blob_range(tmp_path / "b", KEY, 48, 40, 47))
    with pytest.raises(BlobError):
        list(read_blob_range(tmp_path / "b", bytes(32), 40, 0, 3))
