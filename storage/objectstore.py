"""An S3-compatible bucket holding copies of sealed segment files (the archive tier).

What goes in is the segment file as stored: already encrypted under its hour key, never
decrypted for upload.  Object keys are chosen by the caller (``vms.archive``); this module
only talks S3, through boto3 (docs/design/archive.md says why boto3).

Contracts:
* every call is bounded by ``timeout_s`` (connect and read) and makes at most ``attempts``
  tries (boto3's own retries); callers retry later on :class:`StoreError`;
* a :class:`StoreError` names the bucket, the object key where there is one and what the
  store answered; never the credentials (they are only in the client);
* :meth:`ObjectStore.delete_all_versions` removes every version and every delete marker of a
  key, so a versioned bucket keeps nothing behind; a version under a legal hold is refused
  by the store (``held``) and left for a later call.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ErrorKind = Literal["unreachable", "credentials", "no_bucket", "denied", "missing", "held", "other"]


class StoreError(Exception):
    """The store refused or could not be reached; ``kind`` says which (message safe to show)."""

    def __init__(self, kind: ErrorKind, message: str):
        self.kind = kind
        super().__init__(message)


@dataclass(frozen=True)
class BucketStatus:
    versioning: str  # "Enabled", "Suspended" or "" (never enabled)
    object_lock: bool


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str | None
    size_bytes: int
    delete_marker: bool


class ObjectStore:
    def __init__(self, *, endpoint: str, bucket: str, region: str, access_key: str, secret_key: str,
                 timeout_s: float = 10.0, attempts: int = 2, pool: int = 10):
        import boto3
        from botocore.config import Config as BotoConfig

        self.endpoint, self.bucket = endpoint, bucket
        cfg = BotoConfig(
            region_name=region, connect_timeout=timeout_s, read_timeout=timeout_s,
            retries={"max_attempts": attempts, "mode": "standard"}, max_pool_connections=pool,
            # the body is not SHA-256 signed (UNSIGNED-PAYLOAD): uploads carry a CRC32 the store checks
            # instead (a third of the CPU on a 2-core node, docs/benchmarks.md); the signature still covers
            # the request, and the segment format authenticates every chunk on reading anyway
            s3={"addressing_style": "path", "payload_signing_enabled": False},
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )
        self._s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                                                  aws_secret_access_key=secret_key, config=cfg)

    # ------------------------------------------------------------ errors

    def _error(self, exc: Exception, key: str | None = None) -> StoreError:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f"bucket {self.bucket!r} at {self.endpoint}" + (f", object {key!r}" if key else "")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch") or (status == 403 and code in ("403", "")):
                return StoreError("credentials", f"{where}: the store refused the credentials ({code or status}); "
                                                 "check [archive] credentials_file")
            if code in ("NoSuchBucket",) or (status == 404 and key is None):
                return StoreError("no_bucket", f"{where}: the bucket does not exist (create it, with versioning "
                                               "and object lock, before the archive is used)")
            if code in ("NoSuchKey", "NoSuchVersion", "404") or status == 404:
                return StoreError("missing", f"{where}: no such object")
            if code == "AccessDenied":
                return StoreError("denied", f"{where}: access denied (a legal hold or retention on the object, "
                                            "or the credentials lack the permission)")
            return StoreError("other", f"{where}: the store answered {code or status}")
        if isinstance(exc, NoCredentialsError):
            return StoreError("credentials", f"{where}: no credentials")
        if isinstance(exc, EndpointConnectionError | ConnectionError | TimeoutError | OSError):
            return StoreError("unreachable", f"{where}: unreachable ({exc.__class__.__name__})")
        from botocore.exceptions import BotoCoreError

        if isinstance(exc, BotoCoreError):
            return StoreError("unreachable", f"{where}: unreachable ({exc.__class__.__name__})")
        raise exc

    def _call(self, fn, key: str | None = None, **kw):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **({"Key": key} if key is not None else {}), **kw)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._error(exc, key) from None

    # ------------------------------------------------------------ the bucket

    def bucket_status(self) -> BucketStatus:
        """Reachability, credentials and the bucket in one: raises StoreError when any is wrong."""
        self._call(self._s3.head_bucket)
        versioning = self._call(self._s3.get_bucket_versioning).get("Status", "")
        try:
            lock = self._call(self._s3.get_object_lock_configuration)
            locked = lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except StoreError as exc:
            if exc.kind in ("unreachable", "credentials"):
                raise
            locked = False  # ObjectLockConfigurationNotFoundError: a bucket made without object lock
        return BucketStatus(versioning, locked)

    # ------------------------------------------------------------ objects

    def put_file(self, key: str, path: Path, *, legal_hold: bool = False) -> str | None:
        """Upload one file as it is; returns the new version's id (None in an unversioned bucket)."""
        extra = {"ObjectLockLegalHoldStatus": "ON"} if legal_hold else {}
        try:
            with open(path, "rb") as fh:
                out = self._call(self._s3.put_object, key, Body=fh, ContentType="application/octet-stream",
                                 ChecksumAlgorithm="CRC32", **extra)
        except FileNotFoundError:
            raise StoreError("missing", f"{path}: the local file is gone") from None
        return out.get("VersionId")

    def get(self, key: str, *, first: int | None = None, last: int | None = None) -> bytes:
        """The object's bytes, or bytes ``first``..``last`` (inclusive) of it (a ranged GET)."""
        extra = {"Range": f"bytes={first}-{'' if last is None else last}"} if first is not None else {}
        out = self._call(self._s3.get_object, key, **extra)
        try:
            return out["Body"].read()
        except OSError as exc:
            raise self._error(exc, key) from None

    def head(self, key: str) -> int | None:
        """The size of the object's newest version; None when there is none."""
        try:
            return int(self._call(self._s3.head_object, key)["ContentLength"])
        except StoreError as exc:
            if exc.kind == "missing":
                return None
            raise

    def versions(self, prefix: str) -> list[ObjectVersion]:
        """Every version and delete marker under ``prefix`` (a key is its own prefix)."""
        out: list[ObjectVersion] = []
        kw: dict = {"Prefix": prefix}
        while True:
            page = self._call(self._s3.list_object_versions, **kw)
            out += [ObjectVersion(v["Key"], v.get("VersionId"), int(v.get("Size", 0)), False)
                    for v in page.get("Versions", [])]
            out += [ObjectVersion(m["Key"], m.get("VersionId"), 0, True) for m in page.get("DeleteMarkers", [])]
            if not page.get("IsTruncated"):
                return out
            kw = {"Prefix": prefix, "KeyMarker": page.get("NextKeyMarker"),
                  "VersionIdMarker": page.get("NextVersionIdMarker")}

    def delete_all_versions(self, key: str) -> int:
        """Remove every version and delete marker of exactly ``key``; returns how many were removed.
        A held version makes it raise StoreError(kind='held') after the others are gone."""
        removed, held = 0, False
        for v in self.versions(key):
            if v.key != key:
                continue
            try:
                extra = {"VersionId": v.version_id} if v.version_id not in (None, "null") else {}
                self._call(self._s3.delete_object, key, **extra)
                removed += 1
            except StoreError as exc:
                if exc.kind != "denied":
                    raise
                held = True
        if held:
            raise StoreError("held", f"bucket {self.bucket!r}, object {key!r}: a version is under a legal hold or "
                                     "retention and was kept")
        return removed

    def set_legal_hold(self, key: str, on: bool) -> int:
        """Put (or lift) an S3 Object Lock legal hold on every version of ``key``; returns how many."""
        n = 0
        for v in self.versions(key):
            if v.key != key or v.delete_marker:
                continue
            extra = {"VersionId": v.version_id} if v.version_id not in (None, "null") else {}
            self._call(self._s3.put_object_legal_hold, key, LegalHold={"Status": "ON" if on else "OFF"}, **extra)
            n += 1
        return n

    def keys(self, prefix: str) -> dict[str, int]:
        """Newest versions under ``prefix``: key -> size."""
        out: dict[str, int] = {}
        kw: dict = {"Prefix": prefix}
        while True:
            page = self._call(self._s3.list_objects_v2, **kw)
            out.update({o["Key"]: int(o["Size"]) for o in page.get("Contents", [])})
            if not page.get("IsTruncated"):
                return out
            kw = {"Prefix": prefix, "ContinuationToken": page["NextContinuationToken"]}
