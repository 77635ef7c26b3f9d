"""The appliance's TOML configuration, validated strictly with pydantic.

Every field has a default (where one is sensible), bounds and a description;
unknown keys are refused.  :func:`load_config` returns a :class:`Config` with
all paths absolute (relative paths are taken relative to the config file) or
raises :class:`ConfigError` whose message names the file, the key and what is
allowed.  Nothing here touches footage: callers load and check the config
before they open the storage root.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
import tomllib
import typing
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from vms.core.archive_config import ArchiveConfig
from vms.core.camera_config import CAMERA_ID, SOURCE_SCHEMES, CameraConfig, LegalMaxOverride, Strict
from vms.core.doorlog_config import DoorlogConfig, retention_problem
from vms.core.mail_config import MailSection

__all__ = ["CAMERA_ID", "SOURCE_SCHEMES", "CameraConfig", "Config", "ConfigError", "LegalMaxOverride", "Strict",
           "load_config", "parse_config"]


class ConfigError(Exception):
    """A configuration problem a person can fix; ``str()`` is the full message."""

    def __init__(self, file: Path | str, key: str, message: str):
        self.file, self.key = str(file), key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class RecorderConfig(Strict):
    backoff_initial_s: Annotated[float, Field(ge=0.1, le=60, description="First reconnect delay")] = 1.0
    backoff_max_s: Annotated[float, Field(ge=1, le=600, description="Longest reconnect delay")] = 30.0
    open_timeout_s: Annotated[float, Field(ge=1, le=120, description="Give up connecting after this long")] = 10.0
    read_timeout_s: Annotated[float, Field(ge=1, le=120, description="A stream silent this long is lost")] = 10.0
    state_interval_s: Annotated[
        float, Field(ge=0.5, le=60, description="Seconds between saves of each camera's state to the index")
    ] = 2.0

    @model_validator(mode="after")
    def _backoff_order(self) -> RecorderConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(f"backoff_max_s ({self.backoff_max_s:g}) is less than "
                             f"backoff_initial_s ({self.backoff_initial_s:g}); it must be at least as long")
        return self


class JanitorConfig(Strict):
    """Retention sweeps (docs/design/janitor.md).  The free-space floor is the larger of
    ``min_free_bytes`` and ``min_free_percent`` of the file system holding the storage root."""

    sweep_interval_s: Annotated[
        float, Field(ge=1, le=60, description="Seconds between sweeps; footage is gone within one interval of expiring")
    ] = 30.0
    min_free_bytes: Annotated[
        int, Field(ge=0, description="Free-space floor in bytes; below it the oldest unheld footage is evicted")
    ] = 1 << 30
    min_free_percent: Annotated[float, Field(ge=0, le=90, description="Free-space floor in percent of the disk")] = 5.0


class ApiConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    trusted_proxies: Annotated[
        list[str],
        Field(description="Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed (client "
                          "addresses in the audit trail); empty: none"),
    ] = []
    access_window_days: Annotated[int, Field(ge=1, le=90, description="How long an approved ticket grants access")] = 7
    hold_grace_days: Annotated[int, Field(ge=0, le=365, description="Hold kept after a ticket closes")] = 7
    session_hours: Annotated[int, Field(ge=1, le=168, description="Lifetime of a sign-in session (cookie)")] = 12
    token_max_days: Annotated[int, Field(ge=1, le=365, description="Longest lifetime of an API token")] = 90
    lockout_after: Annotated[int, Field(ge=3, le=50, description="Failed sign-ins in a row before a lockout")] = 5
    lockout_base_s: Annotated[int, Field(ge=1, le=3600, description="First lockout; doubles with each further failure")] = 30
    lockout_max_s: Annotated[int, Field(ge=60, le=86400, description="Longest lockout")] = 3600
    signin_address_failures: Annotated[int, Field(
        ge=5, le=10_000, description="Failed sign-ins from one client address (any names) within "
                                     "signin_address_window_s before that address must wait")] = 20
    signin_address_window_s: Annotated[int, Field(ge=60, le=86400, description="See signin_address_failures")] = 600
    min_password_length: Annotated[int, Field(ge=10, le=128, description="Shortest password a user may choose")] = 12
    playback_max_s: Annotated[int, Field(ge=10, le=3600, description="Longest span one playback request may mux")] = 600
    worker_threads: Annotated[int, Field(ge=2, le=64, description="Requests handled at once (sync routes' threads); "
                                         "more than a few per core only adds waiting on the GIL")] = 8

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_ok(cls, v: list[str]) -> list[str]:
        for i, addr in enumerate(v):
            try:
                ipaddress.ip_network(addr, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies[{i}]: {addr!r} is not an IP address or network") from None
        return v

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)")
        return self


TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,7}$")


class MqttConfig(Strict):
    """Where alarms are published (retained, QoS 1); absent means no MQTT."""

    host: Annotated[str, Field(min_length=1, max_length=253, description="Broker host name or address")]
    port: Annotated[int, Field(ge=1, le=65535, description="Broker port (1883 plain, 8883 usually TLS)")] = 1883
    username: Annotated[str | None, Field(min_length=1, max_length=200, description="User name at the broker")] = None
    password_file: Annotated[
        Path | None, Field(description="File holding the broker password (mode 0600); never inline")
    ] = None
    topic_prefix: Annotated[
        str, Field(description="First topic levels: alarms go to <prefix>/<node_id>/alarm/<kind>[/<camera>]")
    ] = "vms"
    tls: Annotated[bool, Field(description="Connect with TLS, verifying the broker against the system CAs")] = False
    ca_file: Annotated[Path | None, Field(description="CA certificate (PEM) to verify the broker instead")] = None
    queue_max: Annotated[
        int, Field(ge=10, le=100_000, description="Alarm messages kept while the broker is unreachable")
    ] = 1000

    @field_validator("host")
    @classmethod
    def _host_ok(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z0-9_.:\[\]-]+$", v):
            raise ValueError(f"mqtt host {v!r} is not a host name or address")
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_ok(cls, v: str) -> str:
        if not TOPIC_PREFIX.match(v):
            raise ValueError(
                f"topic_prefix {v!r}: use 1-8 levels of letters, digits, '.', '-' or '_' separated by '/' "
                "(no wildcards '+' or '#', no leading or trailing '/')"
            )
        return v

    @model_validator(mode="after")
    def _password_needs_user(self) -> MqttConfig:
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file is set but username is not; set both or neither")
        return self


class AlarmsConfig(Strict):
    camera_offline_after_s: Annotated[
        float, Field(ge=5, le=86_400, description="A camera silent this long raises the camera_offline alarm")
    ] = 60.0


PUBLIC_URL = re.compile(r"^https?://[A-Za-z0-9_.\[\]:-]+(/[A-Za-z0-9._~%!$&'()*+,;=:/-]*)?$")


class DeliveryConfig(Strict):
    """Delivery links for recipients without accounts (docs/design/delivery.md)."""

    default_expiry_hours: Annotated[int, Field(ge=1, le=720, description="Link lifetime when none is asked for")] = 72
    max_expiry_hours: Annotated[int, Field(ge=1, le=720, description="Longest link lifetime a manager may set")] = 720
    default_max_downloads: Annotated[int, Field(ge=1, le=100, description="Downloads per link when none is asked for")] = 3
    package_grace_hours: Annotated[
        int, Field(ge=0, le=720, description="A package is deleted this long after its last live link ended")
    ] = 24
    public_url: Annotated[str | None, Field(description=(
        "Base URL recipients open links under (e.g. https://cctv.library.example); default: the address the "
        "manager's request came to, which behind a reverse proxy may be an internal one"))] = None

    @field_validator("public_url")
    @classmethod
    def _public_url_ok(cls, v: str | None) -> str | None:
        if v is not None and not PUBLIC_URL.match(v):
            shown = "the URL given" if "@" in v else repr(v)  # never echo credentials
            raise ValueError(f"{shown} must be http(s)://HOST[:PORT][/PATH] with no credentials, query or fragment")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _expiry_order(self) -> DeliveryConfig:
        if self.default_expiry_hours > self.max_expiry_hours:
            raise ValueError(f"default_expiry_hours ({self.default_expiry_hours}) exceeds max_expiry_hours "
                             f"({self.max_expiry_hours})")
        return self


PEER_URL = re.compile(r"^https?://[A-Za-z0-9_.:\[\]-]+(:[0-9]{1,5})?/?$")


class ClusterConfig(Strict):
    """Several recorder nodes sharing one PostgreSQL (docs/design/multi-node.md)."""

    secret_file: Annotated[
        Path, Field(description="Shared secret of the nodes (mode 0600, the same file on every node)")
    ]
    peers: Annotated[
        dict[str, str],
        Field(description="node_id -> base URL of that node's internal endpoint, e.g. http://10.0.0.2:8080"),
    ] = {}
    fetch_timeout_s: Annotated[float, Field(ge=1, le=300, description="Longest wait for a peer's segment")] = 30.0

    @field_validator("peers")
    @classmethod
    def _peers_ok(cls, v: dict[str, str]) -> dict[str, str]:
        for node, url in v.items():
            if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,63}$", node):
                raise ValueError(f"peers: node id {node!r} must be 1-64 lower-case letters, digits, '.', '-' or '_'")
            if not PEER_URL.match(url):
                shown = "the URL given" if "@" in url else repr(url)  # never echo credentials
                raise ValueError(f"peers.{node}: {shown} must be http(s)://HOST[:PORT] with no path or credentials")
        return v


DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")


class Config(Strict):
    node_id: Annotated[str, Field(description="Name of this recorder node (URL/path safe)")] = socket.gethostname().lower()[:64] or "node"
    data_dir: Annotated[Path, Field(description="Base directory; other paths default below it")] = Path("data")
    storage_root: Path | None = None
    key_file: Path | None = None
    signing_key_file: Path | None = None
    database_url: str | None = None
    legal_max_retain_days: Annotated[int, Field(ge=1, le=3650, description="Legal maximum retention")] = 30
    timezone: Annotated[str, Field(description="Time zone for screens and manifests")] = "Europe/Copenhagen"
    cameras: list[CameraConfig] = []
    recorder: RecorderConfig = RecorderConfig()
    janitor: JanitorConfig = JanitorConfig()
    api: ApiConfig = ApiConfig()
    mqtt: MqttConfig | None = None
    alarms: AlarmsConfig = AlarmsConfig()
    cluster: ClusterConfig | None = None
    delivery: DeliveryConfig = DeliveryConfig()
    doorlog: DoorlogConfig | None = None  # the door access log (vms/core/doorlog_config.py)
    archive: ArchiveConfig | None = None
    mail: MailSection = None  # notification e-mails (vms/core/mail_config.py); absent: none

    @field_validator("node_id")
    @classmethod
    def _node_safe(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,63}$", v):
            raise ValueError("node_id must be 1-64 lower-case letters, digits, '.', '-' or '_'")
        return v

    @field_validator("database_url")
    @classmethod
    def _database_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in DATABASE_SCHEMES or not v.split("://", 1)[1]:
            # the URL itself is not shown: it may carry a password
            raise ValueError("must be a SQLAlchemy URL of the form sqlite:///PATH or "
                             "postgresql+psycopg://USER@HOST:PORT/DATABASE (allowed schemes: "
                             + ", ".join(DATABASE_SCHEMES) + ")")
        return v

    @model_validator(mode="after")
    def _cameras_ok(self) -> Config:
        seen: set[str] = set()
        labels: dict[tuple[str, str], str] = {}
        for i, cam in enumerate(self.cameras):
            if cam.id in seen:
                raise ValueError(f"cameras[{i}].id: camera id {cam.id!r} is used twice")
            seen.add(cam.id)
            if (other := labels.setdefault((cam.display_name, cam.place), cam.id)) != cam.id:
                raise ValueError(f"cameras[{i}].name: camera {other!r} already has the name {cam.display_name!r} "
                                 f"and the same place; give each camera its own name or place")
            if cam.retain_days > self.legal_max_retain_days and cam.legal_max_override is None:
                raise ValueError(
                    f"cameras[{i}].retain_days: {cam.retain_days} days exceeds the legal maximum of "
                    f"{self.legal_max_retain_days} days; lower it, or add "
                    f'legal_max_override = {{ reason = "..." }} with a written reason'
                )
        if self.doorlog is not None and (problem := retention_problem(self.doorlog, self.legal_max_retain_days)):
            raise ValueError(problem)
        return self

    # -- derived paths -------------------------------------------------------------

    @property
    def storage_path(self) -> Path:
        return self.storage_root or self.data_dir / "segments"

    @property
    def audit_anchor_path(self) -> Path:
        """The last verified head of the audit trail, outside the database (storage.format.audit_anchor)."""
        return self.data_dir / "audit.anchor"

    @property
    def key_path(self) -> Path:
        return self.key_file or self.data_dir / "keys" / "master.key"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "keys" / "signing.key"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'index.db'}"

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.id == camera_id), None)


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _absolute(cfg: Config, base: Path) -> Config:
    def fix(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p)).resolve()

    data = cfg.model_dump()
    data["data_dir"] = fix(cfg.data_dir)
    for key in ("storage_root", "key_file", "signing_key_file"):
        data[key] = fix(getattr(cfg, key))
    data["api"]["tls_cert"] = fix(cfg.api.tls_cert)
    data["api"]["tls_key"] = fix(cfg.api.tls_key)
    if cfg.mqtt is not None:
        data["mqtt"]["password_file"] = fix(cfg.mqtt.password_file)
        data["mqtt"]["ca_file"] = fix(cfg.mqtt.ca_file)
    if cfg.cluster is not None:
        data["cluster"]["secret_file"] = fix(cfg.cluster.secret_file)
    if cfg.doorlog is not None:
        data["doorlog"]["inbox"] = fix(cfg.doorlog.inbox)
    if cfg.archive is not None:
        data["archive"]["credentials_file"] = fix(cfg.archive.credentials_file)
    if cfg.mail is not None:
        data["mail"].update(password_file=fix(cfg.mail.password_file), ca_file=fix(cfg.mail.ca_file))
    for cam, raw in zip(cfg.cameras, data["cameras"], strict=True):
        if cam.is_file and not cam.source.startswith("file:"):
            raw["source"] = str(fix(Path(cam.source)))
    return Config.model_validate(data)


def _model_in(annotation) -> type[BaseModel] | None:
    """The pydantic model inside a field's type (``X``, ``X | None``, ``list[X]``, ``Annotated[X, ...]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _allowed_keys(loc: tuple) -> list[str]:
    """The keys a table of the config accepts, for the table at ``loc`` (list indexes skipped)."""
    model: type[BaseModel] | None = Config
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        model = _model_in(field.annotation) if field else None
    return sorted(model.model_fields) if model else []


