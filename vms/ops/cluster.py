"""Several recorder nodes on one PostgreSQL: fetching another node's segments.

Each node records its own cameras onto its own disk; index, tickets, holds and
audit are shared in PostgreSQL, and every node holds the same master key (the
day keys in the shared index are wrapped by it).  A node asked to play or
export footage recorded elsewhere fetches the segment file, still encrypted,
from the recording node's internal endpoint ``GET /internal/segments/{id}``
and decrypts it in memory (docs/design/multi-node.md).

Requests between nodes carry ``X-VMS-Node`` (the caller's node id) and
``X-VMS-Auth: <unix seconds>.<hex HMAC-SHA256>`` over ``"<seconds>\\n<method>\\n<path>\\n<caller>"``
with the shared secret of ``[cluster] secret_file``; a signature older or newer
than :data:`MAX_SKEW_S` is refused.  The secret never leaves the file; what
travels is ciphertext plus the segment's id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql.index import SegmentRef
from storage.store import SegmentUnavailable
from vms.access.auth import same_secret
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.numbers import decimal

MAX_SKEW_S = 60
MIN_SECRET_BYTES = 32
NODE_HEADER = "X-VMS-Node"
AUTH_HEADER = "X-VMS-Auth"


class ClusterAuthError(Exception):
    """A request between nodes that is not signed with the shared secret (message safe to show); ``key`` and
    ``params`` name the same text in the catalogs."""

    def __init__(self, message: str, key: str, params: dict | None = None) -> None:
        super().__init__(message)
        self.key, self.params = key, params or {}


def read_secret(path: Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{path}: the cluster secret must be at least {MIN_SECRET_BYTES} bytes "
                         "(make one with: vms cluster new-secret FILE)")
    return secret


def write_new_secret(path: Path) -> None:
    """A fresh random secret (mode 0600); refuses to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")


def _mac(secret: bytes, ts: int, method: str, path: str, caller: str) -> str:
    msg = f"{ts}\n{method.upper()}\n{path}\n{caller}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def sign(secret: bytes, method: str, path: str, caller: str, *, now_s: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now_s is None else now_s)
    return {NODE_HEADER: caller, AUTH_HEADER: f"{ts}.{_mac(secret, ts, method, path, caller)}"}


def verify(secret: bytes, method: str, path: str, headers, *, now_s: float | None = None) -> str:
    """The calling node's id, or :class:`ClusterAuthError`."""
    caller = headers.get(NODE_HEADER) or ""
    ts_text, _, mac = (headers.get(AUTH_HEADER) or "").partition(".")
    ts = decimal(ts_text, max_digits=12)
    if not caller or ts is None or not mac:
        raise ClusterAuthError(f"node requests must carry {NODE_HEADER} and {AUTH_HEADER}",
                               N_("cluster.err.headers"), {"node_header": NODE_HEADER, "auth_header": AUTH_HEADER})
    now = time.time() if now_s is None else now_s
    if abs(now - ts) > MAX_SKEW_S:
        raise ClusterAuthError(f"node signature is older or newer than {MAX_SKEW_S} s (are the clocks synchronised?)",
                               N_("cluster.err.skew"), {"seconds": MAX_SKEW_S})
    if not same_secret(_mac(secret, ts, method, path, caller), mac):
        raise ClusterAuthError("node signature does not match the cluster secret", N_("cluster.err.signature"))
    return caller


class PeerFetcher:
    """``store.remote_fetch``: the encrypted bytes of a segment recorded by a peer."""

    def __init__(self, *, node_id: str, secret: bytes, peers: dict[str, str], timeout_s: float):
        self.node_id, self._secret, self.peers, self.timeout_s = node_id, secret, dict(peers), timeout_s

    def __call__(self, ref: SegmentRef) -> bytes:
        base = self.peers.get(ref.node_id)
        if base is None:
            raise SegmentUnavailable(ref.path, f"recorded on node {ref.node_id!r}, which is not in [cluster] peers")
        path = f"/internal/segments/{ref.id}"
        req = urllib.request.Request(base.rstrip("/") + path,
                                     headers=sign(self._secret, "GET", path, self.node_id))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                data = r.read(ref.size_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise SegmentUnavailable(ref.path, f"node {ref.node_id!r} refused it (HTTP {exc.code})") from None
        except (OSError, ValueError) as exc:
            raise SegmentUnavailable(ref.path, f"node {ref.node_id!r} is unreachable ({exc.__class__.__name__})") from None
        if len(data) != ref.size_bytes:
            raise SegmentUnavailable(ref.path, f"node {ref.node_id!r} sent {len(data)} bytes, the index says "
                                               f"{ref.size_bytes}")
        return data


def install(app) -> None:
    """Let ``app.store`` read other nodes' segments when ``[cluster]`` is configured."""
    cfg = app.config.cluster
    if cfg is None:
        return
    app.store.remote_fetch = PeerFetcher(node_id=app.config.node_id, secret=read_secret(cfg.secret_file),
                                         peers=cfg.peers, timeout_s=cfg.fetch_timeout_s)


def sealed_segment_file(app, segment_id: int) -> Path:
    """The ciphertext file of a sealed segment stored on this node, for a peer that verified itself.

    Raises DomainError(NOT_FOUND) when the index has no sealed segment of that id or its file is not here."""
    with Session(app.engine) as s:
        ref = index.segment_by_id(s, segment_id)
    if ref is None or ref.status != "sealed":
        raise DomainError(Kind.NOT_FOUND, f"segment {segment_id} is not in the index (deleted, or never sealed)",
                          key=N_("cluster.err.no_segment"), params={"segment": segment_id})
    try:
        path = app.store.read_ciphertext(ref)
        if not path.is_file():
            raise FileNotFoundError(path)
    except FileNotFoundError as exc:
        raise DomainError(Kind.NOT_FOUND, f"segment {segment_id} is not on node {app.config.node_id}: "
                                          f"{getattr(exc, 'reason', 'its file is missing')}",
                          key=N_("cluster.err.segment_elsewhere"),
                          params={"segment": segment_id, "node": app.config.node_id}) from None
    return path
