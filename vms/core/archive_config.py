"""``[archive]``: the S3 object-store tier (docs/design/archive.md, docs/configuration.md).

Absent means no archive: segments live on their node's disk only.  The credentials are never
inline: ``credentials_file`` (mode 0600, checked with the other secret files) holds
``access_key_id`` and ``secret_access_key`` as TOML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

ENDPOINT = re.compile(r"^https?://[A-Za-z0-9_.\[\]:-]+(:[0-9]{1,5})?/?$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
PREFIX = re.compile(r"^([A-Za-z0-9_.-]{1,64}/){0,4}$")
REGION = re.compile(r"^[a-z0-9-]{1,32}$")


class ArchiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: Annotated[str, Field(description="S3 endpoint URL, http(s)://HOST[:PORT] (no path, no credentials)")]
    bucket: Annotated[str, Field(description="Bucket name (3-63 lower-case letters, digits, '.', '-'); made "
                                             "beforehand, with versioning and object lock")]
    region: Annotated[str, Field(description="Region name the store expects in signatures")] = "us-east-1"
    credentials_file: Annotated[Path, Field(description="TOML file with access_key_id and secret_access_key "
                                                        "(mode 0600); never inline")]
    key_prefix: Annotated[str, Field(description="Prefix of every object key, e.g. 'vms/' (0-4 levels ending in '/'); "
                                                 "objects are <prefix><node_id>/<camera>/<day>/<file>")] = ""
    upload_after_s: Annotated[float, Field(ge=0, le=86_400, description="Seconds after a segment is sealed before "
                                                                        "it is copied")] = 10.0
    keep_local_days: Annotated[int, Field(ge=0, le=3650, description="Days an archived segment also stays on the "
                                                                     "node's disk (0: removed once archived)")] = 7
    concurrency: Annotated[int, Field(ge=1, le=16, description="Uploads at once")] = 2
    timeout_s: Annotated[float, Field(ge=1, le=300, description="Longest wait for one answer of the store")] = 10.0
    retry_max_s: Annotated[float, Field(ge=1, le=3600, description="Longest wait between retries of a failed "
                                                                   "upload (back-off doubles up to it)")] = 300.0
    poll_interval_s: Annotated[float, Field(ge=0.2, le=60, description="Seconds between looks at the queue "
                                                                       "when it is idle")] = 5.0

    @field_validator("endpoint")
    @classmethod
    def _endpoint_ok(cls, v: str) -> str:
        if not ENDPOINT.match(v):
            shown = "the URL given" if "@" in v else repr(v)  # never echo credentials
            raise ValueError(f"{shown} must be http(s)://HOST[:PORT] with no path, query or credentials")
        return v.rstrip("/")

    @field_validator("bucket")
    @classmethod
    def _bucket_ok(cls, v: str) -> str:
        if not BUCKET.match(v) or ".." in v:
            raise ValueError(f"bucket {v!r} is not an S3 bucket name: 3-63 lower-case letters, digits, '.' or '-', "
                             "starting and ending with a letter or digit")
        return v

    @field_validator("key_prefix")
    @classmethod
    def _prefix_ok(cls, v: str) -> str:
        if v and not PREFIX.match(v):
            raise ValueError(f"key_prefix {v!r}: use up to 4 levels of letters, digits, '.', '-' or '_', each "
                             "ending in '/' (e.g. 'vms/'), or leave it empty")
        return v

    @field_validator("region")
    @classmethod
    def _region_ok(cls, v: str) -> str:
        if not REGION.match(v):
            raise ValueError(f"region {v!r}: lower-case letters, digits and '-' (e.g. us-east-1)")
        return v
