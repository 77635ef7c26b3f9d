"""The ``[doorlog]`` section of the configuration: the door access log (docs/design/doorlog.md).

Absent means no door log: nothing is watched, no controller may push, and tickets cannot name doors.
The column mapping describes a vendor's CSV export; the default is the documented format
``time,door,id`` (ISO 8601 time with offset, door id, CPR or card number), UTF-8, comma-separated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DOOR_ID = re.compile(r"^\w(?:[\w .-]{0,62}[\w.-])?$")  # letters (æøå too), digits, inner spaces, ".-_"
CONTROLLER_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DoorlogColumns(_Strict):
    """Which CSV columns (header names) hold the time, the door and the identifier."""

    time: Annotated[str, Field(min_length=1, max_length=100, description="Header of the time column")] = "time"
    door: Annotated[str, Field(min_length=1, max_length=100, description="Header of the door column")] = "door"
    id: Annotated[str, Field(min_length=1, max_length=100,
                             description="Header of the column with the CPR or card number")] = "id"


class DoorlogController(_Strict):
    """A door controller that pushes its exports over HTTP with a token of its own (not a user's)."""

    id: Annotated[str, Field(description="Lower-case letters, digits, '-' and '_', 1-64 characters")]
    token_sha256: Annotated[str, Field(description="SHA-256 (hex) of the controller's token; the token itself "
                                                   "is never in the config (docs/configuration.md, [doorlog])")]

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        if not CONTROLLER_ID.match(v):
            raise ValueError(f"controller id {v!r}: use 1-64 lower-case letters, digits, '-' or '_'")
        return v

    @field_validator("token_sha256")
    @classmethod
    def _hash_ok(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", v):
            raise ValueError("token_sha256 must be 64 lower-case hex digits (the SHA-256 of the token)")
        return v


class DoorlogConfig(_Strict):
    inbox: Annotated[Path, Field(description="Folder the door controller's CSV exports are dropped in (watched)")]
    retain_days: Annotated[int, Field(ge=1, le=3650, description="Days door log entries are kept")] = 14
    legal_max_override: Annotated[str | None, Field(
        min_length=20, max_length=1000,
        description="Written reason for keeping the door log beyond the legal maximum")] = None
    delimiter: Annotated[Literal[",", ";"], Field(description="Field separator of the CSV files")] = ","
    encoding: Annotated[Literal["utf-8", "windows-1252"], Field(description="Text encoding of the CSV files")] = "utf-8"
    time_format: Annotated[str, Field(
        min_length=1, max_length=100,
        description="'iso8601' (with offset), or a strptime format such as '%d-%m-%Y %H:%M:%S' read in the "
                    "appliance's time zone")] = "iso8601"
    columns: DoorlogColumns = DoorlogColumns()
    max_file_bytes: Annotated[int, Field(ge=1024, le=1 << 30, description="Largest CSV file accepted")] = 64 << 20
    controllers: Annotated[list[DoorlogController], Field(
        description="Controllers allowed to push files over HTTP (POST /api/doorlog/files)")] = []

    @field_validator("time_format")
    @classmethod
    def _format_ok(cls, v: str) -> str:
        if v != "iso8601" and "%" not in v:
            raise ValueError(f"time_format {v!r}: use 'iso8601' or a strptime format with % codes")
        return v

    @field_validator("controllers")
    @classmethod
    def _controllers_unique(cls, v: list[DoorlogController]) -> list[DoorlogController]:
        seen = set()
        for i, c in enumerate(v):
            if c.id in seen:
                raise ValueError(f"controllers[{i}].id: controller id {c.id!r} is used twice")
            seen.add(c.id)
        return v


def retention_problem(cfg: DoorlogConfig, legal_max_days: int) -> str | None:
    """Why ``retain_days`` is refused (None: allowed): above the legal maximum without a written override."""
    if cfg.retain_days > legal_max_days and cfg.legal_max_override is None:
        return (f"doorlog.retain_days: {cfg.retain_days} days exceeds the legal maximum of {legal_max_days} days; "
                'lower it, or add legal_max_override = "..." with a written reason')
    return None
