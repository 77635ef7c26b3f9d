"""Retention rules (pure functions) and the retention report (``vms retention report``).

The rules decide, from plain numbers, whether footage has expired, whether a
hold covers it, how much space a watermark sweep must free and which days may
be shredded; :mod:`vms.retention.janitor` applies them.  They are tested without disk,
network or clock (tests/integration/test_retention_rules.py).

Rule: a segment expires when its *first* frame reaches the camera's maximum
age, ``start_us + retain_days * DAY_US <= now_us``.  No frame is ever kept
longer than ``retain_days`` plus one sweep interval; the newest frames of a
segment go up to one segment length early (docs/design/janitor.md explains why
the maximum, not the minimum, is what the appliance guarantees).

The report reads the index only (one short read transaction); it never touches
footage and needs no key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.sql import archive_queries
from storage.sql import retention_queries as rq
from vms.core.i18n import DEFAULT, N_, Translator, translator
from vms.core.times import iso
from vms.doorlog import retention as doorlog_retention
from vms.retention import state

DAY_US = 86_400_000_000
#: the promise is "gone within one minute of expiring" (sweep_interval_s is at most 60)
VIOLATION_GRACE_US = 60_000_000
HOUR_US = 3_600_000_000
#: a day or hour key is shredded only once its day or hour ended this long ago, so a
#: segment still being written (at most 600 s long) or waiting for recovery never
#: loses its key.  Age expiry is never delayed by it: an hour's last segment expires
#: ``retain_days`` (at least one day) after the hour ended.
SHRED_MARGIN_US = 3_600_000_000


def utc_day(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, UTC).strftime("%Y-%m-%d")


def cutoff_us(now_us: int, retain_days: int) -> int:
    """Segments that started at or before this have expired."""
    return now_us - retain_days * DAY_US


def expires_at_us(start_us: int, retain_days: int) -> int:
    return start_us + retain_days * DAY_US


def is_expired(start_us: int, retain_days: int, now_us: int) -> bool:
    return expires_at_us(start_us, retain_days) <= now_us


def is_violation(start_us: int, retain_days: int, now_us: int, *, held: bool) -> bool:
    """Footage older than allowed (beyond the one-minute grace) and not held."""
    return not held and expires_at_us(start_us, retain_days) + VIOLATION_GRACE_US <= now_us


class HoldIndex:
    """Active hold spans per camera; ``covers`` says whether a segment overlaps one."""

    def __init__(self, spans: Iterable[tuple[str, int, int]]):
        self._by_camera: dict[str, list[tuple[int, int]]] = {}
        for camera_id, start_us, end_us in spans:
            self._by_camera.setdefault(camera_id, []).append((start_us, end_us))

    def covers(self, camera_id: str, start_us: int, end_us: int) -> bool:
        return any(h_start < end_us and h_end > start_us for h_start, h_end in self._by_camera.get(camera_id, ()))

    def __bool__(self) -> bool:
        return bool(self._by_camera)


def free_space_floor(total_bytes: int, min_free_bytes: int, min_free_percent: float) -> int:
    """The free-space floor: the larger of the absolute and the relative setting."""
    return max(min_free_bytes, math.ceil(total_bytes * min_free_percent / 100))


def bytes_to_free(total_bytes: int, free_bytes: int, min_free_bytes: int, min_free_percent: float) -> int:
    """How many bytes a watermark sweep must free (0 when above the floor)."""
    return max(0, free_space_floor(total_bytes, min_free_bytes, min_free_percent) - free_bytes)


def grace_us(config) -> int:
    """How long a ticket's holds outlive its access window or its closing (``api.hold_grace_days``)."""
    return config.api.hold_grace_days * DAY_US


def hold_end_us(released_us: int | None, ticket_access_until_us: int | None, ticket_closed_us: int | None,
                grace: int) -> int | None:
    """When a hold stops protecting footage (None: not yet known, it holds).  A hold ends when it is released;
    a ticket's hold also ends ``grace`` after the ticket's access window or its closing, whichever is first,
    whether or not any process marked the ticket expired (``storage.sql.index.hold_in_force`` is the same
    rule in SQL, used by the janitor and the report)."""
    ends = [t for t in (released_us,
                        None if ticket_access_until_us is None else ticket_access_until_us + grace,
                        None if ticket_closed_us is None else ticket_closed_us + grace) if t is not None]
    return min(ends) if ends else None


