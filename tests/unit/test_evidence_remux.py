"""StreamingSink (vms/remux.py): what the muxer writes, with its small seeks back,
reaches the package in order, exactly once, patched."""

from __future__ import annotations

import io
import os

import pytest

from vms.evidence.remux import StreamingSink


def test_patches_within_the_window_are_applied_before_emitting():
    out = bytearray()
    sink = StreamingSink(out.extend, window_bytes=16)
    ref = io.BytesIO()
    for f in (sink, ref):
        f.write(b"A" * 10)
        f.write(b"B" * 10)
        f.seek(5)
        f.write(b"xy")
        f.seek(0, 2)
        f.write(b"C" * 30)
        f.seek(-3, 1)
        f.write(b"zzzz")  # overwrites 3 bytes and grows by one
    assert sink.tell() == ref.tell()
    total = sink.finish()
    assert bytes(out) == ref.getvalue() and total == len(out)


def test_random_writes_match_a_real_file():
    rnd = __import__("random").Random(7)
    out = bytearray()
    sink = StreamingSink(out.extend, window_bytes=64)
    ref = io.BytesIO()
    for _ in range(500):
        data = os.urandom(rnd.randint(1, 40))
        if rnd.random() < 0.2 and sink.tell() > 0:
            back = rnd.randint(0, min(32, sink.tell()))
            for f in (sink, ref):
                f.seek(-back, 2)
        for f in (sink, ref):
            f.write(data)
            f.seek(0, 2)
    sink.finish()
    assert bytes(out) == ref.getvalue()


def test_seek_before_the_window_fails_loudly():
    sink = StreamingSink(lambda b: None, window_bytes=8)
    for _ in range(10):
        sink.write(b"0123456789")
    with pytest.raises(OSError, match="outside the writable window"):
        sink.seek(0)
