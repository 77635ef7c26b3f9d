"""Evidence packages: manifest, signatures, checksums, README, ZIP.

A package is a ZIP (stored, not compressed; data descriptors, since it is
written as a stream) holding::

    clips/CAMERA_NN_YYYYMMDDTHHMMSSZ.mp4   the footage (one clip per continuous run)
    README.txt                             what this is and how to check it (Danish and English; Windows, macOS, Linux)
    verify.html                            an offline checker: hashes and signatures in the browser (WebCrypto)
    appliance-public-key.pem               Ed25519 public key (SubjectPublicKeyInfo PEM)
    manifest.json                          ticket, cameras, exact times, gaps, redaction, SHA-256 of the files above
    manifest.sig                           raw 64-byte Ed25519 signature over manifest.json's bytes
    SHA256SUMS                             `sha256sum` lines for every file above (manifest.json and .sig too)
    SHA256SUMS.sig                         raw Ed25519 signature over SHA256SUMS

Why two signatures: ``sha256sum -c SHA256SUMS`` alone proves nothing against
someone who edits a clip *and* SHA256SUMS; with SHA256SUMS signed too, the two
``openssl pkeyutl -verify`` commands plus ``sha256sum -c`` chain every byte to
the key without any of our software.  The key itself is trusted by comparing
its fingerprint with the one the sender gives separately.

Pure functions plus :class:`PackageZip` (writes to any file object);
:mod:`vms.evidence.verify` reads a ZIP or an extracted directory back.  Nothing here
logs, and no message contains key bytes or footage.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vms.core import i18n
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

FORMAT = "vms-evidence-package/1"
MANIFEST = "manifest.json"
MANIFEST_SIG = "manifest.sig"
PUBLIC_KEY = "appliance-public-key.pem"
README = "README.txt"
VERIFY_HTML = "verify.html"
SUMS = "SHA256SUMS"
SUMS_SIG = "SHA256SUMS.sig"
#: files that the manifest cannot list (they are made from it, or sign it)
DERIVED = (MANIFEST, MANIFEST_SIG, SUMS, SUMS_SIG)
SOFTWARE = "vms-appliance"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
_READ_BYTES = 1 << 20


def software_version() -> str:
    try:
        return metadata.version(SOFTWARE)
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- times


class Times:
    """UTC microseconds as people read them: ISO 8601 in UTC and in the appliance's zone."""

    def __init__(self, timezone: str):
        self.zone_name = timezone
        self.zone = ZoneInfo(timezone)

    def point(self, t_us: int) -> dict:
        utc = datetime.fromtimestamp(t_us // 1_000_000, UTC).replace(microsecond=t_us % 1_000_000)
        return {
            "utc": utc.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "local": utc.astimezone(self.zone).isoformat(timespec="microseconds"),
            "unix_us": t_us,
        }


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class TicketFacts:
    """What the approved ticket says; the exporter copies it into the manifest verbatim."""

    ticket_id: str
    description: str
    legal_basis: str
    requester: str
    approver: str
    recipient: str

    def __post_init__(self) -> None:
        for name in ("ticket_id", "description", "legal_basis", "requester", "approver", "recipient"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise DomainError(Kind.INVALID, f"ticket field {name!r} must be a non-empty text")


@dataclass(frozen=True)
class ClipRecord:
    file: str
    codec: str
    width: int
    height: int
    fps: str
    frames: int
    keyframes: int
    first_frame_us: int
    last_frame_us: int
    end_us: int  # last frame's time plus its duration
    duration_s: float  # media time of the clip (first pts to last pts plus the last duration)
    reencoded: bool
    redaction_counts: dict | None = None  # what redaction found in this clip (boxes, whole frames)
    reencoded_reason: str | None = None  # why a clip without redaction was re-encoded


@dataclass(frozen=True)
class GapRecord:
    start_us: int
    end_us: int | None  # None: still open when exported
    source: str  # "recorder" (the recorder logged it) or "footage" (no frames stored)
    reason: str


@dataclass(frozen=True)
class CameraRecord:
    camera_id: str
    clips: tuple[ClipRecord, ...]
    gaps: tuple[GapRecord, ...]
    name: str | None = None  # what people read (config keys name and place); the id where there is no name
    place: str = ""

    @property
    def label(self) -> str:
        shown = self.name or self.camera_id
        return f"{shown} ({self.place}) [{self.camera_id}]" if self.place else f"{shown} [{self.camera_id}]"


@dataclass(frozen=True)
class FileRecord:
    path: str
    sha256: str
    size_bytes: int


# ---------------------------------------------------------------- signing key


class Signer:
    """The appliance's Ed25519 signing key (created by ``vms init``, kept like the master key)."""

    def __init__(self, private_key: Ed25519PrivateKey):
        self._key = private_key
        pub = private_key.public_key()
        self.public_pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.fingerprint = public_key_fingerprint(pub)

    @classmethod
    def load(cls, path: Path, *, check_mode: bool = True) -> Signer:
        path = Path(path)
        try:
            if check_mode and stat.S_IMODE(path.stat().st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
                raise DomainError(Kind.PRECONDITION, f"signing key {path} is accessible by group or others (chmod 600)",
                                  key=N_("export.err.signing_key"), params={"path": str(path)})
            data = path.read_bytes()
        except FileNotFoundError:
            raise DomainError(
                Kind.PRECONDITION, f"signing key {path} does not exist (created by 'vms init'; restore it from backup)",
                key=N_("export.err.signing_key"), params={"path": str(path)}
            ) from None
        except PermissionError:
            raise DomainError(Kind.PRECONDITION, f"signing key {path} cannot be read by this user",
                              key=N_("export.err.signing_key"), params={"path": str(path)}) from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise DomainError(Kind.PRECONDITION, f"signing key {path} is not an unencrypted PEM private key",
                              key=N_("export.err.signing_key"), params={"path": str(path)}) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise DomainError(Kind.PRECONDITION, f"signing key {path} is not an Ed25519 key",
                              key=N_("export.err.signing_key"), params={"path": str(path)})
        return cls(key)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def public_key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, as printed by
    ``openssl pkey -pubin -in appliance-public-key.pem -outform DER | sha256sum``."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


# ---------------------------------------------------------------- manifest, sums, README


def manifest_document(
    *,
    package_id: str,
    created_us: int,
    times: Times,
    node_id: str,
    fingerprint: str,
    ticket: TicketFacts,
    window: tuple[int, int],
    cameras: list[CameraRecord],
    redaction: dict,
    files: list[FileRecord],
) -> dict:
    """The manifest as a JSON-ready dict (key order is the order people read it in)."""

    def clip(c: ClipRecord) -> dict:
        return {
            "file": c.file,
            "codec": c.codec,
            "width": c.width,
            "height": c.height,
            "fps": c.fps,
            "frames": c.frames,
            "keyframes": c.keyframes,
            "first_frame": times.point(c.first_frame_us),
            "last_frame": times.point(c.last_frame_us),
            "end": times.point(c.end_us),
            "duration_s": round(c.duration_s, 6),
            "reencoded": c.reencoded,
            **({"reencoded_reason": c.reencoded_reason} if c.reencoded_reason else {}),
            **({"redaction_counts": c.redaction_counts} if c.redaction_counts is not None else {}),
        }

    def gap(g: GapRecord) -> dict:
        return {
            "start": times.point(g.start_us),
            "end": times.point(g.end_us) if g.end_us is not None else None,
            "duration_s": round((g.end_us - g.start_us) / 1e6, 6) if g.end_us is not None else None,
            "source": g.source,
            "reason": g.reason,
        }

    def camera(c: CameraRecord) -> dict:
        return {
            "id": c.camera_id,
            "name": c.name or c.camera_id,
            "place": c.place,
            "frames": sum(x.frames for x in c.clips),
            "first_frame": times.point(c.clips[0].first_frame_us) if c.clips else None,
            "last_frame": times.point(c.clips[-1].last_frame_us) if c.clips else None,
            "clips": [clip(x) for x in c.clips],
            "gaps": [gap(g) for g in c.gaps],
        }

    return {
        "format": FORMAT,
        "package_id": package_id,
        "created": times.point(created_us),
        "timezone": times.zone_name,
        "software": {"name": SOFTWARE, "version": software_version()},
        "appliance": {"node_id": node_id, "public_key_file": PUBLIC_KEY, "public_key_sha256": fingerprint},
        "ticket": {
            "id": ticket.ticket_id,
            "incident_description": ticket.description,
            "legal_basis": ticket.legal_basis,
            "requester": ticket.requester,
            "approver": ticket.approver,
            "recipient": ticket.recipient,
        },
        "window": {"start": times.point(window[0]), "end": times.point(window[1])},
        "redaction": redaction,
        "cameras": [camera(c) for c in cameras],
        "files": [{"path": f.path, "sha256": f.sha256, "size_bytes": f.size_bytes} for f in files],
        "notes": [
            "No frame outside the window is in the package.  Where the window starts inside a group of "
            "pictures, the frames from the window start to the next keyframe are decoded and re-encoded "
            "into a clip of their own ('reencoded': true, with 'reencoded_reason'); every other clip is "
            "copied bit for bit.  At the window end, frames that could only be decoded with a frame after "
            "the end are left out.  first_frame/last_frame give the exact times (presentation order).",
            "A clip never spans a gap: footage missing for a second or more, a recorder-logged outage or a "
            "change of stream parameters starts a new clip.  Every gap inside the window is listed under "
            "'gaps': source 'recorder' as logged by the recorder, source 'footage' where no frames are stored.",
            "Clip media time t corresponds to first_frame + t (camera clock).",
            "manifest.json is signed (manifest.sig), lists the SHA-256 of every other file except the "
            "derived SHA256SUMS/.sig files; SHA256SUMS is signed too (SHA256SUMS.sig).",
        ],
    }


def encode_manifest(doc: dict) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sha256sums(files: list[FileRecord]) -> bytes:
    """GNU ``sha256sum`` text-mode lines (``HASH  PATH``)."""
    return "".join(f"{f.sha256}  {f.path}\n" for f in files).encode("ascii")


def parse_sha256sums(text: bytes) -> list[tuple[str, str]] | str:
    """``[(path, hash)]``, or a reason string when the text is not sha256sum output."""
    out = []
    try:
        lines = text.decode("ascii").splitlines()
    except UnicodeDecodeError:
        return "not ASCII text"
    for n, line in enumerate(lines, 1):
        m = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if not m:
            return f"line {n} is not 'SHA256  PATH'"
        out.append((m.group(2), m.group(1)))
    return out


def readme_text(
    *, package_id: str, ticket_id: str, times: Times, created_us: int, fingerprint: str,
    cameras: list[CameraRecord], redaction_summary: str,
) -> bytes:
    """README.txt: Danish first, then English; how to check the package on Windows, macOS and Linux.  The
    words are the domain's catalogs' (vms/locale, ``readme.*``); labels carry both languages ("Sag / Ticket")."""
    da, en = i18n.translator("da"), i18n.translator("en")

    def both(key: str, **params) -> str:
        return f"{da.format(key, params)} / {en.format(key, params)}"

    def t(us: int) -> str:
        return f"{times.point(us)['utc']}  ({times.point(us)['local']}, {times.zone_name})"

    footage = []
    for cam in cameras:
        footage.append(f"  {both('readme.camera')}: {cam.label}")
        if not cam.clips:
            footage.append(f"  {cam.label}: {both('readme.no_footage')}")
        for c in cam.clips:
            footage.append(f"  {c.file}: {c.frames} {both('readme.frames')}, {times.point(c.first_frame_us)['utc']} .. "
                           f"{times.point(c.last_frame_us)['utc']}" + (f"  ({both('readme.reencoded')})" if c.reencoded else ""))
        if cam.gaps:
            footage.append(f"  {cam.label}: {both('readme.gaps', n=len(cam.gaps))} (manifest.json, 'gaps')")
    ps_all = ("Get-Content SHA256SUMS | ForEach-Object { $h, $f = $_ -split '  ', 2; if ((Get-FileHash -Algorithm "
              "SHA256 -LiteralPath $f).Hash -eq $h) { \"OK  $f\" } else { \"FEJL/FAILED  $f\" } }")
    sig_cmds = "\n".join(f"    {c}" for c in (
        f"openssl pkeyutl -verify -pubin -inkey {PUBLIC_KEY} -rawin -in {MANIFEST} -sigfile {MANIFEST_SIG}",
        f"openssl pkeyutl -verify -pubin -inkey {PUBLIC_KEY} -rawin -in {SUMS} -sigfile {SUMS_SIG}"))
    check = {"verify_html": VERIFY_HTML, "sums": SUMS, "signature_commands": sig_cmds, "powershell_all": ps_all,
             "fingerprint_command": f"openssl pkey -pubin -in {PUBLIC_KEY} -outform DER | sha256sum"}
    title = both("readme.title")
    lines = [title, "=" * len(title), ""]
    for key, value in (("readme.package", package_id), ("readme.ticket", ticket_id), ("readme.created", t(created_us)),
                       ("readme.redaction", redaction_summary), ("readme.fingerprint", fingerprint)):
        lines.append(f"{both(key) + ':':<32}{value}")
    lines += ["", f"{da('readme.footage')} /", f"{en('readme.footage')}:", *footage, ""]
    for lang in (da, en):
        heading = lang("readme.check_heading")
        lines += [heading, "-" * len(heading), lang.format("readme.check", check), ""]
    lines += [da.format("readme.clips", {"manifest": MANIFEST}), "", en.format("readme.clips", {"manifest": MANIFEST}), ""]
    return "\n".join(lines).encode("utf-8")


def verify_html() -> bytes:
    """The offline checker shipped in every package (vms/evidence/data/verify.html)."""
    return resources.files("vms.evidence").joinpath("data", VERIFY_HTML).read_bytes()


# ---------------------------------------------------------------- writing the ZIP


class PackageZip:
    """Streams a package into ``out`` (any writable file object; seeking not needed)."""

    def __init__(self, out: BinaryIO, *, created_us: int):
        self._zf = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        t = datetime.fromtimestamp(created_us // 1_000_000, UTC)
        self._date_time = (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)
        self.files: list[FileRecord] = []

    def _info(self, name: str) -> zipfile.ZipInfo:
        if not _SAFE_NAME.match(name):
            raise ValueError(f"unsafe member name {name!r}")
        info = zipfile.ZipInfo(name, self._date_time)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def open_member(self, name: str) -> MemberWriter:
        """A member written piece by piece (size unknown in advance, hence ZIP64 fields);
        :meth:`MemberWriter.close` records its SHA-256 in :attr:`files`."""
        return MemberWriter(self, name, self._zf.open(self._info(name), "w", force_zip64=True))

    @contextmanager
    def member(self, name: str) -> Iterator[Callable[[bytes], None]]:
        """Yield a function that appends bytes to member ``name``; records its SHA-256."""
        writer = self.open_member(name)
        yield writer.write
        writer.close()

    def add(self, name: str, data: bytes) -> FileRecord:
        self._zf.writestr(self._info(name), data)
        rec = FileRecord(name, hashlib.sha256(data).hexdigest(), len(data))
        self.files.append(rec)
        return rec

    def close(self) -> None:
        self._zf.close()

    def abandon(self) -> None:
        """Forget the ZIP without writing its central directory (the output is being
        discarded); later garbage collection then writes nothing either."""
        self._zf.fp = None


class MemberWriter:
    """Appends to one ZIP member and hashes what it appends."""

    def __init__(self, pkg: PackageZip, name: str, fh):
        self.name, self._pkg, self._fh = name, pkg, fh
        self._hash, self.size_bytes = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._fh.write(data)
        self.size_bytes += len(data)

    def close(self) -> FileRecord:
        self._fh.close()
        rec = FileRecord(self.name, self._hash.hexdigest(), self.size_bytes)
        self._pkg.files.append(rec)
        return rec


def finish_package(pkg: PackageZip, signer: Signer, manifest: dict) -> bytes:
    """Add manifest, signatures and SHA256SUMS; returns the manifest bytes."""
    manifest_bytes = encode_manifest(manifest)
    pkg.add(MANIFEST, manifest_bytes)
    pkg.add(MANIFEST_SIG, signer.sign(manifest_bytes))
    sums = sha256sums(list(pkg.files))
    pkg.add(SUMS, sums)
    pkg.add(SUMS_SIG, signer.sign(sums))
    pkg.close()
    return manifest_bytes
