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
from dataclasses import dataclass, field
from pathlib import Path

from vms.core.config import Config, ConfigError, check_paths, load_config
from vms.core.finding_words import Num, Parts, words
from vms.core.i18n import N_

CHECKS = ("config", "permissions", "key_file", "signing_key", "database", "schema", "storage_root", "disk",
          "cameras", "clock", "tls", "mqtt", "janitor", "archive", "archive_versioning", "archive_object_lock",
          "archive_queue")
GB = 1e9
DISK_WARN_RATIO = 0.9
TYPICAL_BITRATE_BPS = 4_000_000  # 1080p15 H.264, as measured in DESIGN.md


@dataclass
class Finding:
    """``message`` is English (``--json``, logs); :meth:`text` says it in the reader's language."""

    check: str
    status: str  # ok | warn | fail | unknown
    message: str
    key: str = field(default="", compare=False, repr=False)
    params: dict = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict:
        return {"check": self.check, "status": self.status, "message": self.message}

    def text(self, lang: str) -> str:
        return words(self.key, self.params, lang) if self.key else self.message


def run(config_path: Path | str, *, camera_timeout_s: float = 5.0, skip: frozenset[str] = frozenset()) -> list[Finding]:
    config_path = Path(config_path)
    out: list[Finding] = []

    def add(check: str, status: str, key: str, **params) -> None:
        """A finding worded by a ``doctor.*`` key and its fields; any other text is taken as it is."""
        if check not in skip:
            keyed = key.startswith("doctor.")
            out.append(Finding(check, status, words(key, params, "en") if keyed else key, key if keyed else "", params))

    try:
        cfg = load_config(config_path, check_permissions=False)
    except ConfigError as exc:
        add("config", "fail", str(exc))
        return out
    add("config", "ok", N_("doctor.config.ok"), cameras=len(cfg.cameras), node=cfg.node_id,
        days=cfg.legal_max_retain_days)
    try:
        check_paths(cfg, config_path)
        add("permissions", "ok", N_("doctor.permissions.ok"))
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
        status, key, params = _clock()
        add("clock", status, key, **params)
    _tls(cfg, add)
    if "mqtt" not in skip:
        _mqtt(cfg, add)
    if engine is not None:
        _janitor(cfg, engine, add)
        _silent_nodes(cfg, engine, add)
    if "archive" not in skip:
        from vms.archive.health import doctor_findings

        for check, status, key, params in doctor_findings(cfg, engine):
            add(check, status, key, **params)
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
        add("key_file", "ok", N_("doctor.owner_only"), path=cfg.key_path)
    except KeyFileError as exc:
        add("key_file", "fail", N_("doctor.key_file.fail"), error=exc)
    path = cfg.signing_key_path
    if not path.exists():
        add("signing_key", "fail", N_("doctor.signing_key.missing"), path=path)
    elif stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
        add("signing_key", "fail", N_("doctor.signing_key.mode"), path=path,
            mode=f"{stat.S_IMODE(path.stat().st_mode):04o}")
    elif not os.access(path, os.R_OK):
        add("signing_key", "fail", N_("doctor.signing_key.unreadable"), path=path)
    else:
        add("signing_key", "ok", N_("doctor.owner_only"), path=path)


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
            add("database", "fail", N_("doctor.database.missing"), url=safe_url(cfg.db_url))
            return None
        engine = make_engine(url)
        check_reachable(engine)
    except DatabaseError as exc:
        reason = str(exc).rsplit(": ", 1)[-1]  # the driver's error class; the rest repeats the URL
        add("database", "fail", N_("doctor.database.unreachable"), url=safe_url(cfg.db_url), reason=reason)
        return None
    except Exception as exc:
        add("database", "fail", N_("doctor.database.cannot_open"), url=safe_url(cfg.db_url),
            error=exc.__class__.__name__)
        return None
    add("database", "ok", N_("doctor.database.ok"), url=safe_url(cfg.db_url))
    status, key, params = _schema_status(engine)
    add("schema", status, key, **params)
    return engine


def _schema_status(engine) -> tuple[str, str, dict]:
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
        return "unknown", N_("doctor.schema.unknown"), {"error": exc.__class__.__name__}
    if current == heads:
        return "ok", N_("doctor.schema.ok"), {"heads": ", ".join(sorted(heads))}
    if not current:
        return "fail", N_("doctor.schema.none"), {}
    return "fail", N_("doctor.schema.old"), {"current": ", ".join(sorted(current)), "heads": ", ".join(sorted(heads))}


# ---------------------------------------------------------------- storage and disk


