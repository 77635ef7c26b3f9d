"""Verifying an evidence package (a ZIP or its unpacked folder): every hash, both signatures, the file lists.

Used by ``vms export verify`` (for recipients, no config needed) and the tests.  Each problem names its
file; nothing here logs, and no message contains key bytes or footage.  The format is in
:mod:`vms.evidence.package`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vms.core.i18n import N_
from vms.evidence.package import (
    _SAFE_NAME,
    DERIVED,
    FORMAT,
    MANIFEST,
    MANIFEST_SIG,
    PUBLIC_KEY,
    SUMS,
    SUMS_SIG,
    parse_sha256sums,
    public_key_fingerprint,
)

_READ_BYTES = 1 << 20


class Line(str):
    """One line of the report: its English text (the ``str`` itself, as ``--json``, logs and scripts read it) with
    the message id and params it is said with to people (``verify.*`` in the ``vms`` catalog)."""

    key: str
    params: dict

    def __new__(cls, key: str, english: str, /, **params):
        line = super().__new__(cls, english)
        line.key, line.params = key, params
        return line


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    manifest: dict | None = None
    fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class _Source:
    """Members of a package, from a ZIP or from an unpacked directory."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = None if path.is_dir() else zipfile.ZipFile(path)

    def names(self) -> list[str]:
        if self._zip is not None:
            return [i.filename for i in self._zip.infolist() if not i.is_dir()]
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file())

    def chunks(self, name: str) -> Iterator[bytes]:
        fh = self._zip.open(name) if self._zip is not None else open(self.path / name, "rb")
        with fh:
            while chunk := fh.read(_READ_BYTES):
                yield chunk

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def verify_package(path: Path | str, *, expected_public_key: bytes | None = None) -> VerifyReport:
    """Check every hash, both signatures and the file lists; each problem names its file."""
    report = VerifyReport()
    path = Path(path)
    try:
        src = _Source(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(Line(N_("verify.not_zip"), f"{path.name}: not a readable ZIP ({exc.__class__.__name__}: {exc})",
                                    file=path.name, error=f"{exc.__class__.__name__}: {exc}"))
        return report
    try:
        _verify(src, report, expected_public_key)
    finally:
        src.close()
    return report


def _digests(src: _Source, names: list[str], report: VerifyReport) -> dict[str, tuple[str, int]]:
    out = {}
    for name in names:
        h, size = hashlib.sha256(), 0
        try:
            for chunk in src.chunks(name):
                h.update(chunk)
                size += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            report.problems.append(Line(N_("verify.damaged"), f"{name}: cannot be read from the package, it is damaged ({exc})",
                                        file=name, error=str(exc)))
            continue
        out[name] = (h.hexdigest(), size)
    return out


def _load_public_key(src: _Source, names: set[str], report: VerifyReport) -> Ed25519PublicKey | None:
    if PUBLIC_KEY not in names:
        return None
    try:
        key = serialization.load_pem_public_key(src.read(PUBLIC_KEY))
    except (ValueError, TypeError, zipfile.BadZipFile, OSError):
        report.problems.append(Line(N_("verify.key_unreadable"), f"{PUBLIC_KEY}: not a readable PEM public key", file=PUBLIC_KEY))
        return None
    if not isinstance(key, Ed25519PublicKey):
        report.problems.append(Line(N_("verify.key_not_ed25519"), f"{PUBLIC_KEY}: not an Ed25519 public key", file=PUBLIC_KEY))
        return None
    report.fingerprint = public_key_fingerprint(key)
    return key


def _read_optional(src: _Source, name: str, names: set[str]) -> bytes | None:
    if name not in names:
        return None
    try:
        return src.read(name)
    except (zipfile.BadZipFile, OSError, EOFError):
        return None  # reported by _digests


def _check_signature(key: Ed25519PublicKey, src: _Source, data_name: str, sig_name: str, report: VerifyReport) -> bytes | None:
    try:
        data, sig = src.read(data_name), src.read(sig_name)
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(Line(N_("verify.sig_damaged"), f"{data_name}/{sig_name}: damaged in the package ({exc})",
                                    data=data_name, sig=sig_name, error=str(exc)))
        return None
    try:
        key.verify(sig, data)
    except InvalidSignature:
        report.problems.append(Line(N_("verify.sig_bad"), f"{sig_name}: signature does not verify over {data_name} with {PUBLIC_KEY}",
                                    sig=sig_name, data=data_name, key=PUBLIC_KEY))
        return None
    report.checked.append(Line(N_("verify.sig_ok"), f"{sig_name}: signature over {data_name} verified", sig=sig_name, data=data_name))
    return data


def _verify(src: _Source, report: VerifyReport, expected_public_key: bytes | None) -> None:
    all_names = src.names()
    names = set(all_names)
    for name in sorted({n for n in all_names if all_names.count(n) > 1}):
        report.problems.append(Line(N_("verify.duplicate"), f"{name}: appears more than once in the package", file=name))
    for name in sorted(names):
        if not _SAFE_NAME.match(name):
            report.problems.append(Line(N_("verify.unsafe_name"), f"{name}: unsafe file name in the package", file=name))
    for required in (MANIFEST, MANIFEST_SIG, PUBLIC_KEY, SUMS, SUMS_SIG):
        if required not in names:
            report.problems.append(Line(N_("verify.missing"), f"{required}: missing from the package", file=required))
    key = _load_public_key(src, names, report)
    if key is not None and expected_public_key is not None:
        try:
            expected = serialization.load_pem_public_key(expected_public_key)
        except (ValueError, TypeError):
            report.problems.append(Line(N_("verify.expected_key_unreadable"), "expected public key: not a readable PEM public key"))
        else:
            if public_key_fingerprint(expected) != report.fingerprint:
                report.problems.append(Line(N_("verify.not_expected_key"), f"{PUBLIC_KEY}: is not the expected signing key "
                                                                    f"(fingerprint {report.fingerprint})",
                                            file=PUBLIC_KEY, fingerprint=report.fingerprint))
            else:
                report.checked.append(Line(N_("verify.expected_key_ok"), f"{PUBLIC_KEY}: is the expected signing key", file=PUBLIC_KEY))
    if key is not None and {MANIFEST, MANIFEST_SIG} <= names:
        _check_signature(key, src, MANIFEST, MANIFEST_SIG, report)
    if key is not None and {SUMS, SUMS_SIG} <= names:
        _check_signature(key, src, SUMS, SUMS_SIG, report)
    digests = _digests(src, sorted(names), report)
    # the listings are compared even when their signature failed: that names the changed file
    # (the package fails either way; an unsigned listing proves nothing by itself)
    manifest_bytes = _read_optional(src, MANIFEST, names)
    sums_bytes = _read_optional(src, SUMS, names)
    if manifest_bytes is not None:
        _check_manifest(manifest_bytes, names, digests, report)
    if sums_bytes is not None:
        _check_sums(sums_bytes, names, digests, report)


def _check_manifest(data: bytes, names: set[str], digests: dict, report: VerifyReport) -> None:
    try:
        doc = json.loads(data)
        listed = {f["path"]: (f["sha256"], int(f["size_bytes"])) for f in doc["files"]}
    except (ValueError, KeyError, TypeError):
        report.problems.append(Line(N_("verify.manifest_invalid"), f"{MANIFEST}: not a valid manifest (JSON with a 'files' list)",
                                    file=MANIFEST))
        return
    report.manifest = doc
    if doc.get("format") != FORMAT:
        report.problems.append(Line(N_("verify.manifest_format"), f"{MANIFEST}: format {doc.get('format')!r} is not {FORMAT!r}",
                                    file=MANIFEST, found=str(doc.get("format")), expected=FORMAT))
    for name, (sha, size) in sorted(listed.items()):
        if name not in names:
            report.problems.append(Line(N_("verify.listed_missing"), f"{name}: listed in {MANIFEST} but missing from the package",
                                        file=name, listing=MANIFEST))
        elif name in digests and digests[name][0] != sha:
            report.problems.append(Line(N_("verify.sha_mismatch_found"), f"{name}: SHA-256 does not match {MANIFEST} (expected {sha}, "
                                        f"found {digests[name][0]})", file=name, listing=MANIFEST, expected=sha,
                                        found=digests[name][0]))
        elif name in digests and digests[name][1] != size:
            report.problems.append(Line(N_("verify.size_mismatch"), f"{name}: size {digests[name][1]} bytes does not match {MANIFEST} "
                                        f"({size})", file=name, found=digests[name][1], listing=MANIFEST, expected=size))
        elif name in digests:
            report.checked.append(Line(N_("verify.sha_ok"), f"{name}: SHA-256 matches {MANIFEST}", file=name, listing=MANIFEST))
    for name in sorted(names - set(listed) - set(DERIVED)):
        report.problems.append(Line(N_("verify.unlisted"), f"{name}: in the package but not listed in {MANIFEST}", file=name,
                                    listing=MANIFEST))


def _check_sums(data: bytes, names: set[str], digests: dict, report: VerifyReport) -> None:
    parsed = parse_sha256sums(data)
    if isinstance(parsed, str):
        report.problems.append(Line(N_("verify.sums_bad"), f"{SUMS}: {parsed}", file=SUMS, problem=parsed))
        return
    listed = dict(parsed)
    for name, sha in parsed:
        if name not in names:
            report.problems.append(Line(N_("verify.listed_missing"), f"{name}: listed in {SUMS} but missing from the package",
                                        file=name, listing=SUMS))
        elif name in digests and digests[name][0] != sha:
            report.problems.append(Line(N_("verify.sha_mismatch"), f"{name}: SHA-256 does not match {SUMS}", file=name, listing=SUMS))
    for name in sorted(names - set(listed) - {SUMS, SUMS_SIG}):
        report.problems.append(Line(N_("verify.unlisted"), f"{name}: in the package but not listed in {SUMS}", file=name,
                                    listing=SUMS))
    if all(name in digests and digests[name][0] == sha for name, sha in parsed):
        report.checked.append(Line(N_("verify.sums_ok"), f"{SUMS}: all {len(parsed)} files match", file=SUMS, n=len(parsed)))