def shred_before_day(now_us: int) -> str:
    """Only days before this one may be shredded (see SHRED_MARGIN_US)."""
    return utc_day(now_us - SHRED_MARGIN_US)


def shred_hours_ended_by_us(now_us: int) -> int:
    """Only hours that ended at or before this may be shredded (see SHRED_MARGIN_US)."""
    return now_us - SHRED_MARGIN_US


def hour_start_us(t_us: int) -> int:
    """The first microsecond of the UTC hour holding ``t_us``: the hour whose key encrypts a segment starting
    then (format version 2)."""
    return t_us - t_us % HOUR_US


def copy_unreadable_by_us(start_us: int, retain_days: int) -> int:
    """When every copy of an unheld segment starting at ``start_us`` has become unreadable (its hour key
    destroyed), given a sweep at that moment: when the last segment of its hour expires, at most one hour
    after its own expiry (each later sweep interval adds at most its length)."""
    return hour_start_us(start_us) + HOUR_US + retain_days * DAY_US


# ---------------------------------------------------------------- the report


@dataclass
class CameraReport:
    camera_id: str
    configured: bool
    removed_us: int | None
    retain_days: int
    oldest_start_us: int | None
    oldest_age_s: float | None
    segments: int
    size_bytes: int
    held_segments: int
    violations: int


@dataclass
class RetentionReport:
    generated_us: int
    legal_max_retain_days: int
    last_sweep: dict[str, dict] = field(default_factory=dict)  # node id -> last sweep summary
    cameras: list[CameraReport] = field(default_factory=list)
    held_beyond_legal: list[rq.HeldBeyond] = field(default_factory=list)  # kept past the legal maximum by a hold
    archive: list[dict] = field(default_factory=list)  # the S3 archive tier, by state (all nodes)
    doorlog: doorlog_retention.DoorlogReport | None = None  # when [doorlog] is configured

    @property
    def violations(self) -> int:
        door = (self.doorlog.violations + len(self.doorlog.unshredded_days)) if self.doorlog else 0
        return sum(c.violations for c in self.cameras) + door

    def to_dict(self) -> dict:
        return {
            "generated_us": self.generated_us,
            "legal_max_retain_days": self.legal_max_retain_days,
            "violations": self.violations,
            "last_sweep": self.last_sweep,
            "cameras": [asdict(c) for c in self.cameras],
            "held_beyond_legal_max": [h._asdict() for h in self.held_beyond_legal],
            "archive": self.archive,
            "doorlog": self.doorlog.to_dict() if self.doorlog else None,
        }


def build_report(engine: Engine, config, now_us: int) -> RetentionReport:
    """Per camera of the index (configured or removed, all nodes): maximum age,
    oldest footage, segments, bytes, held segments and violations."""
    configured = {c.id for c in config.cameras}
    report = RetentionReport(now_us, config.legal_max_retain_days)
    with Session(engine) as s:
        usage = {c: (n, b) for c, n, b, _m in rq.usage_by_camera(s)}
        grace = grace_us(config)
        held = rq.held_segment_counts(s, now_us, grace)
        legal_cutoff = cutoff_us(now_us, config.legal_max_retain_days)
        report.held_beyond_legal = rq.held_beyond(s, legal_cutoff, now_us, grace)
        report.last_sweep = {node: sweep.to_json() for node, sweep in state.last_sweeps(s).items()}
        report.archive = _archive_part(s)
        for cam in rq.camera_retention(s):
            oldest = rq.oldest_start(s, cam.camera_id)
            limit = cutoff_us(now_us, cam.retain_days) - VIOLATION_GRACE_US
            overdue = rq.count_started_by(s, cam.camera_id, limit)
            overdue_held = rq.count_held_started_by(s, cam.camera_id, limit, now_us, grace) if overdue else 0
            n, b = usage.get(cam.camera_id, (0, 0))
            report.cameras.append(CameraReport(
                camera_id=cam.camera_id,
                configured=cam.camera_id in configured,
                removed_us=cam.removed_us,
                retain_days=cam.retain_days,
                oldest_start_us=oldest,
                oldest_age_s=None if oldest is None else (now_us - oldest) / 1e6,
                segments=n,
                size_bytes=b,
                held_segments=held.get(cam.camera_id, 0),
                violations=overdue - overdue_held,
            ))
    report.doorlog = doorlog_retention.report(engine, config, now_us, grace_us(config), VIOLATION_GRACE_US)
    return report


