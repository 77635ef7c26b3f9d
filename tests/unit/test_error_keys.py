"""Every domain error a person can meet carries a message id (``key=N_(...)``), so pages and the API's
``localized_detail`` say it in Danish; tests/unit/test_catalogs.py checks that each such key has a Danish and an
English text.  The few errors without a key are listed here with the reason nobody reads them on a page."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ERRORS = {"DomainError", "CameraFormError", "LinkGone"}  # LockedOut has a key of its own by default
#: owned by another part (the CLI and the notifications have catalogs of their own, vms/locale)
ELSEWHERE = ("vms/cli/", "vms/notify/")
#: file -> how many raise sites may go without a key, and why
WITHOUT_KEY = {
    "vms/archive/bucket.py": (5, "the archive credentials file, read by vms serve and the CLI at start"),
    "vms/core/service_lock.py": (1, "CLI commands that need the services stopped"),
    "vms/ops/tls.py": (3, "vms tls self-signed (CLI)"),
    "vms/retention/holds.py": (5, "vms hold (CLI)"),
    "vms/ops/cluster.py": (2, "node to node"),
    "api/routes/internal.py": (2, "node to node"),
    "vms/doorlog/ingest.py": (1, "a door controller's token (a machine)"),
    "api/routes/doorlog.py": (2, "a door controller's upload (a machine) and its line report"),
    "vms/evidence/jobs.py": (1, "a job id made twice (random ids)"),
    "vms/evidence/packages.py": (1, "a package id made twice (random ids)"),
    "vms/evidence/package.py": (1, "a ticket field of the package (checked before, by the ticket)"),
    "vms/evidence/download.py": (1, "the address lock-out, written to the audit trail only"),
    "vms/evidence/release.py": (1, "a Range outside a clip (the player's request)"),
    "vms/ops/camera_admin.py": (1, "the config check's own words as `vms config check` prints them, after the camera "
                                   "form's Danish introduction (camera_form.refused)"),
}


def keyless_sites(root: Path = ROOT) -> Counter:
    found = Counter()
    for base in ("vms", "api"):
        for path in sorted((root / base).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel.startswith(ELSEWHERE):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    if name in ERRORS and not any(k.arg in ("key", None) for k in node.keywords):
                        found[rel] += 1
    return found


def test_every_domain_error_a_person_meets_has_a_message_id():
    found = keyless_sites()
    unexpected = {f: n for f, n in found.items() if n > WITHOUT_KEY.get(f, (0, ""))[0]}
    assert unexpected == {}, ("domain errors without key=N_(...) (add the key and its Danish and English texts, "
                              f"docs/design/i18n.md): {unexpected}")


def test_the_scan_sees_a_keyless_error(tmp_path):
    """The scan is not blind: a module with a keyless DomainError is counted."""
    (tmp_path / "vms").mkdir()
    (tmp_path / "api").mkdir()
    (tmp_path / "vms" / "m.py").write_text('raise DomainError(Kind.INVALID, "no key")\n'
                                           'raise DomainError(Kind.INVALID, "key", key=N_("a.b"))\n')
    assert keyless_sites(tmp_path) == Counter({"vms/m.py": 1})
