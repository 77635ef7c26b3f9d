"""What the janitor records about itself: one typed record per node, written and read through this module,
and the summary of one sweep (:class:`SweepResult`).

The janitor writes :class:`LastSweep` after every sweep (``service_state`` row ``janitor.last_sweep.NODE``);
``vms doctor``, ``/metrics`` and the retention report read it back with :func:`last_sweeps` /
:func:`last_sweep`.  A row that does not parse (written by hand, or by a future version) reads as missing,
never as a crash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from sqlalchemy.orm import Session

from storage.sql import retention_queries as rq
from vms.retention import deletion

PREFIX = "janitor.last_sweep."


@dataclass(frozen=True)
class LastSweep:
    """One node's most recent sweep."""

    node_id: str
    at_us: int          # when the sweep started (UTC microseconds)
    deleted: int        # segments deleted
    failed: int         # segments whose deletion failed (retried next sweep)
    shredded: int       # keys destroyed (hour keys and day keys)
    duration_ms: float  # how long the sweep took

    def to_json(self) -> dict:
        out = asdict(self)
        del out["node_id"]  # the row's name carries it
        return out

    @classmethod
    def from_json(cls, node_id: str, value) -> LastSweep | None:
        if not isinstance(value, dict):
            return None
        try:
            kw = {f.name: value[f.name] for f in fields(cls) if f.name != "node_id"}
        except KeyError:
            return None
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in kw.values())
        return cls(node_id, **kw) if numbers else None


def record(s: Session, sweep: LastSweep) -> None:
    rq.put_state(s, PREFIX + sweep.node_id, sweep.to_json(), now_us=sweep.at_us)


def last_sweeps(s: Session) -> dict[str, LastSweep]:
    """Every node's last sweep that parses, by node id."""
    out = {}
    for name, value in sorted(rq.states_like(s, PREFIX).items()):
        node = name.removeprefix(PREFIX)
        if (sweep := LastSweep.from_json(node, value)) is not None:
            out[node] = sweep
    return out


def last_sweep(s: Session, node_id: str) -> LastSweep | None:
    return LastSweep.from_json(node_id, rq.get_state(s, PREFIX + node_id))


@dataclass
class SweepResult:
    at_us: int
    deleted: dict[str, int] = field(default_factory=dict)  # reason -> segments
    deleted_bytes: dict[str, int] = field(default_factory=dict)
    shredded: list[tuple[str, str]] = field(default_factory=list)  # day keys: (camera, YYYY-MM-DD)
    shredded_hours: list[tuple[str, str]] = field(default_factory=list)  # hour keys: (camera, YYYY-MM-DDTHH)
    held_kept: int = 0
    failed: int = 0
    free_bytes: int | None = None
    floor_bytes: int | None = None
    duration_s: float = 0.0
    doorlog: object = None  # vms.doorlog.retention.DoorlogSweep, when [doorlog] is configured

    @property
    def segments_deleted(self) -> int:
        return sum(self.deleted.values())

    def add(self, reason: str, done: deletion.Deleted) -> None:
        if done.segments:
            self.deleted[reason] = self.deleted.get(reason, 0) + done.segments
            self.deleted_bytes[reason] = self.deleted_bytes.get(reason, 0) + done.size_bytes
        self.failed += len(done.failed)

    def summary(self) -> dict:
        d = asdict(self)
        d["shredded"] = len(self.shredded)
        d["shredded_hours"] = len(self.shredded_hours)
        return d
