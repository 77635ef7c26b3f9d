"""The archive seen from outside: ``vms doctor``'s archive checks and ``vms check``'s bucket comparison.

:func:`doctor_findings` reads and probes, changes nothing: the credentials file, the store's reachability
and the bucket (one ``HeadBucket``), versioning, object lock, and the upload queue with how long this
node's disk can buffer while the store is away.  :func:`compare` lists where the index and the bucket
disagree for this node's objects.  Messages never hold credentials.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.objectstore import StoreError
from storage.sql import archive_queries as aq
from storage.sql.models import Segment
from vms.archive.bucket import node_prefix, open_store
from vms.core.errors import DomainError
from vms.core.finding_words import Num
from vms.core.i18n import N_

HOUR_US = 3_600_000_000


class BucketProblem(NamedTuple):
    kind: str  # archive-missing | archive-size | archive-unknown
    key: str
    detail: str
    segment_id: int | None


def doctor_findings(cfg, engine) -> list[tuple[str, str, str, dict]]:
    """(check, status, ``doctor.archive.*`` key, its fields) for ``[archive]``; nothing when it is not configured."""
    a = cfg.archive
    if a is None:
        return []
    out: list[tuple[str, str, str, dict]] = []
    try:
        store = open_store(a, attempts=1)
    except DomainError as exc:
        return [("archive", "fail", N_("doctor.archive.config"), {"error": exc.message})]
    try:
        status = store.bucket_status()
    except StoreError as exc:
        why = {"unreachable": N_("doctor.archive.unreachable"), "credentials": N_("doctor.archive.credentials"),
               "no_bucket": N_("doctor.archive.no_bucket")}.get(exc.kind, N_("doctor.archive.refused"))
        out.append(("archive", "fail", why, {"error": str(exc)}))
        out += _queue(cfg, engine)
        return out
    out.append(("archive", "ok", N_("doctor.archive.ok"), {"bucket": repr(a.bucket), "endpoint": a.endpoint}))
    if status.versioning == "Enabled":
        out.append(("archive_versioning", "ok", N_("doctor.archive.versioning_on"), {}))
    else:
        out.append(("archive_versioning", "warn", N_("doctor.archive.versioning_off"), {}))
    if status.object_lock:
        out.append(("archive_object_lock", "ok", N_("doctor.archive.lock_on"), {}))
    else:
        out.append(("archive_object_lock", "warn", N_("doctor.archive.lock_off"), {}))
    out += _queue(cfg, engine)
    return out


def _queue(cfg, engine) -> list[tuple[str, str, str, dict]]:
    if engine is None:
        return []
    now = int(time.time() * 1e6)
    try:
        with Session(engine) as s:
            counts = aq.counts(s, cfg.node_id)
            hour_bytes = s.scalar(select(func.coalesce(func.sum(Segment.size_bytes), 0))
                                  .where(Segment.node_id == cfg.node_id, Segment.end_us > now - HOUR_US)) or 0
    except Exception as exc:
        return [("archive_queue", "unknown", N_("doctor.archive.queue_unreadable"), {"error": exc.__class__.__name__})]
    queued = [c for c in counts if c.state == "queued"]
    n, size = sum(c.objects for c in queued), sum(c.size_bytes for c in queued)
    oldest = min((c.oldest_us for c in queued if c.oldest_us), default=None)
    buffer = None
    root = cfg.storage_path
    if hour_bytes and root.exists():
        st = os.statvfs(root)
        buffer = {"rate": Num(hour_bytes / 1e9, 2), "hours": Num(st.f_bavail * st.f_frsize / hour_bytes, 0)}
    if not n:
        return [("archive_queue", "ok", N_("doctor.archive.queue_empty_buffer") if buffer
                 else N_("doctor.archive.queue_empty"), buffer or {})]
    age_s = max(0.0, (now - oldest) / 1e6) if oldest else 0.0
    status = "warn" if age_s > max(600.0, 10 * cfg.archive.upload_after_s) else "ok"
    waiting = {"segments": n, "gb": Num(size / 1e9, 2), "minutes": Num(age_s / 60, 0)}
    return [("archive_queue", status, N_("doctor.archive.queue_buffer") if buffer else N_("doctor.archive.queue"),
             waiting | (buffer or {}))]


def compare(app) -> list[BucketProblem]:
    """Where this node's index and the bucket disagree (newest versions under the node's prefix, and under
    the prefixes of nodes it adopted: their objects keep the prefix they were uploaded under)."""
    cfg = app.config.archive
    store = open_store(cfg, attempts=1)
    with Session(app.engine) as s:
        indexed = aq.archived_keys(s, app.config.node_id)
    prefixes = {node_prefix(cfg, app.config.node_id)}
    prefixes |= {node_prefix(cfg, k[len(cfg.key_prefix):].split("/", 1)[0]) for k in indexed
                 if k.startswith(cfg.key_prefix) and "/" in k[len(cfg.key_prefix):]}
    listed = {}
    for prefix in sorted(prefixes):
        listed.update(store.keys(prefix))
    out: list[BucketProblem] = []
    for key, (segment_id, size) in sorted(indexed.items()):
        got = listed.pop(key, None)
        if got is None:
            out.append(BucketProblem("archive-missing", key, "the index says it is archived; the bucket has no "
                                                             "such object", segment_id))
        elif got != size:
            out.append(BucketProblem("archive-size", key, f"{got} bytes in the bucket, {size} in the index", segment_id))
    with Session(app.engine) as s:
        pending = {k for k in (r[1] for r in aq.expired_due(s, app.config.node_id, 2**62, 100_000))}
        queued = {i.object_key for i in aq.due(s, app.config.node_id, 2**62, 100_000)}
    for key in sorted(set(listed) - pending - queued):
        out.append(BucketProblem("archive-unknown", key, "an object under this node's prefix the index does not "
                                                         "know", None))
    return out