ARCHIVE_STATES = {("queued", True): "waiting for upload (on local disk)",
                  ("archived", True): "archived, also on local disk",
                  ("archived", False): "archived only (local copy removed)",
                  ("expired", True): "expired: every version to be deleted from the bucket (key shredded)",
                  ("expired", False): "expired: every version to be deleted from the bucket (key shredded)"}


def _archive_part(s: Session) -> list[dict]:
    """Segments' copies in the S3 archive by state: what is there, what waits, what is still to be deleted.
    Their age is in the camera lines (an archived segment is an indexed segment until it expires)."""
    out: dict[str, dict] = {}
    for c in archive_queries.counts(s):
        what = ARCHIVE_STATES.get((c.state, c.local), c.state)
        row = out.setdefault(what, {"state": what, "objects": 0, "size_bytes": 0, "oldest_us": None})
        row["objects"] += c.objects
        row["size_bytes"] += c.size_bytes
        if c.oldest_us is not None and c.state != "archived":
            row["oldest_us"] = min(x for x in (row["oldest_us"], c.oldest_us) if x is not None)
    return list(out.values())


def _iso(t_us: int | None) -> str:
    if t_us is None:
        return "-"
    return iso(t_us, "seconds")


def _age(seconds: float | None, unit: str = "d") -> str:
    if seconds is None:
        return "-"
    return f"{seconds / 86400:.2f} {unit}"


def render_text(report: RetentionReport, t: Translator | None = None) -> str:
    """The report for people at a terminal, in ``t``'s language (Danish by default); ``--json`` is for scripts."""
    t = t or translator(DEFAULT)
    lines = [t(N_("cli.retention.title")).format(at=_iso(report.generated_us), days=report.legal_max_retain_days)]
    if report.last_sweep:
        for node, sweep in report.last_sweep.items():
            lines.append(t(N_("cli.retention.last_sweep")).format(node=node, at=_iso(sweep.get("at_us"))))
    else:
        lines.append(t(N_("cli.retention.never_swept")))
    head = [t(k) for k in (N_("cli.retention.camera"), N_("cli.retention.keep"), N_("cli.retention.oldest"),
                           N_("cli.retention.age"), N_("cli.retention.segments"), N_("cli.retention.bytes"),
                           N_("cli.retention.held"), N_("cli.retention.violations"))]
    w = [max(24, len(head[0]) + 1), max(6, len(head[1])), 21, 9] + [max(n, len(h)) for n, h in zip(
        (9, 14, 6, 10), head[4:], strict=True)]
    lines.append(f"{head[0]:{w[0]}} {head[1]:>{w[1]}} {head[2]:>{w[2]}} {head[3]:>{w[3]}} {head[4]:>{w[4]}} "
                 f"{head[5]:>{w[5]}} {head[6]:>{w[6]}} {head[7]:>{w[7]}}")
    removed, day = t(N_("cli.retention.removed")), t(N_("cli.retention.days_unit"))
    for c in report.cameras:
        name = c.camera_id + ("" if c.configured else f" ({removed})")
        keep = f"{c.retain_days} {day}"
        lines.append(f"{name:{w[0]}} {keep:>{w[1]}} {_iso(c.oldest_start_us):>{w[2]}} {_age(c.oldest_age_s, day):>{w[3]}} "
                     f"{c.segments:>{w[4]}} {c.size_bytes:>{w[5]}} {c.held_segments:>{w[6]}} {c.violations:>{w[7]}}")
    for h in report.held_beyond_legal:
        ticket = (t(N_("cli.retention.by_ticket")).format(ticket=h.ticket_id) if h.ticket_id is not None
                  else t(N_("cli.retention.by_hand")))
        lines.append(t(N_("cli.retention.held_beyond")).format(
            camera=h.camera_id, segments=h.segments, oldest=_iso(h.oldest_start_us), hold=h.hold_id, by=ticket,
            reason=repr(h.reason)))
    for a in report.archive:
        since = t(N_("cli.retention.archive_since")).format(oldest=_iso(a["oldest_us"])) if a["oldest_us"] else ""
        lines.append(t(N_("cli.retention.archive")).format(objects=a["objects"], bytes=a["size_bytes"],
                                                            state=a["state"], since=since))
    if report.doorlog is not None:
        lines += doorlog_retention.render(report.doorlog, _iso, t)
    if camera_violations := sum(c.violations for c in report.cameras):
        lines.append(t(N_("cli.retention.violation")).format(segments=camera_violations))
    if not report.violations:
        lines.append(t(N_("cli.retention.no_violations")))
    return "\n".join(lines)
