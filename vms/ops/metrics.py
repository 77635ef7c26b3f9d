"""Prometheus metrics, liveness and readiness of one node.

``render(app)`` returns the Prometheus text exposition format (version 0.0.4) built
at scrape time from the index (camera state, segments, deletion records, the
janitor's ``service_state`` facts), the storage root's file system and the
in-process counters of :data:`REGISTRY`.  ``health(app)`` is liveness (touches
nothing), ``ready(app)`` readiness (database reachable, master key readable with
safe permissions, storage root writable).  Names and meanings:
docs/design/operations-internals.md.

Contracts: rendering only reads (one short read transaction) and never raises
because one source failed: a failed source sets ``vms_scrape_error{source=...} 1``
and its metrics are left out.  The per-camera byte totals come from a full scan
of this node's segment rows, so they are cached for ``usage_max_age_s`` (60 s by
default).  The domain counts events where they happen with the counters of
:mod:`vms.core.counters`; they live in the process that counts, so scrape the
process that does the work (``vms serve`` runs everything in one).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Iterable
from importlib import metadata

from sqlalchemy.orm import Session

from storage.keys.keyring import unsafe_mode_reason
from storage.sql import index, retention_queries
from storage.sql.db import DatabaseError, check_reachable
from vms.core.counters import EXPORT_JOBS_RUNNING, REGISTRY, _Metric
from vms.retention import state

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DELETIONS_WINDOW_US = 3600 * 1_000_000
DELETIONS_LIMIT = 50_000


# ---------------------------------------------------------------- in-process counters


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


# ---------------------------------------------------------------- exposition


class _Out:
    """Collects families so each gets one HELP/TYPE header followed by its samples."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, value: float, /, **labels: str) -> None:
        if value is None:
            return
        family = self._families.setdefault(name, (kind, help_text, []))
        family[2].append(f"{name}{_labels(labels.items())} {_number(value)}")

    def metric(self, metric: _Metric) -> None:
        self._families.setdefault(metric.name, (metric.kind, metric.help, []))
        for labels, value in metric.samples():
            self._families[metric.name][2].append(f"{metric.name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        lines = []
        for name, (kind, help_text, samples) in self._families.items():
            lines.append(f"# HELP {name} {help_text.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


_usage_cache: dict[tuple[int, str], tuple[float, list[tuple[str, int, int, int]]]] = {}
_usage_lock = threading.Lock()


def _usage(s: Session, engine, node_id: str, max_age_s: float) -> list[tuple[str, int, int, int]]:
    key = (id(engine), node_id)
    with _usage_lock:
        hit = _usage_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age_s:
            return hit[1]
    rows = retention_queries.usage_by_camera(s, node_id)
    with _usage_lock:
        _usage_cache[key] = (time.monotonic(), rows)
    return rows


def version() -> str:
    try:
        return metadata.version("vms-appliance")
    except Exception:
        return "unknown"


def render(app, *, alarms=None, usage_max_age_s: float = 60.0) -> str:
    """The node's metrics in Prometheus text format (see the module docstring)."""
    out = _Out()
    cfg, node, now_us = app.config, app.config.node_id, app.clock.now_us()
    out.add("vms_info", "gauge", "Constant 1; labels name the node and software version", 1,
            node=node, version=version())
    errors: list[str] = []
    try:
        with Session(app.engine) as s:
            _cameras(out, s, cfg, now_us)
            _storage(out, s, app, node, usage_max_age_s)
            _janitor(out, s, node, now_us, errors)
    except Exception as exc:  # database down: say so and still serve the rest
        log.warning("metrics: the index could not be read (%s)", exc.__class__.__name__)
        errors.append("database")
    _disk(out, cfg, node, errors)
    if alarms is not None:
        _alarms(out, alarms, node)
    jobs = getattr(app, "export_jobs", None)  # queued or running now, read from this appliance's runner
    if jobs is not None:
        EXPORT_JOBS_RUNNING.set(sum(j.state in ("queued", "running") for j in jobs.runner.jobs()))
    for metric in REGISTRY.metrics():
        out.metric(metric)
    for source in ("database", "janitor_state", "disk"):
        out.add("vms_scrape_error", "gauge", "1 when a source of these metrics could not be read",
                1 if source in errors else 0, source=source)
    return out.text()


def _cameras(out: _Out, s: Session, cfg, now_us: int) -> None:
    states = {st.camera_id: st for st in index.camera_states(s)}
    ids = sorted({c.id for c in cfg.cameras} | set(states))
    for cam_id in ids:
        st = states.get(cam_id)
        node = st.node_id if st is not None else cfg.node_id
        lab = {"camera": cam_id, "node": node}
        out.add("vms_camera_online", "gauge", "1 while the recorder receives packets from the camera",
                1 if st is not None and st.online else 0, **lab)
        if st is None:
            continue
        out.add("vms_camera_fps", "gauge", "Frames per second received (recorder's recent measure)", st.fps, **lab)
        out.add("vms_camera_bitrate_bits_per_second", "gauge", "Bits per second received (recent measure)",
                st.bitrate_bps, **lab)
        out.add("vms_camera_reconnects_total", "counter", "Reconnects to the camera", st.reconnects, **lab)
        out.add("vms_camera_received_bytes_total", "counter", "Bytes of stream received from the camera",
                st.bytes_received, **lab)
        out.add("vms_camera_received_packets_total", "counter", "Packets received from the camera", st.packets, **lab)
        if st.last_packet_us is not None:
            out.add("vms_camera_last_packet_age_seconds", "gauge", "Seconds since the camera's last packet",
                    max(0, now_us - st.last_packet_us) / 1e6, **lab)
        out.add("vms_camera_state_age_seconds", "gauge", "Seconds since the recorder last wrote this camera's state",
                max(0, now_us - st.updated_us) / 1e6, **lab)
        out.add("vms_camera_gap_open", "gauge", "1 while a gap in the recording is open",
                1 if st.gap_since_us is not None else 0, **lab)
        end_us = index.last_segment_end(s, cam_id)
        if end_us is not None:
            out.add("vms_camera_segment_lag_seconds", "gauge",
                    "Seconds between now and the end of the camera's newest sealed segment",
                    max(0, now_us - end_us) / 1e6, **lab)


def _storage(out: _Out, s: Session, app, node: str, max_age_s: float) -> None:
    for camera_id, segments, size_bytes, _max_id in _usage(s, app.engine, node, max_age_s):
        lab = {"camera": camera_id, "node": node}
        out.add("vms_storage_camera_bytes", "gauge", "Bytes of footage stored for the camera on this node",
                size_bytes, **lab)
        out.add("vms_storage_camera_segments", "gauge", "Segments stored for the camera on this node",
                segments, **lab)


def _janitor(out: _Out, s: Session, node: str, now_us: int, errors: list[str]) -> None:
    try:
        sweeps = state.last_sweeps(s)
    except Exception as exc:
        log.warning("metrics: janitor state unreadable (%s)", exc.__class__.__name__)
        errors.append("janitor_state")
        sweeps = {}
    sweep = sweeps.get(node)
    if sweep is not None:
        out.add("vms_janitor_last_sweep_timestamp_seconds", "gauge", "Unix time of the janitor's last sweep",
                sweep.at_us / 1e6, node=node)
        out.add("vms_janitor_last_sweep_age_seconds", "gauge", "Seconds since the janitor's last sweep",
                max(0, now_us - sweep.at_us) / 1e6, node=node)
        out.add("vms_janitor_last_sweep_duration_seconds", "gauge", "How long the last sweep took",
                sweep.duration_ms / 1000, node=node)
        out.add("vms_janitor_last_sweep_deleted_segments", "gauge", "Segments the last sweep deleted",
                sweep.deleted, node=node)
        out.add("vms_janitor_last_sweep_failed_segments", "gauge",
                "Segments whose deletion failed in the last sweep (retried at the next)", sweep.failed, node=node)
        out.add("vms_janitor_last_sweep_shredded_keys", "gauge", "Keys (hour and day keys) the last sweep destroyed",
                sweep.shredded, node=node)
    totals: dict[tuple[str, str], list[int]] = {}
    rows = retention_queries.deletion_records(s, since_us=now_us - DELETIONS_WINDOW_US, limit=DELETIONS_LIMIT)
    for row in rows:
        t = totals.setdefault((row.camera_id, row.reason), [0, 0])
        t[0] += row.segments
        t[1] += row.size_bytes
    for (camera_id, reason), (segments, size_bytes) in sorted(totals.items()):
        out.add("vms_deleted_segments_last_hour", "gauge", "Segments deleted in the last hour, by camera and reason",
                segments, camera=camera_id, reason=reason)
        out.add("vms_deleted_bytes_last_hour", "gauge", "Bytes deleted in the last hour, by camera and reason",
                size_bytes, camera=camera_id, reason=reason)
    out.add("vms_deletion_records_truncated", "gauge",
            f"1 when more than {DELETIONS_LIMIT} deletion records fell in the last hour (totals undercount)",
            1 if len(rows) >= DELETIONS_LIMIT else 0)


def free_floor_bytes(cfg, total_bytes: int) -> int:
    """The configured free-space floor: the larger of the byte and the percent floor."""
    return max(cfg.janitor.min_free_bytes, int(total_bytes * cfg.janitor.min_free_percent / 100))


def _disk(out: _Out, cfg, node: str, errors: list[str]) -> None:
    try:
        usage = shutil.disk_usage(cfg.storage_path)
    except OSError as exc:
        log.warning("metrics: storage root unreadable (%s)", exc.__class__.__name__)
        errors.append("disk")
        return
    out.add("vms_storage_free_bytes", "gauge", "Free bytes on the storage root's file system", usage.free, node=node)
    out.add("vms_storage_size_bytes", "gauge", "Size of the storage root's file system", usage.total, node=node)
    out.add("vms_storage_free_floor_bytes", "gauge", "Configured free-space floor (janitor evicts below it)",
            free_floor_bytes(cfg, usage.total), node=node)


def _alarms(out: _Out, alarms, node: str) -> None:
    for alarm in alarms.standing():
        out.add("vms_alarm_active", "gauge", "1 for each standing alarm", 1, node=node, kind=alarm.kind,
                camera=alarm.camera or "", severity=alarm.severity)
    if alarms.publisher is not None:
        p = alarms.publisher
        out.add("vms_mqtt_connected", "gauge", "1 while connected to the MQTT broker", 1 if p.connected else 0, node=node)
        out.add("vms_mqtt_queued_messages", "gauge", "Alarm messages waiting for the broker", p.queued(), node=node)
        out.add("vms_mqtt_dropped_messages_total", "counter", "Alarm messages dropped because the queue was full",
                p.dropped, node=node)


# ---------------------------------------------------------------- health and readiness


def health(app) -> dict:
    """Liveness: the process answers.  Touches neither database nor disk."""
    return {"status": "ok", "node_id": app.config.node_id, "version": version()}


def ready(app) -> tuple[bool, dict]:
    """Readiness: (all good, {check: {"ok": bool, "detail": str}}).  Details name the
    problem without paths, URLs or secrets (the endpoint may be unauthenticated)."""
    checks = {"database": _check_database(app), "key_file": _check_key(app.config.key_path),
              "storage_root": _check_storage(app.config.storage_path)}
    ok = all(c["ok"] for c in checks.values())
    return ok, {"ready": ok, "node_id": app.config.node_id, "checks": checks}


def _check_database(app) -> dict:
    try:
        check_reachable(app.engine)
    except DatabaseError:
        return {"ok": False, "detail": "unreachable"}
    except Exception as exc:
        return {"ok": False, "detail": f"error ({exc.__class__.__name__})"}
    return {"ok": True, "detail": "reachable"}


def _check_key(path) -> dict:
    try:
        reason = unsafe_mode_reason(path)
    except FileNotFoundError:
        return {"ok": False, "detail": "master key file missing"}
    except OSError as exc:
        return {"ok": False, "detail": f"master key file cannot be examined ({exc.__class__.__name__})"}
    if reason is not None:
        return {"ok": False, "detail": "master key file is accessible by group or others"}
    if not os.access(path, os.R_OK):
        return {"ok": False, "detail": "master key file is not readable by this user"}
    return {"ok": True, "detail": "readable, owner only"}


def _check_storage(path) -> dict:
    if path.exists() and not path.is_dir():
        return {"ok": False, "detail": "storage root is not a directory"}
    if not path.exists():  # created on first write: its nearest existing parent must be writable
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            return {"ok": False, "detail": "storage root missing and cannot be created by this user"}
        return {"ok": True, "detail": "not created yet; can be created"}
    if not os.access(path, os.W_OK | os.X_OK):
        return {"ok": False, "detail": "storage root not writable by this user"}
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return {"ok": False, "detail": "storage root is on a read-only file system"}
    except OSError as exc:
        return {"ok": False, "detail": f"storage root cannot be examined ({exc.__class__.__name__})"}
    return {"ok": True, "detail": "writable"}
