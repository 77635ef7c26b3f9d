"""Evidence packages (vms/evidence.py): manifest, checksums, signatures, README and
verification, built in memory with a fresh key; every damage is named."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vms.core.errors import DomainError
from vms.evidence.package import (
    FORMAT,
    MANIFEST,
    PUBLIC_KEY,
    README,
    SUMS,
    CameraRecord,
    ClipRecord,
    GapRecord,
    PackageZip,
    Signer,
    TicketFacts,
    Times,
    finish_package,
    manifest_document,
    parse_sha256sums,
    readme_text,
)
from vms.evidence.verify import verify_package

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
TICKET = TicketFacts("T-7", "bicycle theft at the entrance", "GDPR art. 6(1)(f)", "alice", "bob", "Police")


def build(path, signer: Signer, *, clip: bytes = b"\x00\x00\x00\x18ftypmp42 fake clip bytes") -> None:
    times = Times("Europe/Copenhagen")
    rec = ClipRecord("clips/cam_01.mp4", "h264", 640, 360, "15/1", 15, 1, T0, T0 + 933_333, T0 + 1_000_000, 1.0, False)
    cams = [CameraRecord("cam", (rec,), (GapRecord(T0 + 2_000_000, T0 + 5_000_000, "footage", "no frames stored"),),
                         name="Indgang", place="Hovedindgangen")]
    with open(path, "wb") as fh:
        pkg = PackageZip(fh, created_us=T0)
        with pkg.member(rec.file) as emit:
            emit(clip[:5])
            emit(clip[5:])
        pkg.add(README, readme_text(package_id="p1", ticket_id="T-7", times=times, created_us=T0,
                                    fingerprint=signer.fingerprint, cameras=cams, redaction_summary="none"))
        pkg.add(PUBLIC_KEY, signer.public_pem)
        doc = manifest_document(package_id="p1", created_us=T0, times=times, node_id="n1",
                                fingerprint=signer.fingerprint, ticket=TICKET, window=(T0, T0 + 6_000_000),
                                cameras=cams, redaction={"applied": False}, files=list(pkg.files))
        finish_package(pkg, signer, doc)


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


@pytest.fixture
def package(tmp_path, signer):
    path = tmp_path / "p.zip"
    build(path, signer)
    return path


def members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def rezip(path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def test_good_package_verifies_and_says_what_it_checked(package, signer):
    report = verify_package(package, expected_public_key=signer.public_pem)
    assert report.ok, report.problems
    assert report.fingerprint == signer.fingerprint
    assert any("manifest.sig" in c for c in report.checked) and any("clips/cam_01.mp4" in c for c in report.checked)
    doc = report.manifest
    assert doc["format"] == FORMAT and doc["ticket"]["approver"] == "bob"
    assert [f["path"] for f in doc["files"]] == ["clips/cam_01.mp4", README, PUBLIC_KEY]
    assert doc["cameras"][0]["gaps"][0]["duration_s"] == 3.0
    assert SUMS in members(package)
    camera = doc["cameras"][0]  # the id the API uses, and what people read beside it
    assert (camera["id"], camera["name"], camera["place"]) == ("cam", "Indgang", "Hovedindgangen")
    assert "Kamera / Camera: Indgang (Hovedindgangen) [cam]" in members(package)[README].decode()


def test_manifest_times_are_utc_and_copenhagen_local(package):
    doc = json.loads(members(package)[MANIFEST])
    assert doc["window"]["start"] == {"utc": "2026-01-01T00:00:00.000000Z",
                                      "local": "2026-01-01T01:00:00.000000+01:00", "unix_us": T0}
    summer = Times("Europe/Copenhagen").point(1_782_864_000_123_456)  # 2026-07-01T00:00:00.123456Z
    assert summer["local"] == "2026-07-01T02:00:00.123456+02:00"
    assert summer["utc"] == "2026-07-01T00:00:00.123456Z"


def test_sha256sums_is_gnu_format(package):
    files = members(package)
    parsed = parse_sha256sums(files[SUMS])
    assert {p for p, _ in parsed} == set(files) - {SUMS, "SHA256SUMS.sig"}
    assert parse_sha256sums(b"nonsense\n") == "line 1 is not 'SHA256  PATH'"


@pytest.mark.parametrize("victim", ["clips/cam_01.mp4", README, PUBLIC_KEY, MANIFEST, "manifest.sig", SUMS,
                                    "SHA256SUMS.sig"])
def test_changed_byte_in_any_file_is_named(tmp_path, package, victim):
    files = members(package)
    data = bytearray(files[victim])
    data[len(data) // 2] ^= 0x01
    files[victim] = bytes(data)
    rezip(tmp_path / "bad.zip", files)
    report = verify_package(tmp_path / "bad.zip")
    assert not report.ok
    assert any(p.startswith(victim) or f"over {victim}" in p or victim in p.split(":")[0] for p in report.problems), \
        report.problems


def test_flipped_byte_inside_the_zip_is_named(tmp_path, package):
    raw = bytearray(package.read_bytes())
    at = raw.index(b"fake clip bytes")
    raw[at] ^= 0x01
    (tmp_path / "bad.zip").write_bytes(raw)
    report = verify_package(tmp_path / "bad.zip")
    assert any(p.startswith("clips/cam_01.mp4:") for p in report.problems), report.problems


def test_missing_extra_and_forged_files(tmp_path, package, signer):
    files = members(package)
    del files["clips/cam_01.mp4"]
    files["clips/extra.mp4"] = b"added later"
    rezip(tmp_path / "bad.zip", files)
    problems = verify_package(tmp_path / "bad.zip").problems
    assert "clips/cam_01.mp4: listed in manifest.json but missing from the package" in problems
    assert "clips/extra.mp4: in the package but not listed in manifest.json" in problems
    # a whole package re-signed with another key verifies on its own, but not against the expected key
    build(tmp_path / "other.zip", Signer(Ed25519PrivateKey.generate()))
    report = verify_package(tmp_path / "other.zip", expected_public_key=signer.public_pem)
    assert any("is not the expected signing key" in p for p in report.problems)


def test_unpacked_directory_verifies_too(tmp_path, package):
    with zipfile.ZipFile(package) as z:
        z.extractall(tmp_path / "x")
    assert verify_package(tmp_path / "x").ok
    (tmp_path / "x" / README).write_text("changed")
    assert any(p.startswith(README) for p in verify_package(tmp_path / "x").problems)


def test_not_a_zip(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    report = verify_package(tmp_path / "x.zip")
    assert report.problems == ["x.zip: not a readable ZIP (BadZipFile: File is not a zip file)"]


def test_unsafe_member_names_are_refused_when_writing():
    pkg = PackageZip(io.BytesIO(), created_us=T0)
    for bad in ("../evil", "/abs", "a/../b", ".hidden", "a b"):
        with pytest.raises(ValueError):
            pkg.add(bad, b"x")


def test_ticket_facts_must_be_filled():
    with pytest.raises(DomainError, match="legal_basis"):
        TicketFacts("T-1", "desc", " ", "a", "b", "c")


def test_signing_key_loading(tmp_path, signer):
    path = tmp_path / "signing.key"
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o644)
    with pytest.raises(DomainError, match="chmod 600"):
        Signer.load(path)
    path.chmod(0o600)
    loaded = Signer.load(path)
    assert loaded.sign(b"m") == key.sign(b"m")
    with pytest.raises(DomainError, match="does not exist"):
        Signer.load(tmp_path / "none")
    path.write_bytes(b"garbage")
    with pytest.raises(DomainError, match="not an unencrypted PEM"):
        Signer.load(path)
