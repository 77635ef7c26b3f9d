"""``vms doctor``: check a real install and say in words what is wrong.

:func:`run` takes a config path and returns :class:`Finding` s, one per check, each
``ok``, ``warn`` (works, but look at it), ``fail`` (something is wrong) or
``unknown`` (the check could not tell, and says why).  It reads and probes; it
changes nothing: no migration, no directory created, no file written, no
footage read.  Messages never hold passwords, key bytes or URL credentials
(database URLs through :func:`storage.sql.db.safe_url`, camera sources through
:func:`vms.recording.capture.redact_url`).

Checks, in order (docs/design/operations-internals.md explains each):
``config``, ``permissions``, ``key_file``, ``signing_key``, ``database``,
``schema``, ``storage_root``, ``disk``, ``cameras``, ``clock``, ``tls``,
``mqtt``, ``janitor``, and with ``[archive]`` ``archive``, ``archive_versioning``, ``archive_object_lock``,
``archive_queue`` (:mod:`vms.archive.health`).  A config that cannot be parsed stops the run after
``config``; every other failure leaves the remaining checks to run.

Each check imports what it needs when it runs (OpenCV for the camera check, Alembic for the schema),
so ``vms doctor --skip cameras`` does not pay for what it skips.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import shutil
import socket
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from vms.core.config import Config, ConfigError, check_paths, load_config

CHECKS = ("config", "permissions", "key_file", "signing_key", "database", "schema", "storage_root", "disk",
          "cameras", "clock", "tls", "mqtt", "janitor", "archive", "archive_versioning", "archive_object_lock",
          "archive_queue")
GB = 1e9
DISK_WARN_RATIO = 0.9
TYPICAL_BITRATE_BPS = 4_000_000  # 1080p15 H.264, as measured in DESIGN.md


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | fail | unknown
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def run(config_path: Path | str, *, camera_timeout_s: float = 5.0, skip: frozenset[str] = frozenset()) -> list[Finding]:
    config_path = Path(config_path)
    out: list[Finding] = []

    def add(check: str, status: str, message: str) -> None:
        if check not in skip:
            out.append(Finding(check, status, message))

    try:
        cfg = load_config(config_path, check_permissions=False)
    except ConfigError as exc:
        add("config", "fail", str(exc))
        return out
    add("config", "ok", f"valid: {len(cfg.cameras)} camera(s), node {cfg.node_id}, "
                        f"legal maximum {cfg.legal_max_retain_days} days")
    try:
        check_paths(cfg, config_path)
        add("permissions", "ok", "key files, key directory and storage root are private")
    except ConfigError as exc:
        add("permissions", "fail", str(exc))
    _key_files(cfg, add)
    engine = _database(cfg, add) if "database" not in skip else None
    _storage_root(cfg, add)
    if "disk" not in skip:
        _disk(cfg, engine, add)
    if "cameras" not in skip:
        _cameras(cfg, camera_timeout_s, add)
        if engine is not None:
            _stream_order(cfg, engine, add)
    if "clock" not in skip:
        add("clock", *clock_status())
    _tls(cfg, add)
    if "mqtt" not in skip:
        _mqtt(cfg, add)
    if engine is not None:
        _janitor(cfg, engine, add)
        _silent_nodes(cfg, engine, add)
    if "archive" not in skip:
        from vms.archive.health import doctor_findings

        for finding in doctor_findings(cfg, engine):
            add(*finding)
    if engine is not None:
        _doorlog(cfg, engine, add)
        engine.dispose()
    return out


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


# ---------------------------------------------------------------- keys


def _key_files(cfg: Config, add) -> None:
    from storage.keys.keyring import KeyFileError, read_key_file

    try:
        read_key_file(cfg.key_path)
        add("key_file", "ok", f"{cfg.key_path} is readable by its owner only")
    except KeyFileError as exc:
        add("key_file", "fail", f"{exc}; without the master key no footage can be recorded or read")
    path = cfg.signing_key_path
    if not path.exists():
        add("signing_key", "fail", f"signing key {path} does not exist; evidence exports cannot be signed "
                                   "(restore it from backup, or run 'vms init' on a new install)")
    elif stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
        add("signing_key", "fail", f"signing key {path} has mode {stat.S_IMODE(path.stat().st_mode):04o}; "
                                   "it must be readable by its owner only (chmod 600)")
    elif not os.access(path, os.R_OK):
        add("signing_key", "fail", f"signing key {path} cannot be read by this user")
    else:
        add("signing_key", "ok", f"{path} is readable by its owner only")


# ---------------------------------------------------------------- database


def _database(cfg: Config, add):
    from sqlalchemy.engine import make_url

    from storage.sql.db import DatabaseError, check_reachable, make_engine, safe_url

    url = cfg.db_url
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            url = parsed.update_query_dict({"connect_timeout": "5"}).render_as_string(hide_password=False)
        if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
            add("database", "fail", f"database {safe_url(cfg.db_url)} does not exist "
                                    "(run 'vms init', or 'vms db upgrade' after restoring)")
            return None
        engine = make_engine(url)
        check_reachable(engine)
    except DatabaseError as exc:
        reason = str(exc).rsplit(": ", 1)[-1]  # the driver's error class; the rest repeats the URL
        add("database", "fail", f"database {safe_url(cfg.db_url)} is unreachable ({reason}); recording, "
                                "retention and sign-in all need it")
        return None
    except Exception as exc:
        add("database", "fail", f"database {safe_url(cfg.db_url)} cannot be opened ({exc.__class__.__name__})")
        return None
    add("database", "ok", f"{safe_url(cfg.db_url)} is reachable")
    add("schema", *_schema_status(engine))
    return engine


def _schema_status(engine) -> tuple[str, str]:
    from alembic.config import Config as AlembicConfig
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.sql.db import MIGRATIONS

    try:
        acfg = AlembicConfig()
        acfg.set_main_option("script_location", str(MIGRATIONS))
        heads = set(ScriptDirectory.from_config(acfg).get_heads())
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        return "unknown", f"the schema version could not be read ({exc.__class__.__name__})"
    if current == heads:
        return "ok", f"schema at the newest migration ({', '.join(sorted(heads))})"
    if not current:
        return "fail", "the database has no schema yet; run 'vms db upgrade'"
    return "fail", (f"schema at {', '.join(sorted(current))}, this software expects {', '.join(sorted(heads))}; "
                    "run 'vms db upgrade' (after a backup)")


# ---------------------------------------------------------------- storage and disk


def _storage_root(cfg: Config, add) -> None:
    root = cfg.storage_path
    if not root.exists():
        add("storage_root", "warn", f"{root} does not exist yet (the recorder creates it on first write)")
    elif not root.is_dir():
        add("storage_root", "fail", f"{root} is not a directory")
    elif not os.access(root, os.W_OK | os.X_OK):
        add("storage_root", "fail", f"{root} is not writable by this user; the recorder cannot store footage")
    elif os.statvfs(root).f_flag & os.ST_RDONLY:
        add("storage_root", "fail", f"{root} is on a read-only file system")
    else:
        add("storage_root", "ok", f"{root} is writable")


def _measured(cfg: Config, engine) -> tuple[dict[str, float], dict[str, int]]:
    """Per camera: measured bitrate (bits/s) from camera_state, and bytes stored on this node."""
    from sqlalchemy.orm import Session

    from storage.sql import index, retention_queries

    if engine is None:
        return {}, {}
    try:
        with Session(engine) as s:
            rates = {st.camera_id: float(st.bitrate_bps) for st in index.camera_states(s) if st.bitrate_bps}
            stored = {cam: size for cam, _n, size, _m in retention_queries.usage_by_camera(s, cfg.node_id)}
        return rates, stored
    except Exception:
        return {}, {}


def _disk(cfg: Config, engine, add) -> None:
    from vms.ops.metrics import free_floor_bytes

    root = cfg.storage_path
    probe = next((p for p in (root, *root.parents) if p.exists()), None)
    try:
        usage = shutil.disk_usage(probe)
    except (OSError, TypeError) as exc:
        add("disk", "unknown", f"free space of {root} cannot be read ({exc.__class__.__name__})")
        return
    floor = free_floor_bytes(cfg, usage.total)
    rates, stored = _measured(cfg, engine)
    need, parts, unknown = 0.0, [], []
    for cam in (c for c in cfg.cameras if c.enabled):
        rate = rates.get(cam.id)
        if rate is None and cam.quota_bytes is None:
            unknown.append(cam.id)
            continue
        want = rate / 8 * cam.retain_days * 86400 if rate is not None else float(cam.quota_bytes)
        if cam.quota_bytes is not None:
            want = min(want, float(cam.quota_bytes))
        need += want
        how = f"{rate / 1e6:.1f} Mbit/s x {cam.retain_days} d" if rate is not None else "quota"
        parts.append(f"{cam.id} {want / GB:.1f} GB ({how})")
    capacity = usage.free + sum(stored.values()) - floor
    summary = (f"{usage.free / GB:.1f} GB free of {usage.total / GB:.1f} GB; floor {floor / GB:.1f} GB; "
               f"footage stored here {sum(stored.values()) / GB:.1f} GB")
    if usage.free < floor:
        add("disk", "fail", f"free space is below the floor: {summary}; the janitor is evicting the oldest "
                            "unheld footage before its retention ends")
    elif need > capacity:
        add("disk", "fail", f"retention needs about {need / GB:.1f} GB ({'; '.join(parts)}) but the storage root "
                            f"can hold about {capacity / GB:.1f} GB ({summary}); footage will be evicted by space "
                            "before it reaches its retention: add disk or lower retain_days")
    elif need > DISK_WARN_RATIO * capacity:
        add("disk", "warn", f"retention needs about {need / GB:.1f} GB of {capacity / GB:.1f} GB available "
                            f"({'; '.join(parts)}); little headroom")
    elif unknown and not parts:
        typical = sum(TYPICAL_BITRATE_BPS / 8 * c.retain_days * 86400 for c in cfg.cameras if c.id in unknown)
        add("disk", "unknown", f"{summary}; no bitrate measured yet for {', '.join(unknown)} (the recorder "
                               "measures it once it runs) and no quota_bytes set; at a typical "
                               f"{TYPICAL_BITRATE_BPS / 1e6:g} Mbit/s per camera the retention would need about "
                               f"{typical / GB:.0f} GB of the {capacity / GB:.0f} GB available")
    else:
        tail = f"; not yet measured: {', '.join(unknown)}" if unknown else ""
        add("disk", "ok", f"retention needs about {need / GB:.1f} GB, about {capacity / GB:.1f} GB available "
                          f"({summary}){tail}")


# ---------------------------------------------------------------- cameras


def _probe_camera(cam, timeout_s: float) -> tuple[str, str | None]:
    from vms.recording.capture import Capture, CaptureError

    cap = Capture(cam.source, transport=cam.transport, open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    try:
        info = cap.open()
        return cam.id, None if info else "no stream description"
    except CaptureError as exc:
        return cam.id, str(exc)
    except Exception as exc:
        return cam.id, f"{cap.name}: {exc.__class__.__name__}"
    finally:
        cap.close()


def _cameras(cfg: Config, timeout_s: float, add) -> None:
    from vms.recording.capture import redact_url

    cams = [c for c in cfg.cameras if c.enabled]
    if not cams:
        add("cameras", "warn", "no enabled cameras are configured; nothing is recorded")
        return
    with ThreadPoolExecutor(max_workers=min(8, len(cams))) as pool:
        results = dict(pool.map(lambda c: _probe_camera(c, timeout_s), cams))
    bad = [(c, results[c.id]) for c in cams if results[c.id] is not None]
    if not bad:
        add("cameras", "ok", f"{len(cams)} camera(s) answered: {', '.join(c.id for c in cams)}")
        return
    for cam, why in bad:
        add("cameras", "fail", f"camera {cam.id} ({redact_url(cam.source)}) cannot be opened within "
                               f"{timeout_s:g} s: {why}")


def _stream_order(cfg: Config, engine, add) -> None:
    """Cameras whose recorder could not keep the frame order (B-frames reordered deeper than learned)."""
    from sqlalchemy.orm import Session

    from storage.sql import index

    try:
        with Session(engine) as s:
            rows = [st for st in index.camera_states(s) if st.stream_problem]
    except Exception as exc:  # the database check reports the cause
        add("cameras", "warn", f"the recorders' stream state cannot be read ({exc.__class__.__name__})")
        return
    enabled = {c.id for c in cfg.cameras if c.enabled}
    for st in rows:
        if st.camera_id in enabled:
            add("cameras", "fail", f"camera {st.camera_id}: its timestamps cannot be trusted: {st.stream_problem}")


# ---------------------------------------------------------------- clock


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h) up to ``tick``; the rest is padding we never read
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("_reserved", ctypes.c_byte * 160)]


STA_UNSYNC, TIME_ERROR = 0x0040, 5


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def clock_status() -> tuple[str, str]:
    """(status, words): asks systemd-timesyncd/timedatectl, then chrony, then the kernel."""
    answer = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if answer is not None and answer.strip() in ("yes", "no"):
        if answer.strip() == "yes":
            return "ok", "synchronised (timedatectl: NTPSynchronized=yes)"
        return "fail", ("not synchronised (timedatectl: NTPSynchronized=no); recording times and evidence "
                        "manifests depend on it: enable NTP (timedatectl set-ntp true, or chrony)")
    answer = _run(["chronyc", "-n", "tracking"])
    if answer is not None and "Leap status" in answer:
        leap = answer.split("Leap status", 1)[1].split(":", 1)[1].strip().splitlines()[0]
        if leap.lower() == "normal":
            return "ok", "synchronised (chronyc tracking: leap status normal)"
        return "fail", f"not synchronised (chronyc tracking: leap status {leap!r}); check chrony's sources"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        state = -1
    if state < 0:
        return "unknown", "cannot tell: no timedatectl or chronyc answered and the kernel could not be asked"
    if state == TIME_ERROR or tx.status & STA_UNSYNC:
        return "fail", (f"not synchronised according to the kernel (adjtimex: unsynchronised, maximum error "
                        f"{tx.maxerror / 1e6:.0f} s) and neither timedatectl nor chronyc answered; run an NTP "
                        "client (chrony, systemd-timesyncd) on this machine or its host")
    return "ok", f"synchronised according to the kernel (adjtimex: maximum error {tx.maxerror / 1000:.0f} ms)"


# ---------------------------------------------------------------- TLS, MQTT, janitor


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _tls(cfg: Config, add) -> None:
    api = cfg.api
    if api.tls_cert is None or api.tls_key is None:
        if _is_loopback(api.host):
            add("tls", "ok", f"API on {api.host} (loopback only); put a TLS reverse proxy in front for other machines")
        else:
            add("tls", "fail", f"the web UI and API listen on {api.host}:{api.port} without TLS: passwords, session "
                               "cookies and footage would cross the network in clear; set api.tls_cert and "
                               "api.tls_key, or listen on 127.0.0.1 behind a TLS reverse proxy (docs/operations.md, TLS)")
        return
    for name, path in (("api.tls_cert", api.tls_cert), ("api.tls_key", api.tls_key)):
        if not path.is_file():
            add("tls", "fail", f"{name}: {path} does not exist")
            return
    mode = stat.S_IMODE(api.tls_key.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        add("tls", "fail", f"api.tls_key: {api.tls_key} has mode {mode:04o}; make it readable by its owner only (chmod 600)")
        return
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(api.tls_cert.read_bytes())
        left_s = cert.not_valid_after_utc.timestamp() - time.time()
    except Exception as exc:
        add("tls", "fail", f"api.tls_cert: {api.tls_cert} is not a PEM certificate ({exc.__class__.__name__})")
        return
    if left_s <= 0:
        add("tls", "fail", f"api.tls_cert: the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
    elif left_s < 14 * 86400:
        add("tls", "warn", f"api.tls_cert: the certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}; renew it")
    else:
        add("tls", "ok", f"HTTPS with a certificate valid until {cert.not_valid_after_utc:%Y-%m-%d}")


def _mqtt(cfg: Config, add) -> None:
    if cfg.mqtt is None:
        return
    try:
        with socket.create_connection((cfg.mqtt.host, cfg.mqtt.port), timeout=3):
            pass
    except OSError as exc:
        add("mqtt", "warn", f"MQTT broker {cfg.mqtt.host}:{cfg.mqtt.port} is unreachable ({exc.__class__.__name__}); "
                            "alarms still go to the log and audit trail, and are queued for MQTT")
        return
    add("mqtt", "ok", f"MQTT broker {cfg.mqtt.host}:{cfg.mqtt.port} accepts connections")


def _janitor(cfg: Config, engine, add) -> None:
    from sqlalchemy.orm import Session

    from vms.retention import state

    try:
        with Session(engine) as s:
            sweep = state.last_sweep(s, cfg.node_id)
    except Exception:
        return
    if sweep is None:
        add("janitor", "warn", "no janitor sweep recorded yet (is 'vms serve' or 'vms janitor' running?)")
        return
    age_s = time.time() - sweep.at_us / 1e6
    limit_s = max(10 * cfg.janitor.sweep_interval_s, 300)
    if age_s > limit_s:
        add("janitor", "fail", f"the last janitor sweep was {age_s / 60:.0f} min ago (interval "
                               f"{cfg.janitor.sweep_interval_s:g} s): retention is not being enforced")
    else:
        add("janitor", "ok", f"last sweep {age_s:.0f} s ago")


def _silent_nodes(cfg: Config, engine, add) -> None:
    from vms.ops.adopt import silent_nodes

    for node, fp in silent_nodes(engine, cfg.node_id, int(time.time() * 1e6)):
        since = f"{(time.time() - fp.last_seen_us / 1e6) / 86400:.1f} days ago" if fp.last_seen_us else "never"
        add("nodes", "warn", f"node {node} owns {fp.segments} segment(s) of camera(s) {', '.join(fp.cameras)} and "
                             f"last showed a sign of life {since}: nobody expires that footage; if the node is gone "
                             f"for good, run 'vms cluster adopt {node}' here")


def _doorlog(cfg: Config, engine, add) -> None:
    """The door log: its inbox private and emptied (a file left there is CPR numbers in clear), its retention
    kept (vms.doorlog.retention.report)."""
    if cfg.doorlog is None:
        return
    from vms.doorlog import retention as doorlog_retention
    from vms.retention.rules import VIOLATION_GRACE_US, grace_us

    inbox = cfg.doorlog.inbox
    if not inbox.is_dir():
        add("doorlog", "fail", f"the door-log inbox {inbox} does not exist (the janitor makes it at start; is it running?)")
        return
    mode = inbox.stat().st_mode & 0o007  # a controller's group may write (a drop box)
    waiting = [p for p in inbox.iterdir() if p.is_file() and time.time() - p.stat().st_mtime > 300]
    now_us = int(time.time() * 1_000_000)
    try:
        r = doorlog_retention.report(engine, cfg, now_us, grace_us(cfg), VIOLATION_GRACE_US)
    except Exception as exc:  # the database check above says why
        add("doorlog", "warn", f"the door log could not be read ({exc.__class__.__name__})")
        return
    if mode:
        add("doorlog", "fail", f"the door-log inbox {inbox} is open to others (mode o={mode:o}); "
                               "chmod 700 (or 770 with the controller's group): its files hold CPR numbers")
    elif waiting:
        add("doorlog", "fail", f"{len(waiting)} file(s) have waited more than 5 min in the door-log inbox {inbox} "
                               "(is the janitor running?): CPR numbers in clear on disk")
    elif r.violations or r.unshredded_days:
        add("doorlog", "fail", f"{r.violations} door-log entries older than {r.retain_days} days and not held, "
                               f"{len(r.unshredded_days)} day key(s) not destroyed: retention is not being enforced")
    else:
        add("doorlog", "ok", f"inbox private and empty; {r.entries} entries kept at most {r.retain_days} days")
