"""Failed attempts per client address, in memory: a guessing address waits.

Used by sign-in (names and passwords) and by delivery links (tokens and
passcodes).  Per process: each node of a cluster counts its own.  Behind a
reverse proxy the client address is the proxy's unless ``api.trusted_proxies``
names it, and then everyone behind the proxy shares one count.  Loopback and
unknown addresses are never counted: that is this machine's own tools, or a
local reverse proxy not listed in ``api.trusted_proxies``, whose one address
stands for every user behind it (one guesser would lock everyone out).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from collections.abc import Callable


def counted(client: str) -> bool:
    """Whether failures of ``client`` are counted (see the module docstring)."""
    if not client:
        return False
    try:
        return not ipaddress.ip_address(client).is_loopback
    except ValueError:
        return True  # not an IP address (test clients, unix sockets): counted as given


class AddressGuard:
    """``limit`` failures from one address within ``window_s`` seconds lock the
    address out until the oldest of them is ``window_s`` old (thread-safe)."""

    MAX_ADDRESSES = 10_000  # addresses remembered; the oldest is forgotten first

    def __init__(self, limit: int, window_s: float, monotonic_s: Callable[[], float]):
        self.limit, self.window_s, self._now = limit, window_s, monotonic_s
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._refusals: dict[str, tuple[float, int]] = {}  # address -> (last reported, refused since)

    def retry_after(self, client: str) -> float:
        """Seconds the address must wait (0: it may try)."""
        if not counted(client):
            return 0.0
        with self._lock:
            return max(0.0, self._locked_until.get(client, 0.0) - self._now())

    def failed(self, client: str) -> bool:
        """Count a failure; True when this one locks the address out."""
        if not counted(client):
            return False
        now = self._now()
        with self._lock:
            q = self._fails.pop(client, None) or deque()
            self._fails[client] = q  # most recently failed last: the least recent is forgotten first
            q.append(now)
            while q and now - q[0] > self.window_s:
                q.popleft()
            if len(self._fails) > self.MAX_ADDRESSES:
                self._fails.pop(next(iter(self._fails)))  # never ``client``: it was just moved to the end
            if len(q) >= self.limit:
                if len(self._locked_until) >= self.MAX_ADDRESSES:  # only on a new lock, and only ended ones go
                    self._locked_until = {a: t for a, t in self._locked_until.items() if t > now}
                self._locked_until[client] = q[0] + self.window_s
                q.clear()
                return True
            return False

    def refused(self, client: str, *, every_s: float = 60.0) -> int | None:
        """Count a refusal of a locked-out address.  Returns how many refusals (this one included) to report
        now, or None while the last report is younger than ``every_s``: refusing costs the guesser nothing,
        so reporting each one would let it flood whatever keeps the reports."""
        now = self._now()
        with self._lock:
            last, pending = self._refusals.get(client, (float("-inf"), 0))
            pending += 1
            if now - last < every_s:
                self._refusals[client] = (last, pending)
                return None
            if len(self._refusals) > self.MAX_ADDRESSES:
                self._refusals.pop(next(iter(self._refusals)))
            self._refusals[client] = (now, 0)
            return pending