def _storage_root(cfg: Config, add) -> None:
    root = cfg.storage_path
    if not root.exists():
        add("storage_root", "warn", N_("doctor.storage_root.missing"), root=root)
    elif not root.is_dir():
        add("storage_root", "fail", N_("doctor.storage_root.not_dir"), root=root)
    elif not os.access(root, os.W_OK | os.X_OK):
        add("storage_root", "fail", N_("doctor.storage_root.not_writable"), root=root)
    elif os.statvfs(root).f_flag & os.ST_RDONLY:
        add("storage_root", "fail", N_("doctor.storage_root.read_only"), root=root)
    else:
        add("storage_root", "ok", N_("doctor.storage_root.ok"), root=root)


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
        add("disk", "unknown", N_("doctor.disk.unreadable"), root=root, error=exc.__class__.__name__)
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
        parts.append((cam.id, Num(want / GB), None if rate is None else Num(rate / 1e6), cam.retain_days))
    capacity = usage.free + sum(stored.values()) - floor
    sizes = {"free": Num(usage.free / GB), "total": Num(usage.total / GB), "floor": Num(floor / GB),
             "stored": Num(sum(stored.values()) / GB), "need": Num(need / GB), "capacity": Num(capacity / GB),
             "unknown": ", ".join(unknown), "parts": Parts(parts)}
    if usage.free < floor:
        add("disk", "fail", N_("doctor.disk.below_floor"), **sizes)
    elif need > capacity:
        add("disk", "fail", N_("doctor.disk.short"), **sizes)
    elif need > DISK_WARN_RATIO * capacity:
        add("disk", "warn", N_("doctor.disk.tight"), **sizes)
    elif unknown and not parts:
        typical = sum(TYPICAL_BITRATE_BPS / 8 * c.retain_days * 86400 for c in cfg.cameras if c.id in unknown)
        add("disk", "unknown", N_("doctor.disk.unmeasured"), **sizes, typical=Num(typical / GB, 0),
            rate=Num(TYPICAL_BITRATE_BPS / 1e6, None), capacity0=Num(capacity / GB, 0))
    elif unknown:
        add("disk", "ok", N_("doctor.disk.ok_partly"), **sizes)
    else:
        add("disk", "ok", N_("doctor.disk.ok"), **sizes)


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
        add("cameras", "warn", N_("doctor.cameras.none"))
        return
    with ThreadPoolExecutor(max_workers=min(8, len(cams))) as pool:
        results = dict(pool.map(lambda c: _probe_camera(c, timeout_s), cams))
    bad = [(c, results[c.id]) for c in cams if results[c.id] is not None]
    if not bad:
        add("cameras", "ok", N_("doctor.cameras.ok"), n=len(cams), cameras=", ".join(c.id for c in cams))
        return
    for cam, why in bad:
        add("cameras", "fail", N_("doctor.cameras.fail"), camera=cam.id, url=redact_url(cam.source),
            seconds=Num(timeout_s, None), why=why)


def _stream_order(cfg: Config, engine, add) -> None:
    """Cameras whose recorder could not keep the frame order (B-frames reordered deeper than learned)."""
    from sqlalchemy.orm import Session

    from storage.sql import index

    try:
        with Session(engine) as s:
            rows = [st for st in index.camera_states(s) if st.stream_problem]
    except Exception as exc:  # the database check reports the cause
        add("cameras", "warn", N_("doctor.cameras.state_unreadable"), error=exc.__class__.__name__)
        return
    enabled = {c.id for c in cfg.cameras if c.enabled}
    for st in rows:
        if st.camera_id in enabled:
            add("cameras", "fail", N_("doctor.cameras.timestamps"), camera=st.camera_id, problem=st.stream_problem)


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
    """(status, words in English): asks systemd-timesyncd/timedatectl, then chrony, then the kernel."""
    status, key, params = _clock()
    return status, words(key, params, "en")