def parse_config(text: str, file: Path | str = "<config>") -> Config:
    """Parse and validate TOML text; paths stay as written."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
        err = errors[0]
        key = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            msg = ("unknown key (typo?); allowed here: " + ", ".join(allowed) if allowed else
                   "unknown key (typo? see docs/configuration.md for the keys allowed here)")
        elif "ctx" in err and err["type"].startswith(("greater", "less")):
            msg = f"{msg} (got {err.get('input')!r})"
        if not key and msg.startswith(("cameras[", "doorlog.", "mail.")):
            key, _, msg = msg.partition(": ")
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        raise ConfigError(file, key, msg + more) from None


def load_config(path: Path | str, *, check_permissions: bool = True) -> Config:
    """Read, validate and make paths absolute; optionally check file permissions."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot be read ({exc.__class__.__name__})") from None
    cfg = _absolute(parse_config(text, path), path.resolve().parent)
    if check_permissions:
        check_paths(cfg, path)
    return cfg


def _within(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def check_paths(cfg: Config, file: Path | str) -> None:
    """Refuse unsafe placement and permissions of keys and footage (existing paths only)."""
    key_path, root = cfg.key_path, cfg.storage_path
    for name, key in (("key_file", key_path), ("signing_key_file", cfg.signing_key_path)):
        if _within(key, root):
            raise ConfigError(file, name, f"{key} lies inside the storage root {root}; keep keys outside it")
        if key.exists():
            mode = stat.S_IMODE(key.stat().st_mode)
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(file, name, f"{key} has mode {mode:04o}; it must be readable by its owner only (chmod 600)")
        if key.parent.exists() and _group_or_other_writable(key.parent):
            raise ConfigError(file, name, f"key directory {key.parent} is writable by group or others (chmod 700)")
    if cfg.mqtt is not None and cfg.mqtt.password_file is not None:
        _check_secret_file(cfg.mqtt.password_file, "mqtt.password_file", file)
    if cfg.cluster is not None:
        _check_secret_file(cfg.cluster.secret_file, "cluster.secret_file", file)
    if cfg.archive is not None:
        _check_secret_file(cfg.archive.credentials_file, "archive.credentials_file", file)
    if cfg.mail is not None and cfg.mail.password_file is not None:
        _check_secret_file(cfg.mail.password_file, "mail.password_file", file)
    if cfg.api.tls_key is not None:
        _check_secret_file(cfg.api.tls_key, "api.tls_key", file)
        if not cfg.api.tls_cert.is_file():
            raise ConfigError(file, "api.tls_cert", f"{cfg.api.tls_cert} does not exist or is not a file")
    if root.exists():
        if not root.is_dir():
            raise ConfigError(file, "storage_root", f"{root} exists and is not a directory")
        if _group_or_other_writable(root):
            raise ConfigError(file, "storage_root", f"{root} is writable by group or others (chmod 750 or 700)")


def _check_secret_file(path: Path, key: str, file: Path | str) -> None:
    """A secret the appliance reads (not writes): it must exist and be private to its owner."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise ConfigError(file, key, f"{path} does not exist") from None
    except OSError as exc:
        raise ConfigError(file, key, f"{path} cannot be examined ({exc.__class__.__name__})") from None
    if not stat.S_ISREG(path.stat().st_mode):
        raise ConfigError(file, key, f"{path} is not a regular file")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(file, key, f"{path} has mode {mode:04o}; it must be readable by its owner only (chmod 600)")


def _group_or_other_writable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IWGRP | stat.S_IWOTH))
