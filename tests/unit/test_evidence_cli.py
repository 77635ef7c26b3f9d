"""`vms export verify` in process (the end-to-end runs are in tests/integration/test_export*.py),
and the stock-tool helper's CI rule: a missing tool fails under CI=true."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import tests.support.fixtures as fixtures
from tests.support.export_tools import tool
from tests.unit.test_evidence import build
from vms.cli import main
from vms.evidence.package import Signer


@pytest.fixture
def package(tmp_path):
    signer = Signer(Ed25519PrivateKey.generate())
    build(tmp_path / "p.zip", signer)
    (tmp_path / "key.pem").write_bytes(signer.public_pem)
    return tmp_path / "p.zip", signer


def test_verify_ok_with_expected_key(package, tmp_path, capsys, monkeypatch):
    path, signer = package
    monkeypatch.setenv("VMS_LANG", "en")
    assert main(["export", "verify", str(path), "--public-key", str(tmp_path / "key.pem")]) == 0
    assert main(["export", "verify", str(path), "--fingerprint", signer.fingerprint.upper()]) == 0
    out = capsys.readouterr().out
    assert "OK, every file matches the signed manifest" in out and "approved by bob" in out
    monkeypatch.setenv("VMS_LANG", "da")  # what a Danish recipient (police, SSP) reads
    assert main(["export", "verify", str(path), "--fingerprint", signer.fingerprint]) == 0
    out = capsys.readouterr().out
    assert "OK, alle filer stemmer med det signerede manifest" in out and "godkendt af bob" in out


def test_verify_names_failures_and_exit_codes(package, tmp_path, capsys, monkeypatch):
    path, _ = package
    monkeypatch.setenv("VMS_LANG", "en")
    assert main(["export", "verify", str(path), "--fingerprint", "ab" * 32]) == 1
    assert "FAIL  appliance-public-key.pem: fingerprint" in capsys.readouterr().err
    assert main(["export", "verify", str(tmp_path / "none.zip")]) == 3
    assert "no such package" in capsys.readouterr().err
    assert main(["export", "verify", str(path), "--fingerprint", "xyz"]) == 2


def test_missing_tool_fails_under_ci(monkeypatch):
    monkeypatch.setattr(fixtures, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        tool("no-such-tool-for-evidence")
    monkeypatch.setattr(fixtures, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception):
        tool("no-such-tool-for-evidence")


def test_a_danish_recipient_reads_every_line_in_danish(package, tmp_path, capsys, monkeypatch):
    import zipfile

    path, signer = package
    monkeypatch.setenv("VMS_LANG", "da")
    assert main(["export", "verify", str(path), "--fingerprint", signer.fingerprint]) == 0
    out = capsys.readouterr().out
    assert "signaturen over manifest.json er bekræftet" in out and "SHA-256 passer med manifest.json" in out
    assert "fingeraftrykket er det forventede" in out and "verified" not in out and "matches" not in out
    changed = tmp_path / "changed.zip"  # one byte of one file changed, the listings left as they were
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(changed, "w") as dst:
        victim = next(n for n in src.namelist() if not n.endswith((".json", ".sig", ".pem", ".txt", ".html")))
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info, (bytes([data[0] ^ 1]) + data[1:]) if info.filename == victim else data)
    assert main(["export", "verify", str(changed), "--fingerprint", "ab" * 32]) == 1
    err = capsys.readouterr().err
    assert f"FEJL  {victim}: SHA-256 passer ikke med manifest.json (forventet " in err
    assert "FEJL  appliance-public-key.pem: fingeraftrykket " in err and "er ikke det forventede" in err
    assert "FAIL" not in err and "does not match" not in err
