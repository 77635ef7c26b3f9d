"""The package's offline checker (verify.html) in Chromium: a good package is "intact, signed by the
appliance with fingerprint ..."; one byte changed in the video or in the manifest is named.  The page is
opened from the unpacked folder (file://) with the network blocked, as a recipient's PC would."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from testkit.footage import ensure_signing_key, store_clip
from tests.support.export_tools import openssl_verify, unpack
from vms.evidence.export import ExportRequest, export_package, package_store

T0 = 1_767_225_600_000_000


@pytest.fixture
def package(appliance_factory, clip_factory, tmp_path):
    app = appliance_factory([{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 7}])
    ensure_signing_key(app)
    store_clip(app, "entrance", clip_factory.get(seconds=4).path, T0)
    info = export_package(app, ExportRequest("T-9", "incident", "GDPR art. 6(1)(f)", "olsen", "jensen", "Politi",
                                             ("entrance",), T0, T0 + 4_000_000))
    path = tmp_path / info.filename
    path.write_bytes(b"".join(package_store(app).open(info.package_id)))
    return path, info


def _check(browser, page_path, *, folder=None, zip_path=None) -> tuple[bool, str, str]:
    page = browser.new_page(locale="en-GB")
    page.route("http*://**", lambda route: route.abort())  # nothing may leave the PC
    page.goto(page_path.as_uri())
    if folder is not None:
        page.set_input_files("#folder", folder)
    else:
        page.set_input_files("#zip", zip_path)
    page.wait_for_function("() => !document.getElementById('result').textContent.includes('Checking')",
                           timeout=20_000)
    ok = page.get_attribute("#result", "data-ok") == "true"
    return ok, page.inner_text("#result"), page.inner_text("#details")


def _changed_copy(src_zip, dst_zip, member: str) -> None:
    with zipfile.ZipFile(src_zip) as src, zipfile.ZipFile(dst_zip, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = bytearray(src.read(item))
            if item.filename == member:
                data[len(data) // 2] ^= 0x01
            dst.writestr(item.filename, bytes(data))


def test_a_good_package_is_intact_and_names_the_fingerprint(browser, package, tmp_path):
    path, info = package
    folder = unpack(path, tmp_path / "unpacked")
    assert openssl_verify(folder, "manifest.json", "manifest.sig").returncode == 0  # stock tools agree
    ok, text, details = _check(browser, folder / "verify.html", folder=folder)
    assert ok, details
    assert f"Intact, signed by the appliance with fingerprint {info.key_fingerprint}" in text
    assert f"Intakt, signeret af anlægget med fingeraftryk {info.key_fingerprint}" in text
    ok, text, _ = _check(browser, folder / "verify.html", zip_path=path)  # the ZIP itself, not unpacked
    assert ok and info.key_fingerprint in text


@pytest.mark.parametrize("member", ["clip", "manifest.json"])
def test_one_changed_byte_is_named(browser, package, tmp_path, member):
    path, _ = package
    names = zipfile.ZipFile(path).namelist()
    target = next(n for n in names if n.startswith("clips/")) if member == "clip" else member
    bad_zip = tmp_path / "changed.zip"
    _changed_copy(path, bad_zip, target)
    folder = unpack(bad_zip, tmp_path / "changed")
    shutil.copy(unpack(path, tmp_path / "good") / "verify.html", tmp_path / "verify.html")  # the checker from the good copy
    for kw in ({"folder": folder}, {"zip_path": bad_zip}):
        ok, text, details = _check(browser, tmp_path / "verify.html", **kw)
        assert not ok and "do not rely on it" in text
        assert f"FEJL/FAILED {target}: er ændret / was changed" in details
        if member == "manifest.json":
            assert "FEJL/FAILED manifest.json: signaturen passer ikke / signature does not match" in details
