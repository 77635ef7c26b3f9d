"""Coming back quickly after a camera outage, without hammering a camera that stays down.

Between sessions the recorder waits out an exponential back-off (``recorder.backoff_initial_s`` doubling up to
``backoff_max_s``).  During that wait :func:`wait_before_retry` probes the camera's TCP port once a second (one
connect, closed at once): a port seen closed and then open ends the wait, so recording resumes within about a
second of the camera's return instead of at the next back-off step.  A camera whose port stays open while its
stream fails (wrong path, credentials) gets the full back-off.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger("vms.recording.recorder")  # the recorder's messages, one logger

PROBE_INTERVAL_S = 1.0  # how often a camera that went away is checked for its return
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}


def probe_target(source: str) -> tuple[str, int] | None:
    """(host, port) of a network source, for the return probe (None: not a TCP source we can probe)."""
    parts = urlsplit(source)
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname and port else None


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_before_retry(stop: threading.Event, cam, seconds: float) -> bool:
    """Wait ``seconds`` or until ``cam``'s port returns after being seen closed; True when ``stop`` was set."""
    target = probe_target(cam.source)
    if target is None:
        return stop.wait(seconds)
    deadline = time.monotonic() + seconds
    seen_closed = False
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(PROBE_INTERVAL_S, left)):
            return True
        if not port_open(*target):
            seen_closed = True
        elif seen_closed:
            log.info("camera %s: its port answers again; reconnecting now", cam.id)
            return False
    return False
