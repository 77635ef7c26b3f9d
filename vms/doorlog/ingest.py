"""Importing one CSV file into the door log: all of it in one transaction, or nothing.

:func:`import_file` is the one use case, for the inbox watch (vms/doorlog/inbox.py) and for a controller's
HTTP push alike.  Contract:

* the file is parsed as a whole (vms/doorlog/csvfile.py); any bad line rejects the whole file, and the report
  (line numbers and reasons, never an identifier) is kept in ``doorlog_files``, logged and audited;
* a file whose SHA-256 was imported before adds nothing (``duplicate``); a passage already stored (same
  identifier, door and time, e.g. from overlapping exports) is skipped;
* passages older than ``retain_days`` are not imported (they would be deleted at once) and counted;
* identifiers are stored only sealed and keyed-hashed under their UTC day's door-log key;
* entries, doors, the file's row and its audit entry are committed together; the caller removes the file from
  the inbox only after this returns.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage.keys.doorlog_keys import DoorlogKeys
from storage.sql import doorlog as q
from vms.access.audit import Actor, record
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.doorlog import csvfile

log = logging.getLogger(__name__)
DAY_US = 86_400_000_000
_HASH_ORDER = itemgetter(3)  # id_hash, the first column of uq_doorlog_entries_who


@dataclass(frozen=True)
class ImportResult:
    file_id: int | None
    status: str  # imported, duplicate, rejected
    rows: int  # passages in the file
    added: int  # entries stored (passages already stored and expired ones are not)
    expired: int
    report: str  # problems by line, or notes (never identifiers)


def safe_name(name: str) -> str:
    """A file name fit for logs and reports: runs of six or more digits (a CPR number?) masked."""
    name = re.sub(r"[^\w.,;:@+=()\[\] -]", "_", name)[:200]
    return re.sub(r"\d{6,}", lambda m: "#" * len(m[0]), name)


def require_config(app):
    if app.config.doorlog is None:
        raise DomainError(Kind.PRECONDITION, "the door log is not configured ([doorlog] in the config file)",
                          key=N_("doorlog.err.not_configured"))
    return app.config.doorlog


def utc_day(t_us: int) -> str:
    return datetime.fromtimestamp(t_us // 1_000_000, UTC).strftime("%Y-%m-%d")


def import_file(app, data: bytes, *, name: str, source: str, actor: Actor) -> ImportResult:
    cfg = require_config(app)
    shown = safe_name(name)
    if len(data) > cfg.max_file_bytes:
        raise DomainError(Kind.INVALID, f"{shown}: {len(data)} bytes, more than [doorlog] max_file_bytes "
                                        f"({cfg.max_file_bytes})",
                                        key=N_("doorlog.err.too_big"),
                                        params={"name": shown, "size": len(data), "max": cfg.max_file_bytes})
    sha = hashlib.sha256(data).hexdigest()
    now = app.clock.now_us()
    with Session(app.engine) as s, s.begin():
        if q.file_by_sha(s, sha) is not None:
            return _finish(s, actor, now, sha, shown, source, "duplicate", 0, 0, 0,
                           "this file was imported before; nothing added")
    parsed = csvfile.parse(data, cfg, tz=ZoneInfo(app.config.timezone), now_us=now)
    if not parsed.ok:
        with Session(app.engine) as s, s.begin():
            result = _finish(s, actor, now, sha, shown, source, "rejected", parsed.lines, 0, 0, parsed.report())
        log.warning("door log: file %s rejected, nothing imported:\n%s", shown, result.report)
        return result
    cutoff = now - cfg.retain_days * DAY_US
    keep = [p for p in parsed.passages if p.at_us > cutoff]
    expired = len(parsed.passages) - len(keep)
    with Session(app.engine) as s, s.begin():
        file_id = q.insert_file(s, sha256=sha, name=shown, source=source, now_us=now, status="imported",
                                rows=len(parsed.passages), added=0, report="")
        added = _store(app, s, keep, file_id, now)
        q.add_doors(s, {p.door_id for p in keep}, now_us=now)
        q.set_file_added(s, file_id, added)
        note = _notes(len(keep) - added, expired, cfg.retain_days)
        record(s, actor, "doorlog.import", now_us=now, obj=f"doorlog-file:{file_id}",
               detail=f"file={shown} sha256={sha} source={source} rows={len(parsed.passages)} added={added} "
                      f"already_stored={len(keep) - added} expired={expired}")
    log.info("door log: file %s imported: %d passage(s), %d added", shown, len(parsed.passages), added)
    return ImportResult(file_id, "imported", len(parsed.passages), added, expired, note)


def _store(app, s: Session, passages, file_id: int, now: int) -> int:
    """Seal and insert the passages under their UTC day's key; returns how many were new.

    Per day: one keyed hash per distinct identifier (people pass many times), one AES-GCM seal with its own
    random nonce per entry, and the day's entries inserted in the order of their keyed hash.  That order is
    the order of ``uq_doorlog_entries_who``: inserting in it walks the index once instead of at random, which
    on SQLite halved the insert's time (docs/benchmarks.md, "Door access log").  A day whose key this import
    made has nothing stored yet: its entries skip the check for stored ones (PostgreSQL: a plain ``COPY``)."""
    keys = DoorlogKeys(app.keys.keyring)
    by_index: dict[int, list[csvfile.Passage]] = defaultdict(list)
    for p in passages:
        by_index[p.at_us // DAY_US].append(p)
    added = 0
    for index in sorted(by_index):
        items = list(dict.fromkeys(by_index[index]))  # a line repeated in the file is one passage
        key = keys.for_day(s, utc_day(index * DAY_US), now_us=now)
        digests = {ident: key.digest(ident) for ident in {p.identifier for p in items}}
        sealed = key.seal_many([p.identifier for p in items])
        kid = key.key_id
        rows = [(kid, p.at_us, p.door_id, digests[p.identifier], box, file_id)
                for p, box in zip(items, sealed, strict=True)]
        rows.sort(key=_HASH_ORDER)
        added += q.insert_entries(s, rows, fresh_key=key.fresh)
    return added


def _notes(already: int, expired: int, retain_days: int) -> str:
    notes = []
    if already:
        notes.append(f"{already} passage(s) were stored already (from an earlier file) and were skipped")
    if expired:
        notes.append(f"{expired} passage(s) older than the retention ({retain_days} days) were not imported")
    return "; ".join(notes)


def _finish(s: Session, actor: Actor, now: int, sha: str, shown: str, source: str, status: str, rows: int,
            added: int, expired: int, report: str) -> ImportResult:
    file_id = q.insert_file(s, sha256=sha, name=shown, source=source, now_us=now, status=status, rows=rows,
                            added=added, report=report)
    record(s, actor, "doorlog.import", now_us=now, obj=f"doorlog-file:{file_id}", outcome=status,
           detail=f"file={shown} sha256={sha} source={source} rows={rows} added=0 report={report[:1500]!r}")
    return ImportResult(file_id, status, rows, added, expired, report)


def recent_files(app, limit: int = 50):
    with Session(app.engine) as s:
        return q.recent_files(s, limit)


def controller_for(app, token: str, *, client: str) -> Actor:
    """The controller whose token this is (its SHA-256 is in ``[[doorlog.controllers]]``), as an audit actor; an
    unknown token is audited and refused."""
    cfg = require_config(app)
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    for c in cfg.controllers:
        if hmac.compare_digest(digest, c.token_sha256):
            return Actor(f"controller:{c.id}", "controller", client)
    with Session(app.engine) as s, s.begin():
        record(s, Actor("anonymous", "controller", client), "doorlog.push", now_us=app.clock.now_us(),
               outcome="refused: unknown controller token")
    raise DomainError(Kind.UNAUTHENTICATED, "unknown controller token (Authorization: Bearer <the controller's "
                                            "token>, whose SHA-256 is in [[doorlog.controllers]])",
                      key=N_("doorlog.err.unknown_token"))
