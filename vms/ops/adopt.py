"""Handing a lost node's footage to this node: ``vms cluster adopt NODE`` (docs/design/multi-node.md).

Each node's janitor expires only its own node's segments and shreds only its own cameras' keys.  A
recording node that is gone for good (hardware dead, library closed) would therefore leave its footage in
the index and its archived objects in the bucket beyond their retention, and its day and hour keys
unshredded: a broken promise the retention report shows as ``retention_violation``.  Adopting the node
makes this node the owner of everything the index says the lost node owned (cameras, segments, camera
state, archive rows; :func:`storage.sql.cluster_queries.move_node`), in one transaction with its audit
entry.  From the next sweep on, this node's janitor expires that footage under each camera's retention
(kept in the index), shreds its keys on time and respects its holds; this node's archive worker deletes
its expired objects and keeps its S3 legal holds in step.  Nothing is deleted by the adoption itself.

Refused (nothing changed, the refusal audited): adopting this node itself, a node the index does not
name, a node that showed a sign of life (recorder state, a segment's end, a janitor sweep) less than
``min_silence_s`` ago, and a node with archived footage when this node has no ``[archive]`` (it could
not delete those objects).  Segments that were only on the lost node's disk stay indexed: they are lost
with that disk, ``vms check`` reports them as missing (``vms check --repair`` removes their rows), and
the janitor removes them when they expire.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import cluster_queries as cq
from vms.access.audit import Actor, audited
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso
from vms.retention import state

MIN_SILENCE_S = 3600.0


@dataclass(frozen=True)
class Adopted:
    node_id: str
    into: str
    footprint: cq.Footprint


def plan(app, node_id: str) -> cq.Footprint:
    """What adopting ``node_id`` would move (nothing is changed); refusals as :func:`adopt`."""
    with Session(app.engine) as s:
        return _checked(app, s, node_id, MIN_SILENCE_S, check_silence=False)


def adopt(app, node_id: str, actor: Actor, *, min_silence_s: float = MIN_SILENCE_S) -> Adopted:
    me = app.config.node_id
    with audited(app.engine, app.clock, actor, "cluster.adopt", obj=f"node:{node_id}") as (s, entry):
        fp = _checked(app, s, node_id, min_silence_s)
        configured = [c.id for c in app.config.cameras]
        cq.move_node(s, node_id, me, now_us=app.clock.now_us(), configured=configured)
        entry.detail = (f"into={me} cameras={','.join(fp.cameras)} segments={fp.segments} bytes={fp.size_bytes} "
                        f"archived={fp.archived} only_local={fp.only_local} last_seen="
                        f"{iso(fp.last_seen_us) if fp.last_seen_us else '-'}")
    return Adopted(node_id, me, fp)


def _checked(app, s: Session, node_id: str, min_silence_s: float, *, check_silence: bool = True) -> cq.Footprint:
    me = app.config.node_id
    if node_id == me:
        raise DomainError(Kind.INVALID, f"{node_id} is this node; adopt another node's footage from here",
                          key=N_("cluster.adopt_self"), params={"node": node_id})
    known = cq.node_ids(s)
    if node_id not in known:
        others = ", ".join(n for n in known if n != me) or "none"
        raise DomainError(Kind.NOT_FOUND, f"the index names no node {node_id}; other nodes it names: {others}",
                          key=N_("cluster.adopt_unknown"), params={"node": node_id, "nodes": others})
    fp = _footprint(s, node_id)
    seen = fp.last_seen_us
    now = app.clock.now_us()
    if check_silence and seen is not None and now - seen < min_silence_s * 1e6:
        minutes = max(1, round((now - seen) / 60e6))
        raise DomainError(Kind.PRECONDITION,
                          f"node {node_id} showed a sign of life {minutes} min ago ({iso(seen)}); stop it for good "
                          f"first (a node that runs keeps recording and expiring its own footage), then adopt it "
                          f"once it has been silent for {min_silence_s / 60:.0f} min",
                          key=N_("cluster.adopt_alive"),
                          params={"node": node_id, "minutes": minutes, "silence": round(min_silence_s / 60)})
    if fp.archive_rows and app.config.archive is None:
        raise DomainError(Kind.PRECONDITION,
                          f"node {node_id} has footage in the archive ({fp.archive_rows} object(s)); adopt it from a "
                          f"node with [archive] configured (the same bucket), which can delete them on time",
                          key=N_("cluster.adopt_needs_archive"), params={"node": node_id, "objects": fp.archive_rows})
    return fp


def silent_nodes(engine, me: str, now_us: int, *, after_s: float = 86_400.0) -> list[tuple[str, cq.Footprint]]:
    """Other nodes that still own footage and showed no sign of life for ``after_s`` (for ``vms doctor``):
    nobody expires their footage until one comes back or is adopted."""
    out = []
    with Session(engine) as s:
        for node in cq.node_ids(s):
            if node == me:
                continue
            fp = _footprint(s, node)
            if fp.segments and (fp.last_seen_us is None or now_us - fp.last_seen_us > after_s * 1e6):
                out.append((node, fp))
    return out


def _footprint(s: Session, node_id: str) -> cq.Footprint:
    """What the node owns, its last sign of life including its janitor's last sweep."""
    fp = cq.footprint(s, node_id)
    sweep = state.last_sweep(s, node_id)
    seen = max((t for t in (fp.last_seen_us, sweep.at_us if sweep else None) if t is not None), default=None)
    return fp._replace(last_seen_us=seen)
