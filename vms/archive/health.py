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

HOUR_US = 3_600_000_000


class BucketProblem(NamedTuple):
    kind: str  # archive-missing | archive-size | archive-unknown
    key: str
    detail: str
    segment_id: int | None


def doctor_findings(cfg, engine) -> list[tuple[str, str, str]]:
    """(check, status, message) for ``[archive]``; nothing when it is not configured."""
    a = cfg.archive
    if a is None:
        return []
    out: list[tuple[str, str, str]] = []
    where = f"bucket {a.bucket!r} at {a.endpoint}"
    try:
        store = open_store(a, attempts=1)
    except DomainError as exc:
        return [("archive", "fail", f"{exc.message}; nothing can be archived or read from the archive")]
    try:
        status = store.bucket_status()
    except StoreError as exc:
        why = {"unreachable": "the store cannot be reached (address, port, firewall, or the store is down)",
               "credentials": "the store refuses the access key or secret in the credentials file",
               "no_bucket": "the bucket does not exist; create it (with object lock) before starting",
               }.get(exc.kind, "the store refused the request")
        out.append(("archive", "fail", f"{exc}: {why}. Segments wait on local disk until this is fixed"))
        out += _queue(cfg, engine)
        return out
    out.append(("archive", "ok", f"{where} is reachable and the credentials are accepted"))
    if status.versioning == "Enabled":
        out.append(("archive_versioning", "ok", "versioning is on: an overwrite or deletion by someone else leaves "
                                                "the earlier version; the janitor deletes every version on expiry"))
    else:
        out.append(("archive_versioning", "warn", "versioning is off: an object overwritten or deleted by someone "
                                                  "with the bucket's credentials is lost; turn it on (expiry deletes "
                                                  "every version either way)"))
    if status.object_lock:
        out.append(("archive_object_lock", "ok", "object lock is on: legal holds are mirrored as S3 legal holds, so "
                                                 "held objects cannot be deleted from the bucket until released"))
    else:
        out.append(("archive_object_lock", "warn", "the bucket has no object lock: legal holds protect held footage in "
                                                   "the appliance only, not against deletion in the bucket; object "
                                                   "lock can only be chosen when a bucket is created"))
    out += _queue(cfg, engine)
    return out


def _queue(cfg, engine) -> list[tuple[str, str, str]]:
    if engine is None:
        return []
    now = int(time.time() * 1e6)
    try:
        with Session(engine) as s:
            counts = aq.counts(s, cfg.node_id)
            hour_bytes = s.scalar(select(func.coalesce(func.sum(Segment.size_bytes), 0))
                                  .where(Segment.node_id == cfg.node_id, Segment.end_us > now - HOUR_US)) or 0
    except Exception as exc:
        return [("archive_queue", "unknown", f"the upload queue could not be read ({exc.__class__.__name__})")]
    queued = [c for c in counts if c.state == "queued"]
    n, size = sum(c.objects for c in queued), sum(c.size_bytes for c in queued)
    oldest = min((c.oldest_us for c in queued if c.oldest_us), default=None)
    buffer = ""
    root = cfg.storage_path
    if hour_bytes and root.exists():
        st = os.statvfs(root)
        hours = st.f_bavail * st.f_frsize / hour_bytes
        buffer = f"; at the last hour's rate ({hour_bytes / 1e9:.2f} GB/h) this disk can buffer about {hours:.0f} h"
    if not n:
        return [("archive_queue", "ok", "nothing waits for upload" + buffer)]
    age_s = max(0.0, (now - oldest) / 1e6) if oldest else 0.0
    status = "warn" if age_s > max(600.0, 10 * cfg.archive.upload_after_s) else "ok"
    return [("archive_queue", status, f"{n} segment(s) ({size / 1e9:.2f} GB) wait for upload, the oldest for "
                                      f"{age_s / 60:.0f} min" + buffer)]


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
