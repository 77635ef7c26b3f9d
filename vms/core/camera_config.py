"""One camera's configuration (``[[cameras]]`` in the TOML file), validated strictly with pydantic.

:class:`CameraConfig` is used by :mod:`vms.core.config` for the file and, unchanged, by the administrator's
camera form (:mod:`vms.ops.camera_admin`): a camera typed into the web UI is validated by exactly the code
that ``vms config check`` runs.  A camera has an ``id`` (in paths, the index and the API; never changes), a
``name`` and a ``place`` that people read on every page and in exported manifests (the id is shown where
no name is set), and a ``source`` that may carry RTSP credentials: :func:`split_credentials` and
:func:`with_credentials` take them apart and put them back, so a form can show the address without them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

CAMERA_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SOURCE_SCHEMES = ("rtsp", "rtsps", "http", "https", "file")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LegalMaxOverride(Strict):
    reason: Annotated[
        str,
        Field(min_length=20, max_length=1000, description="Written reason for keeping footage beyond the legal maximum"),
    ]


class CameraConfig(Strict):
    id: Annotated[str, Field(description="Lower-case letters, digits, '-' and '_', 1-64 characters")]
    name: Annotated[str | None, Field(
        min_length=1, max_length=80, description="Display name people read (e.g. 'Indgang'); default: the id")] = None
    place: Annotated[str, Field(
        max_length=120, description="Where the camera hangs, in words (e.g. 'Hovedindgang, stueetagen')")] = ""
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
    live_view: Annotated[bool, Field(description="Staff may watch it live in the browser (off unless the site's "
                                                 "signage and privacy policy say so)")] = False

    @field_validator("id")
    @classmethod
    def _id_safe(cls, v: str) -> str:
        if not CAMERA_ID.match(v):
            raise ValueError(
                f"camera id {v!r} is not URL/path safe; use 1-64 lower-case letters, digits, '-' or '_', "
                "starting with a letter or digit"
            )
        return v

    @field_validator("name", "place")
    @classmethod
    def _words_ok(cls, v: str | None, info) -> str | None:
        if v is None:
            return v
        if _CONTROL.search(v):
            raise ValueError(f"{info.field_name} contains control characters (line breaks, tabs); use plain text")
        if v != v.strip():
            raise ValueError(f"{info.field_name} begins or ends with spaces; remove them")
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

    @property
    def display_name(self) -> str:
        return self.name or self.id

    @property
    def has_credentials(self) -> bool:
        return split_credentials(self.source)[1] is not None


def split_credentials(source: str) -> tuple[str, str | None, str | None]:
    """``(source without user and password, user, password)``; a file path or a URL without them is unchanged."""
    parts = urlsplit(source)
    if not parts.netloc or "@" not in parts.netloc:
        return source, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if password else None


def with_credentials(source: str, user: str | None, password: str | None) -> str:
    """``source`` with ``user:password@`` put in (percent-encoded); unchanged when there is no user or no host."""
    parts = urlsplit(source)
    if not user or not parts.netloc:
        return source
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
