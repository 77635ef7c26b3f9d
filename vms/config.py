"""The appliance's TOML configuration, validated strictly with pydantic.

Every field has a default (where one is sensible), bounds and a description;
unknown keys are refused.  :func:`load_config` returns a :class:`Config` with
all paths absolute (relative paths are taken relative to the config file) or
raises :class:`ConfigError` whose message names the file, the key and what is
allowed.  Nothing here touches footage: callers load and check the config
before they open the storage root.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SOURCE_SCHEMES = ("rtsp", "rtsps", "http", "https", "file")


class ConfigError(Exception):
    """A configuration problem a person can fix; ``str()`` is the full message."""

    def __init__(self, file: Path | str, key: str, message: str):
        self.file, self.key = str(file), key
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalMaxOverride(Strict):
    reason: Annotated[
        str,
        Field(min_length=20, max_length=1000, description="Written reason for keeping footage beyond the legal maximum"),
    ]


class CameraConfig(Strict):
    id: Annotated[str, Field(description="Lower-case letters, digits, '-' and '_', 1-64 characters")]
    source: Annotated[
        str,
        Field(min_length=1, max_length=2000, description="rtsp://, rtsps://, http(s):// URL, or a local file path"),
    ]
    retain_days: Annotated[int, Field(ge=1, le=3650, description="Maximum age of footage in days")]
    segment_seconds: Annotated[int, Field(default=60, ge=2, le=600, description="Target segment length")] = 60
    transport: Annotated[Literal["tcp", "udp"], Field(description="RTSP transport")] = "tcp"
    loop: Annotated[bool, Field(description="For file sources: play in a loop (simulated camera)")] = True
    enabled: bool = True
    quota_bytes: Annotated[int | None, Field(ge=1, description="Optional cap on stored bytes for this camera")] = None
    legal_max_override: LegalMaxOverride | None = None

    @field_validator("id")
    @classmethod
    def _id_safe(cls, v: str) -> str:
        if not CAMERA_ID.match(v):
            raise ValueError(
                f"camera id {v!r} is not URL/path safe; use 1-64 lower-case letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return v

    @field_validator("source")
    @classmethod
    def _source_ok(cls, v: str) -> str:
        if "\x00" in v or "\n" in v:
            raise ValueError("source contains control characters")
        scheme = urlsplit(v).scheme.lower()
        if scheme and len(scheme) > 1 and scheme not in SOURCE_SCHEMES:
            raise ValueError(f"source scheme {scheme!r} is not supported (allowed: {', '.join(SOURCE_SCHEMES)}, or a file path)")
        return v

    @property
    def is_file(self) -> bool:
        scheme = urlsplit(self.source).scheme.lower()
        return not scheme or len(scheme) == 1 or scheme == "file"


class RecorderConfig(Strict):
    backoff_initial_s: Annotated[float, Field(ge=0.1, le=60, description="First reconnect delay")] = 1.0
    backoff_max_s: Annotated[float, Field(ge=1, le=600, description="Longest reconnect delay")] = 30.0
    open_timeout_s: Annotated[float, Field(ge=1, le=120, description="Give up connecting after this long")] = 10.0
    read_timeout_s: Annotated[float, Field(ge=1, le=120, description="A stream silent this long is lost")] = 10.0


class JanitorConfig(Strict):
    sweep_interval_s: Annotated[float, Field(ge=1, le=60, description="Seconds between retention sweeps")] = 30.0
    min_free_bytes: Annotated[int, Field(ge=0, description="Free-space floor of the storage root")] = 1 << 30
    min_free_percent: Annotated[float, Field(ge=0, le=90, description="Free-space floor in percent")] = 5.0


class ApiConfig(Strict):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    access_window_days: Annotated[int, Field(ge=1, le=90, description="How long an approved ticket grants access")] = 7
    hold_grace_days: Annotated[int, Field(ge=0, le=365, description="Hold kept after a ticket closes")] = 7


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

    @field_validator("node_id")
    @classmethod
    def _node_safe(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_.-]{0,63}$", v):
            raise ValueError("node_id must be 1-64 lower-case letters, digits, '.', '-' or '_'")
        return v

    @model_validator(mode="after")
    def _cameras_ok(self) -> Config:
        seen: set[str] = set()
        for i, cam in enumerate(self.cameras):
            if cam.id in seen:
                raise ValueError(f"cameras[{i}].id: camera id {cam.id!r} is used twice")
            seen.add(cam.id)
            if cam.retain_days > self.legal_max_retain_days and cam.legal_max_override is None:
                raise ValueError(
                    f"cameras[{i}].retain_days: {cam.retain_days} days exceeds the legal maximum of "
                    f"{self.legal_max_retain_days} days; lower it, or add "
                    f'legal_max_override = {{ reason = "..." }} with a written reason'
                )
        return self

    # -- derived paths -------------------------------------------------------------

    @property
    def storage_path(self) -> Path:
        return self.storage_root or self.data_dir / "segments"

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
    for cam, raw in zip(cfg.cameras, data["cameras"], strict=True):
        if cam.is_file and not cam.source.startswith("file:"):
            raw["source"] = str(fix(Path(cam.source)))
    return Config.model_validate(data)


def parse_config(text: str, file: Path | str = "<config>") -> Config:
    """Parse and validate TOML text; paths stay as written."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (typo? see docs/configuration.md for the keys allowed here)"
        elif "ctx" in err and err["type"].startswith(("greater", "less")):
            msg = f"{msg} (got {err.get('input')!r})"
        if not key and msg.startswith("cameras["):
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
    if root.exists():
        if not root.is_dir():
            raise ConfigError(file, "storage_root", f"{root} exists and is not a directory")
        if _group_or_other_writable(root):
            raise ConfigError(file, "storage_root", f"{root} is writable by group or others (chmod 750 or 700)")


def _group_or_other_writable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IWGRP | stat.S_IWOTH))
