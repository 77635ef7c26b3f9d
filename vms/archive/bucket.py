"""Opening the archive's bucket from ``[archive]``: the credentials file and the client.

The credentials file is TOML with ``access_key_id`` and ``secret_access_key`` (mode 0600, checked by
:func:`vms.core.config.check_paths`).  Errors name the file and the key, never a value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from storage.objectstore import ObjectStore
from vms.core.archive_config import ArchiveConfig
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

DAY_US = 86_400 * 1_000_000


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return "Credentials(***)"


def read_credentials(path: Path) -> Credentials:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DomainError(Kind.INVALID, f"{path}: the archive credentials file does not exist",
                          key=N_("archive.err.creds_missing"), params={"path": str(path)}) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainError(Kind.INVALID, f"{path}: cannot be read ({exc.__class__.__name__})",
                          key=N_("archive.err.creds_unreadable"),
                          params={"path": str(path), "error": exc.__class__.__name__}) from None
    except tomllib.TOMLDecodeError:
        raise DomainError(Kind.INVALID, f"{path}: not valid TOML; it must hold access_key_id = \"...\" and "
                                        "secret_access_key = \"...\"",
                          key=N_("archive.err.creds_toml"), params={"path": str(path)}) from None
    unknown = sorted(set(raw) - {"access_key_id", "secret_access_key"})
    if unknown:
        raise DomainError(Kind.INVALID, f"{path}: unknown key(s) {', '.join(unknown)}; allowed: access_key_id, "
                                        "secret_access_key",
                          key=N_("archive.err.creds_unknown"), params={"path": str(path), "keys": ", ".join(unknown)})
    for key in ("access_key_id", "secret_access_key"):
        if not isinstance(raw.get(key), str) or not 3 <= len(raw[key]) <= 256:
            raise DomainError(Kind.INVALID, f"{path}: {key} must be a text of 3-256 characters",
                              key=N_("archive.err.creds_value"), params={"path": str(path), "key": key})
    return Credentials(raw["access_key_id"], raw["secret_access_key"])


def open_store(cfg: ArchiveConfig, *, attempts: int = 2) -> ObjectStore:
    creds = read_credentials(cfg.credentials_file)
    return ObjectStore(endpoint=cfg.endpoint, bucket=cfg.bucket, region=cfg.region, access_key=creds.access_key_id,
                       secret_key=creds.secret_access_key, timeout_s=cfg.timeout_s, attempts=attempts,
                       pool=cfg.concurrency + 4)


def node_prefix(cfg: ArchiveConfig, node_id: str) -> str:
    """Where one node's objects live: ``<key_prefix><node_id>/``."""
    return f"{cfg.key_prefix}{node_id}/"
