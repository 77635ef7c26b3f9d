"""The recipient's page before and after a download, in Chromium: a wrong passcode keeps the link's facts, the
form and the instructions; the download itself brings the page back by itself without the old error, saying
when the package was downloaded and how many downloads are left, with the instructions still there (also on a
later visit and after the last download); the ticket becomes "delivered" only then."""

from __future__ import annotations

import zipfile

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.walk import export_ticket
from vms.evidence.verify import verify_package


def _instructions_kept(page) -> None:
    howto = page.locator("#verify-howto").inner_text()
    for step in ("verify.html", "Get-FileHash", "certutil -hashfile", "shasum -a 256 -c SHA256SUMS",
                 "sha256sum -c SHA256SUMS", "openssl pkeyutl -verify"):
        assert step in howto, step


def test_the_recipients_page_keeps_its_state_and_instructions(web, browser, tmp_path):
    env, f = web.env, web.footage
    ticket_id = env.file_ticket("olga", action="export", start_us=f.first_us - 60_000_000,
                                end_us=f.last_us + 60_000_000)["id"]
    env.approve(ticket_id, "mia")
    package_id = export_ticket(env, "olga", ticket_id)
    r = env.client("mia").post(f"/api/packages/{package_id}/deliveries",
                               json={"recipient": "Politi, sag 4711", "passcode": "sent by phone", "max_downloads": 2})
    assert r.status_code == 201, r.text
    url = web.url("/d/" + r.json()["token"])  # the API client's address is not the served one
    mia = browser.new_page()
    sign_in(mia, web, "mia")
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    assert mia.get_attribute("#ticket-state", "data-state") == "exported"  # a link alone is no delivery

    page = browser.new_page()
    assert page.goto(url).status == 200
    assert page.locator("#last-download").inner_text() == "endnu ikke"
    assert page.locator("#downloads-left").inner_text() == "2"
    _instructions_kept(page)

    # a wrong passcode: the refusal, and everything else stays
    page.fill("#download-form input[name=passcode]", "a wrong guess")
    with page.expect_navigation():
        page.click("#download-form button[type=submit]")
    assert page.locator("#link-error").get_attribute("data-status") == "403"
    assert page.locator("#link-error").inner_text() == "Adgangskoden er forkert. Prøv igen med den, afsenderen gav dig."
    assert page.locator("#link-facts").count() == 1 and page.locator("#downloads-left").inner_text() == "2"
    assert page.locator("#download-form input[name=passcode]").count() == 1
    _instructions_kept(page)

    # the right one: the download, then the page by itself: no stale error, when, downloads left, instructions
    page.fill("#download-form input[name=passcode]", "sent by phone")
    with page.expect_download() as download:
        page.click("#download-form button[type=submit]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert verify_package(saved).ok
    expect(page.locator("#downloaded")).to_have_count(1)
    assert page.locator("#link-error").count() == 0
    assert page.locator("#downloads-left").inner_text() == "1"
    when = page.locator("#last-download").inner_text()
    assert when != "endnu ikke" and when[:16] in page.locator("#downloaded").inner_text()
    assert "1 gang(e) mere" in page.locator("#downloaded").inner_text()
    _instructions_kept(page)
    screenshot(page, "recipient-after-download")

    mia.reload()
    assert mia.get_attribute("#ticket-state", "data-state") == "delivered"  # now it is delivered
    assert mia.locator("tr[data-link] td").nth(2).inner_text().startswith("1 / 2")

    later = browser.new_page()  # the same link opened again later: the state is the appliance's, not the tab's
    assert later.goto(url).status == 200
    assert later.locator("#last-download").inner_text() == when and later.locator("#link-error").count() == 0
    _instructions_kept(later)

    # the last download: the page says the link is used up and keeps the instructions; no form, no error
    later.fill("#download-form input[name=passcode]", "sent by phone")
    with later.expect_download() as last:
        later.click("#download-form button[type=submit]")
    with zipfile.ZipFile(last.value.path()) as z:
        assert "verify.html" in z.namelist() and "README.txt" in z.namelist()
    expect(later.locator("#downloaded")).to_contain_text("brugt det antal gange")
    assert later.locator("#downloads-left").inner_text() == "0"
    assert later.locator("#download-form").count() == 0 and later.locator("#link-error").count() == 0
    _instructions_kept(later)
