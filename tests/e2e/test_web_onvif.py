"""ONVIF in the camera form, in Chromium, against a third-party ONVIF camera (ipycam on 127.0.0.1): the
administrator finds it, picks it, fetches its stream address with its user name and password, types them again
(they never come back to the page) and saves the camera; the recorder's config has the address with them."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.support.onvif import *  # noqa: F403 (fixtures)
from tests.support.onvif import ONVIF_PASSWORD, ONVIF_USER
from vms.core.config import load_config

STREAM = "rtsp://127.0.0.1:8554/video_main"


def test_admin_fills_the_camera_form_from_onvif_and_saves_it(web, browser, onvif_camera):
    page = browser.new_page()
    sign_in(page, web, "adam")
    page.goto(web.url("/admin/cameras/new"))
    page.fill("input[name=id]", "gate")
    page.fill("input[name=name]", "Port")
    page.fill("input[name=place]", "Nordsiden")
    page.fill("input[name=onvif_target]", onvif_camera.probe_target)  # one address: no multicast on loopback
    page.click("#onvif-find")
    row = page.locator(f"#onvif-devices tr[data-address='{onvif_camera.device_url}']")
    expect(row).to_contain_text("Virtual Camera")
    assert page.locator("input[name=id]").input_value() == "gate"  # what was typed stays
    row.locator("button").click()
    expect(page.locator("input[name=onvif_address]")).to_have_value(onvif_camera.device_url)

    page.fill("input[name=username]", ONVIF_USER)
    page.fill("input[name=password]", "forkert")
    page.click("#onvif-stream")
    expect(page.locator("#onvif-error")).to_contain_text("afviste brugernavn og adgangskode")
    assert page.locator("input[name=source]").input_value() == ""

    page.fill("input[name=username]", ONVIF_USER)
    page.fill("input[name=password]", ONVIF_PASSWORD)
    page.click("#onvif-stream")
    expect(page.locator("#onvif-found")).to_contain_text("Profile_Main")
    expect(page.locator("input[name=source]")).to_have_value(STREAM)
    assert page.locator("input[name=password]").input_value() == ""
    assert ONVIF_PASSWORD not in page.content() and ONVIF_USER not in page.content()
    screenshot(page, "admin-camera-onvif")

    page.fill("input[name=username]", ONVIF_USER)
    page.fill("input[name=password]", ONVIF_PASSWORD)
    page.press("input[name=password]", "Enter")  # Enter saves (it does not search again)
    page.wait_for_url("**/cameras?done=added*")
    expect(page.locator("#camera-overview tr[data-camera='gate'] .camera-name")).to_contain_text("Port")
    cam = load_config(web.app.config_path).camera("gate")
    assert cam.source == f"rtsp://{ONVIF_USER}:{ONVIF_PASSWORD}@127.0.0.1:8554/video_main"
    assert (cam.name, cam.place) == ("Port", "Nordsiden")
