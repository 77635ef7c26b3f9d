"""Fixtures for real parts any test directory may use: generated clips and GStreamer's
RTSP server (``testkit/rtsp_server.py``, run by the system Python).

Where GStreamer's RTSP server cannot run, tests that need it are skipped, except
with ``CI=true``, where they fail: CI must never report a skipped check as passing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.clips import ClipInfo, make_clip
from testkit.rtsp_server import Mount, RtspServer, unavailable_reason
from tests.support.fixtures import missing_component


class ClipCache:
    """Clips made once per session (they are immutable); keyed by their arguments."""

    def __init__(self, root: Path):
        self.root = root
        self._made: dict[tuple, ClipInfo] = {}

    def get(self, *, seconds: float = 4, codec: str = "h264", suffix: str = ".mp4", **kw) -> ClipInfo:
        key = (seconds, codec, suffix, tuple(sorted(kw.items())))
        if key not in self._made:
            name = f"clip{len(self._made)}-{codec}-{seconds:g}s{suffix}"
            self._made[key] = make_clip(self.root / name, seconds=seconds, codec=codec, **kw)
        return self._made[key]


@pytest.fixture(scope="session")
def _clip_cache(tmp_path_factory) -> ClipCache:
    return ClipCache(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def clip_factory(_clip_cache) -> ClipCache:
    """``clip_factory.get(seconds=..., codec=..., width=..., gop=..., ...)`` -> ClipInfo."""
    return _clip_cache


@pytest.fixture
def h264_clip(_clip_cache) -> ClipInfo:
    """4 s of 640x360 H.264 at 15 fps, a keyframe every second, no B-frames (60 packets)."""
    return _clip_cache.get(seconds=4, codec="h264")


@pytest.fixture
def hevc_clip(_clip_cache) -> ClipInfo:
    """As ``h264_clip``, in H.265."""
    return _clip_cache.get(seconds=4, codec="hevc")


@pytest.fixture
def rtsp_server_factory(tmp_path):
    """``start({"/cam1": Mount(clip, loop=..., shared=...)}, port=0) -> RtspServer``;
    every server started is stopped after the test.  Server log: ``tmp_path/rtsp-server.log``."""
    reason = unavailable_reason()
    if reason:
        missing_component(reason)
    servers: list[RtspServer] = []

    def start(mounts, **kw) -> RtspServer:
        kw.setdefault("log_path", tmp_path / "rtsp-server.log")
        server = RtspServer(mounts, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_factory, h264_clip) -> RtspServer:
    """A running server with ``h264_clip`` on three mounts: ``/cam1`` plays it once and
    ends (EOS), ``/loop`` repeats it for ever, ``/shared`` repeats it, one stream for all."""
    return rtsp_server_factory({
        "/cam1": Mount(h264_clip.path),
        "/loop": Mount(h264_clip.path, loop=True),
        "/shared": Mount(h264_clip.path, loop=True, shared=True),
    })


@pytest.fixture
def english_cli(monkeypatch):
    """The ``vms`` command in English (``VMS_LANG=en``; subprocesses inherit it), for tests that read its English
    words; without it the command follows the locale, and the test machine's ``C.UTF-8`` means Danish."""
    monkeypatch.setenv("VMS_LANG", "en")
