"""Live view: the recorder's own packets handed to people watching in the browser.

Off unless a site turns it on for a camera (``live_view = true``, docs/configuration.md).  No second
connection to the camera and no re-encoding: the camera's recorder thread passes each packet it stores
to :meth:`LiveHub.feed`, which keeps the packets since the last keyframe (so a new viewer starts at once,
with a picture) and hands them to every viewer of that camera.

The recorder never waits for a viewer: a viewer is a bounded queue filled with
``loop.call_soon_threadsafe``; a viewer that falls more than :data:`MAX_BEHIND` packets behind skips to
the next keyframe (it sees a jump, never a broken picture), and the recorder goes on.  Who watches what
since when is kept here for the administrator's list (``watching``); start and end are audited by the web
API that serves the viewer (api/routes/live.py).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from storage.format.packets import Packet, StreamInfo

__all__ = ["LiveHub", "Packet", "StreamInfo", "Viewer"]  # the API tells the queue's items apart by these

MAX_GOP_PACKETS = 600        # a keyframe at least every 40 s at 15 fps; beyond that the cache waits for one
MAX_GOP_BYTES = 32 << 20
MAX_BEHIND = 90              # packets a viewer may lag (6 s at 15 fps) before it skips to the next keyframe
STALE_US = 5_000_000         # cached pictures older than this are not live any more (the camera went quiet)


@dataclass
class Viewer:
    """One person watching one camera: the packets waiting for them, filled by the recorder's thread."""

    id: int
    camera_id: str
    user: str
    started_us: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    stream: StreamInfo | None = None
    skipped: int = 0            # packets dropped because the viewer lagged
    _pending: int = 0
    _waiting_for_key: bool = False

    def _offer(self, item) -> None:
        """Called on the recorder's thread: never blocks."""
        if isinstance(item, Packet):
            if self._waiting_for_key and not item.keyframe:
                self.skipped += 1
                return
            if self._pending >= MAX_BEHIND:
                self._waiting_for_key = True
                self.skipped += 1
                return
            self._waiting_for_key = False
            self._pending += 1
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the viewer's event loop is closed: it has gone
            pass

    def taken(self) -> None:
        """The viewer's side took a packet off the queue."""
        self._pending = max(0, self._pending - 1)


class _Camera:
    def __init__(self) -> None:
        self.stream: StreamInfo | None = None
        self.gop: list[Packet] = []
        self.gop_bytes = 0
        self.viewers: dict[int, Viewer] = {}


class LiveHub:
    """The live packets of this node's cameras (one per appliance; see :class:`vms.appliance.Appliance`)."""

    def __init__(self, config: Callable[[], object] | None = None) -> None:
        """``config()`` gives the appliance's current config (a reload takes effect at the next packet)."""
        self._config = config
        self._seen: tuple[object, frozenset[str]] = (None, frozenset())
        self._lock = threading.Lock()
        self._cameras: dict[str, _Camera] = {}
        self._ids = itertools.count(1)

    def live_view_on(self, camera_id: str) -> bool:
        """Whether the current config lets staff watch ``camera_id`` live (``live_view = true``, enabled)."""
        if self._config is None:
            return True
        cfg = self._config()
        if self._seen[0] is not cfg:
            self._seen = (cfg, frozenset(c.id for c in cfg.cameras if c.enabled and c.live_view))
        return camera_id in self._seen[1]

    # -- the recorder's side --------------------------------------------------------

    def feed(self, camera_id: str, stream: StreamInfo | None, pkt: Packet) -> None:
        """One packet the recorder stored (its thread; returns at once).  Nothing is kept for a camera
        without live view, and turning it off drops what was kept."""
        if stream is None:
            return
        if not self.live_view_on(camera_id):
            if camera_id in self._cameras:
                with self._lock:
                    cam = self._cameras.pop(camera_id, None)
                for v in (cam.viewers.values() if cam else ()):
                    v._offer(None)  # ends the viewer's stream
            return
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                cam = self._cameras[camera_id] = _Camera()
            if cam.stream != stream:  # a new connection with other parameters: viewers start again
                cam.stream, cam.gop, cam.gop_bytes = stream, [], 0
                for v in cam.viewers.values():
                    v._waiting_for_key = True
                    v._offer(stream)
            if pkt.keyframe:
                cam.gop, cam.gop_bytes = [], 0
            if pkt.keyframe or cam.gop:
                if len(cam.gop) < MAX_GOP_PACKETS and cam.gop_bytes + len(pkt.data) <= MAX_GOP_BYTES:
                    cam.gop.append(pkt)
                    cam.gop_bytes += len(pkt.data)
                else:
                    cam.gop, cam.gop_bytes = [], 0
            for v in cam.viewers.values():
                v._offer(pkt)

    # -- the viewer's side ----------------------------------------------------------

    def watch(self, camera_id: str, user: str, now_us: int, loop: asyncio.AbstractEventLoop) -> Viewer:
        """Start watching: the viewer's queue gets the stream, then the packets since the last keyframe."""
        viewer = Viewer(next(self._ids), camera_id, user, now_us, loop)
        with self._lock:
            cam = self._cameras.get(camera_id)
            if cam is None:
                cam = self._cameras[camera_id] = _Camera()
            cam.viewers[viewer.id] = viewer
            if cam.stream is not None and cam.gop and now_us - cam.gop[-1].wall_us <= STALE_US:
                viewer._offer(cam.stream)
                for pkt in cam.gop:
                    viewer._offer(pkt)
            else:
                viewer._waiting_for_key = True
                if cam.stream is not None:
                    viewer._offer(cam.stream)
        return viewer

    def leave(self, viewer: Viewer) -> None:
        with self._lock:
            cam = self._cameras.get(viewer.camera_id)
            if cam is not None:
                cam.viewers.pop(viewer.id, None)

    def watching(self) -> list[Viewer]:
        """Everyone watching now, longest first (for the administrator)."""
        with self._lock:
            viewers = [v for cam in self._cameras.values() for v in cam.viewers.values()]
        return sorted(viewers, key=lambda v: (v.started_us, v.id))

    def last_packet_us(self, camera_id: str) -> int | None:
        """When the newest cached packet arrived (None: no picture to start from)."""
        with self._lock:
            cam = self._cameras.get(camera_id)
            return cam.gop[-1].wall_us if cam and cam.gop else None