def _clock() -> tuple[str, str, dict]:
    answer = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if answer is not None and answer.strip() in ("yes", "no"):
        if answer.strip() == "yes":
            return "ok", N_("doctor.clock.timedatectl_ok"), {}
        return "fail", N_("doctor.clock.timedatectl_fail"), {}
    answer = _run(["chronyc", "-n", "tracking"])
    if answer is not None and "Leap status" in answer:
        leap = answer.split("Leap status", 1)[1].split(":", 1)[1].strip().splitlines()[0]
        if leap.lower() == "normal":
            return "ok", N_("doctor.clock.chrony_ok"), {}
        return "fail", N_("doctor.clock.chrony_fail"), {"leap": repr(leap)}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        state = -1
    if state < 0:
        return "unknown", N_("doctor.clock.unknown"), {}
    if state == TIME_ERROR or tx.status & STA_UNSYNC:
        return "fail", N_("doctor.clock.kernel_fail"), {"seconds": Num(tx.maxerror / 1e6, 0)}
    return "ok", N_("doctor.clock.kernel_ok"), {"ms": Num(tx.maxerror / 1000, 0)}


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
            add("tls", "ok", N_("doctor.tls.loopback"), host=api.host)
        else:
            add("tls", "fail", N_("doctor.tls.clear"), host=api.host, port=api.port)
        return
    for name, path in (("api.tls_cert", api.tls_cert), ("api.tls_key", api.tls_key)):
        if not path.is_file():
            add("tls", "fail", N_("doctor.tls.missing"), name=name, path=path)
            return
    mode = stat.S_IMODE(api.tls_key.stat().st_mode)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        add("tls", "fail", N_("doctor.tls.key_mode"), path=api.tls_key, mode=f"{mode:04o}")
        return
    try:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(api.tls_cert.read_bytes())
        left_s = cert.not_valid_after_utc.timestamp() - time.time()
    except Exception as exc:
        add("tls", "fail", N_("doctor.tls.not_pem"), path=api.tls_cert, error=exc.__class__.__name__)
        return
    day = f"{cert.not_valid_after_utc:%Y-%m-%d}"
    if left_s <= 0:
        add("tls", "fail", N_("doctor.tls.expired"), day=day)
    elif left_s < 14 * 86400:
        add("tls", "warn", N_("doctor.tls.expires"), day=day)
    else:
        add("tls", "ok", N_("doctor.tls.ok"), day=day)


def _mqtt(cfg: Config, add) -> None:
    if cfg.mqtt is None:
        return
    try:
        with socket.create_connection((cfg.mqtt.host, cfg.mqtt.port), timeout=3):
            pass
    except OSError as exc:
        add("mqtt", "warn", N_("doctor.mqtt.unreachable"), host=cfg.mqtt.host, port=cfg.mqtt.port,
            error=exc.__class__.__name__)
        return
    add("mqtt", "ok", N_("doctor.mqtt.ok"), host=cfg.mqtt.host, port=cfg.mqtt.port)


def _janitor(cfg: Config, engine, add) -> None:
    from sqlalchemy.orm import Session

    from vms.retention import state

    try:
        with Session(engine) as s:
            sweep = state.last_sweep(s, cfg.node_id)
    except Exception:
        return
    if sweep is None:
        add("janitor", "warn", N_("doctor.janitor.never"))
        return
    age_s = time.time() - sweep.at_us / 1e6
    limit_s = max(10 * cfg.janitor.sweep_interval_s, 300)
    if age_s > limit_s:
        add("janitor", "fail", N_("doctor.janitor.late"), minutes=Num(age_s / 60, 0),
            interval=Num(cfg.janitor.sweep_interval_s, None))
    else:
        add("janitor", "ok", N_("doctor.janitor.ok"), seconds=Num(age_s, 0))


def _silent_nodes(cfg: Config, engine, add) -> None:
    from vms.ops.adopt import silent_nodes

    for node, fp in silent_nodes(engine, cfg.node_id, int(time.time() * 1e6)):
        key = N_("doctor.nodes.silent") if fp.last_seen_us else N_("doctor.nodes.never")
        add("nodes", "warn", key, node=node, segments=fp.segments, cameras=", ".join(fp.cameras),
            days=Num((time.time() - (fp.last_seen_us or 0) / 1e6) / 86400))


def _doorlog(cfg: Config, engine, add) -> None:
    """The door log: its inbox private and emptied (a file left there is CPR numbers in clear), its retention
    kept (vms.doorlog.retention.report)."""
    if cfg.doorlog is None:
        return
    from vms.doorlog import retention as doorlog_retention
    from vms.retention.rules import VIOLATION_GRACE_US, grace_us

    inbox = cfg.doorlog.inbox
    if not inbox.is_dir():
        add("doorlog", "fail", N_("doctor.doorlog.no_inbox"), inbox=inbox)
        return
    mode = inbox.stat().st_mode & 0o007  # a controller's group may write (a drop box)
    waiting = [p for p in inbox.iterdir() if p.is_file() and time.time() - p.stat().st_mtime > 300]
    now_us = int(time.time() * 1_000_000)
    try:
        r = doorlog_retention.report(engine, cfg, now_us, grace_us(cfg), VIOLATION_GRACE_US)
    except Exception as exc:  # the database check above says why
        add("doorlog", "warn", N_("doctor.doorlog.unreadable"), error=exc.__class__.__name__)
        return
    if mode:
        add("doorlog", "fail", N_("doctor.doorlog.open"), inbox=inbox, mode=f"{mode:o}")
    elif waiting:
        add("doorlog", "fail", N_("doctor.doorlog.waiting"), files=len(waiting), inbox=inbox)
    elif r.violations or r.unshredded_days:
        add("doorlog", "fail", N_("doctor.doorlog.late"), entries=r.violations, days=r.retain_days,
            keys=len(r.unshredded_days))
    else:
        add("doorlog", "ok", N_("doctor.doorlog.ok"), entries=r.entries, days=r.retain_days)
