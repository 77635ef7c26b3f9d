"""verify.html covers the door log's CSV in Chromium: a package with doorlog/doorlog.csv beside the clip is
intact, and one changed byte in the CSV is named, from the unpacked folder and from the ZIP."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from testkit.doorlog import FAKE_CPR
from testkit.footage import ensure_signing_key, store_clip
from tests.e2e.test_verify_html import _changed_copy, _check
from tests.support.export_tools import unpack
from vms.doorlog.lookup import PassageView
from vms.evidence.doorlog_csv import PATH, DoorlogExtract
from vms.evidence.export import ExportRequest, export_package, package_store

T0 = 1_767_225_600_000_000


@pytest.fixture
def package(appliance_factory, clip_factory, tmp_path):
    app = appliance_factory([{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 7}])
    ensure_signing_key(app)
    store_clip(app, "entrance", clip_factory.get(seconds=4).path, T0)
    extract = DoorlogExtract(("hoveddør",), T0, T0 + 4_000_000, (
        PassageView(T0 + 1_000_000, "hoveddør", FAKE_CPR, "cpr"), PassageView(T0 + 2_000_000, "hoveddør", "CARD1", "card")))
    info = export_package(app, ExportRequest("T-9", "incident", "GDPR art. 6(1)(f)", "olsen", "jensen", "Politi",
                                             ("entrance",), T0, T0 + 4_000_000, doorlog=extract))
    path = tmp_path / info.filename
    path.write_bytes(b"".join(package_store(app).open(info.package_id)))
    return path, info


def test_verify_html_covers_the_doorlog_csv(browser, package, tmp_path):
    path, info = package
    assert PATH in zipfile.ZipFile(path).namelist()
    folder = unpack(path, tmp_path / "good")
    ok, text, details = _check(browser, folder / "verify.html", folder=folder)
    assert ok and info.key_fingerprint in text, details
    bad_zip = tmp_path / "changed.zip"
    _changed_copy(path, bad_zip, PATH)
    changed = unpack(bad_zip, tmp_path / "changed")
    shutil.copy(folder / "verify.html", tmp_path / "verify.html")
    for kw in ({"folder": changed}, {"zip_path": bad_zip}):
        ok, text, details = _check(browser, tmp_path / "verify.html", **kw)
        assert not ok and f"FEJL/FAILED {PATH}: er ændret / was changed" in details
