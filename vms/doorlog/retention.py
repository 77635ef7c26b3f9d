"""Door-log retention, run by the janitor at every sweep (docs/design/doorlog.md, "Retention").

1. Entries older than ``retain_days`` that no door hold in force covers are deleted.
2. A day whose every entry is past its retention has its day key shredded; entries a hold still keeps are
   first re-sealed under a new key of their own (``held:DAY:N``), so a hold never pins a whole day.
3. A held key no entry uses any more (the hold ended and its entries were deleted in step 1) is shredded.

Steps 1-3 run in one transaction with one audit entry (counts and the days shredded, never identifiers).
After a shred the database's files are scrubbed (SQLite: WAL checkpoint with ``secure_delete`` on;
PostgreSQL: ``VACUUM``), as for footage keys.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from sqlalchemy.orm import Session

from storage.keys.doorlog_keys import DoorlogKeys
from storage.sql import doorlog as q
from vms.access.audit import SYSTEM, record
from vms.core.i18n import DEFAULT, N_, Translator, translator
from vms.doorlog.ingest import DAY_US, utc_day

log = logging.getLogger(__name__)


@dataclass
class DoorlogSweep:
    deleted: int = 0
    resealed: int = 0
    shredded_days: list[str] = field(default_factory=list)
    shredded_held: int = 0
    held_kept: int = 0
    scrubbed: bool = False


def cutoff_us(now_us: int, retain_days: int) -> int:
    """Entries at or before this time have expired."""
    return now_us - retain_days * DAY_US


def sweep(app, now_us: int, grace_us: int) -> DoorlogSweep:
    cfg = app.config.doorlog
    res = DoorlogSweep()
    if cfg is None:
        return res
    cutoff = cutoff_us(now_us, cfg.retain_days)
    keys = DoorlogKeys(app.keys.keyring)
    with Session(app.engine) as s, s.begin():
        res.deleted = q.delete_expired(s, cutoff_us=cutoff, now_us=now_us, grace_us=grace_us)
        for key_id, day in q.expired_day_keys(s, utc_day(cutoff)):
            held = q.entries_of_key(s, key_id)  # what step 1 left of a wholly expired day: held entries
            if held:
                old = keys.by_ids(s, [key_id])[key_id]
                new = keys.new_held(s, day, now_us=now_us)
                for e in held:
                    ident = old.open(e.id_sealed)
                    q.reseal_entry(s, e.id, key_id=new.key_id, id_hash=new.digest(ident), id_sealed=new.seal(ident))
                res.resealed += len(held)
            keys.shred(s, key_id, now_us=now_us)
            res.shredded_days.append(day)
        for key_id in q.empty_held_keys(s):
            keys.shred(s, key_id, now_us=now_us)
            res.shredded_held += 1
        res.held_kept = q.held_expired(s, cutoff_us=cutoff, now_us=now_us, grace_us=grace_us)[0]
        if res.deleted or res.shredded_days or res.shredded_held:
            record(s, SYSTEM, "doorlog.retention", now_us=now_us, obj="doorlog",
                   detail=f"deleted={res.deleted} before={cutoff} shredded_days={','.join(res.shredded_days)} "
                          f"shredded_held_keys={res.shredded_held} resealed_held={res.resealed} "
                          f"held_kept={res.held_kept}")
    if res.deleted or res.shredded_days or res.shredded_held:
        res.scrubbed = q.scrub(app.engine)
        log.info("door log: deleted %d entries, shredded %d day key(s) and %d held key(s), %d held entries kept",
                 res.deleted, len(res.shredded_days), res.shredded_held, res.held_kept)
    return res


@dataclass
class DoorlogReport:
    """The door log in the retention report: nothing kept longer than allowed unless a hold keeps it."""

    retain_days: int
    entries: int
    oldest_us: int | None
    held_expired: int  # past retain_days, kept by a door hold
    violations: int  # past retain_days (plus the sweep's grace) and not held
    unshredded_days: list[str]  # day keys that should have been destroyed by now

    def to_dict(self) -> dict:
        return asdict(self)


def report(engine, config, now_us: int, grace_us: int, violation_grace_us: int) -> DoorlogReport | None:
    cfg = config.doorlog
    if cfg is None:
        return None
    cutoff = cutoff_us(now_us, cfg.retain_days)
    late = cutoff - violation_grace_us
    with Session(engine) as s:
        oldest, _newest, n = q.entry_span(s)
        held, _ = q.held_expired(s, cutoff_us=cutoff, now_us=now_us, grace_us=grace_us)
        late_held, _ = q.held_expired(s, cutoff_us=late, now_us=now_us, grace_us=grace_us)
        late_all = q.count_entries_before(s, late)
        days = [day for _id, day in q.expired_day_keys(s, utc_day(late))]
    return DoorlogReport(cfg.retain_days, n, oldest, held, late_all - late_held, days)


def render(r: DoorlogReport, iso, t: Translator | None = None) -> list[str]:
    """The door log's lines of ``vms retention report`` in ``t``'s language (Danish by default)."""
    t = t or translator(DEFAULT)
    lines = [t(N_("cli.retention.doorlog")).format(days=r.retain_days, entries=r.entries, oldest=iso(r.oldest_us),
                                                   held=r.held_expired)]
    if r.violations:
        lines.append(t(N_("cli.retention.doorlog_violation")).format(entries=r.violations))
    if r.unshredded_days:
        lines.append(t(N_("cli.retention.doorlog_keys")).format(days=", ".join(r.unshredded_days)))
    return lines
