"""``vms init``: a new data directory with config, keys, database and the first admin.

Refuses to touch an existing installation: keys are never overwritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from storage.keys.keyring import write_key_file
from storage.sql.db import safe_url
from vms.access.audit_key import open_trail
from vms.access.users import CONSOLE, add_user
from vms.core.clock import Clock
from vms.core.config import load_config
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

CONFIG_NAME = "vms.toml"


@dataclass
class InitResult:
    data_dir: Path
    config_path: Path
    key_path: Path
    signing_key_path: Path
    database: str
    admin_name: str
    admin_password: str


def write_signing_key(path: Path) -> None:
    """Ed25519 key that signs evidence manifests; PEM, mode 0600, never overwritten."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def initialise(data_dir: Path, *, demo: bool = False, node_id: str | None = None) -> InitResult:
    data_dir = data_dir.resolve()
    config_path = data_dir / CONFIG_NAME
    if config_path.exists() or (data_dir / "keys").exists():
        raise DomainError(
            Kind.CONFLICT, f"{data_dir} is already initialised (found {CONFIG_NAME} or keys/); nothing was changed",
            key=N_("cli.init.exists"), params={"dir": data_dir, "config": CONFIG_NAME})
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    for sub in ("keys", "segments"):
        (data_dir / sub).mkdir(mode=0o700, exist_ok=True)
    doc: dict = {"data_dir": ".", "legal_max_retain_days": 30}
    if node_id:
        doc["node_id"] = node_id
    if demo:
        from vms.recording.democlip import make_clip

        clip = data_dir / "demo" / "demo-camera.mp4"
        make_clip(clip, seconds=60, progress=True)
        doc["cameras"] = [
            {"id": "demo", "source": str(clip.relative_to(data_dir)), "retain_days": 14, "segment_seconds": 60, "loop": True}
        ]
    text = (
        "# vms appliance configuration; see docs/configuration.md for every key.\n"
        "# Paths are relative to this file.  Add cameras as [[cameras]] tables:\n"
        '#   [[cameras]]\n#   id = "entrance"\n#   source = "rtsp://user:pass@10.0.0.10/stream1"\n'
        "#   retain_days = 14\n\n" + tomli_w.dumps(doc)
    )
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    cfg = load_config(config_path)
    write_key_file(cfg.key_path)
    write_signing_key(cfg.signing_key_path)
    engine = open_trail(cfg, Clock().now_us())  # a new trail: sealed with its audit key from entry 1
    password = add_user(engine, Clock(), CONSOLE, "admin", "admin", bootstrap=True)  # says so in the trail
    engine.dispose()
    return InitResult(data_dir, config_path, cfg.key_path, cfg.signing_key_path, safe_url(cfg.db_url), "admin", password)
