"""Stock tools that check an evidence package from outside: Debian's ffprobe, GNU
sha256sum, OpenSSL 3 and Info-ZIP unzip.  A missing tool skips locally and fails
with CI=true (``missing_component``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.fixtures import missing_component

DEBIAN_PACKAGES = {"ffprobe": "ffmpeg", "ffmpeg": "ffmpeg", "sha256sum": "coreutils", "openssl": "openssl", "unzip": "unzip"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_component(f"{name} is not installed (Debian package {DEBIAN_PACKAGES.get(name, name)})")
    return path


def run(*cmd, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=120)


def unpack(package: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    r = run(tool("unzip"), "-q", package, "-d", into)
    assert r.returncode == 0, r.stderr
    return into


def ffprobe_frames(clip: Path) -> tuple[int, float, str]:
    """Decode every frame: (frames decoded, container duration in s, codec)."""
    r = run(tool("ffprobe"), "-v", "error", "-count_frames", "-select_streams", "v:0",
            "-show_entries", "stream=nb_read_frames,codec_name:format=duration", "-of", "json", clip)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    st = doc["streams"][0]
    return int(st["nb_read_frames"]), float(doc["format"]["duration"]), st["codec_name"]


def ffmpeg_decode_errors(clip: Path) -> str:
    """Everything ffmpeg complains about while decoding the whole clip (empty if clean)."""
    r = run(tool("ffmpeg"), "-v", "error", "-i", clip, "-f", "null", "-")
    return r.stderr.strip() + ("" if r.returncode == 0 else f" (exit {r.returncode})")


def sha256sum_check(folder: Path) -> subprocess.CompletedProcess:
    return run(tool("sha256sum"), "-c", "SHA256SUMS", cwd=folder)


def openssl_verify(folder: Path, data: str, sig: str) -> subprocess.CompletedProcess:
    return run(tool("openssl"), "pkeyutl", "-verify", "-pubin", "-inkey", "appliance-public-key.pem", "-rawin",
               "-in", data, "-sigfile", sig, cwd=folder)


def vms(*args, cwd: Path) -> subprocess.CompletedProcess:
    """The ``vms`` command as a separate process, without any configuration."""
    return subprocess.run([sys.executable, "-m", "vms.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "VMS_CONFIG": "/nonexistent/vms.toml",
                                                       "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
