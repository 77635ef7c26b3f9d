"""The playback clip cache: bounded by count, bytes and age; a clip leaving it is crypto-shredded."""

from __future__ import annotations

import os

from api.routes.footage import ClipCache
from storage.format.blobs import BlobWriter
from vms.evidence.playback import Clip, ClipBody


def _clip(tmp_path, name: str, size: int) -> Clip:
    key = os.urandom(32)
    with BlobWriter(tmp_path / name, key, purpose="playback-clip", chunk_bytes=64) as w:
        w.write(os.urandom(size))
    return Clip(ClipBody(tmp_path / name, key, size), "cam", 0, 1, 1)


def test_evicted_and_expired_clips_are_shredded(tmp_path):
    cache = ClipCache(entries=2, max_bytes=1000, max_age_s=10)
    a, b, c = (_clip(tmp_path, n, 100) for n in "abc")
    cache.put("a", a, 0)
    cache.put("b", b, 1)
    cache.put("c", c, 2)  # over the count: the oldest goes
    assert cache.get("a", 3) is None and not a.body.path.exists() and a.body.key == b""
    assert cache.get("b", 3) is b and b"".join(b.body.chunks()) and b.body.path.exists()
    assert cache.get("b", 20) is None and not b.body.path.exists() and not c.body.path.exists()  # too old


def test_the_newest_clip_stays_even_when_larger_than_the_budget(tmp_path):
    cache = ClipCache(entries=4, max_bytes=150)
    small, big = _clip(tmp_path, "s", 100), _clip(tmp_path, "b", 1000)
    cache.put("s", small, 0)
    cache.put("b", big, 1)
    assert cache.get("b", 1) is big and len(b"".join(big.body.chunks(0, 999))) == 1000
    assert cache.get("s", 1) is None and not small.body.path.exists()


def test_a_clip_dropped_while_streaming_streams_to_the_end(tmp_path):
    cache = ClipCache()
    clip = _clip(tmp_path, "x", 500)
    cache.put("x", clip, 0)
    pieces = clip.body.chunks()  # the answer has begun
    cache.drop("x")
    assert not clip.body.path.exists() and len(b"".join(pieces)) == 500
