"""Export and delivery pages beyond the main flow: the requester exporting their
own ticket, what view-only tickets show, the managers' package list, links
without a passcode, and refusals on the recipient's page (HTML, not JSON)."""

from __future__ import annotations

import zipfile

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_web_flow import file_ticket


def approve(browser, web, ticket_id: int, manager: str = "mia"):
    page = browser.new_page()
    sign_in(page, web, manager)
    page.goto(web.url(f"/tickets/{ticket_id}"))
    page.fill("#decide textarea[name=reason]", "Incident confirmed")
    page.click("#decide button[value=approve]")
    page.wait_for_url("**?done=approved")
    return page


def export(page) -> None:
    page.click("#start-export button[type=submit]")
    page.wait_for_url("**?done=export_started*")
    # web.js marks the job's row succeeded, then reloads; the package exists on the page after the reload
    expect(page.locator("#ticket-state")).to_have_attribute("data-state", "exported", timeout=60_000)
    expect(page.locator("#export article[data-package]")).to_have_count(1)


def test_requester_exports_own_ticket_but_only_managers_make_links(web, browser):
    olga = browser.new_page()
    sign_in(olga, web, "olga")
    view_id = file_ticket(olga, web, action="view")
    export_id = file_ticket(olga, web, action="export")
    approve(browser, web, view_id)
    mia = approve(browser, web, export_id)

    olga.goto(web.url(f"/tickets/{view_id}"))
    assert olga.locator("#export").count() == 0  # a view ticket has no export
    olga.goto(web.url(f"/tickets/{export_id}"))
    export(olga)
    assert olga.locator("#export article[data-package]").count() == 1
    assert olga.locator("#export form.new-link").count() == 0  # links are for managers
    assert "leder" in olga.locator("#links-by-managers").first.inner_text()  # and the page says who sends it
    assert olga.locator("#export tr[data-link]").count() == 0

    mia.goto(web.url("/exports"))
    assert mia.locator(f"#packages-table tr[data-package] a[href='/tickets/{export_id}#export']").count() == 1
    screenshot(mia, "manager-exports")


def test_link_without_passcode_and_refusals_on_the_recipient_page(web, browser):
    olga = browser.new_page()
    sign_in(olga, web, "olga")
    ticket_id = file_ticket(olga, web, action="export")
    mia = approve(browser, web, ticket_id)
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    export(mia)
    form = mia.locator("#export form.new-link")
    form.locator("input[name=recipient]").fill("SSP Aarhus")
    form.locator("input[name=max_downloads]").fill("1")
    form.locator("select[name=passcode_mode]").select_option("none")
    form.locator("button[type=submit]").click()
    mia.wait_for_selector("#link-url")
    url = mia.locator("#link-url").inner_text()
    assert mia.locator("#link-passcode").count() == 0

    bad = mia.locator("#export form.new-link")
    bad.locator("input[name=recipient]").fill("Police")
    bad.locator("input[name=max_downloads]").fill("many")
    bad.locator("button[type=submit]").click()
    assert "Downloads: et helt tal" in mia.locator("#page-error").inner_text()  # Danish, naming the field

    recipient = browser.new_page()
    recipient.goto(url + "?lang=en")
    assert recipient.locator("h1").inner_text() == "Evidence package"
    assert recipient.locator("#download-form input[name=passcode]").count() == 0
    with recipient.expect_download() as download:
        recipient.click("#download-form button[type=submit]")
    with zipfile.ZipFile(download.value.path()) as z:
        assert "manifest.json" in z.namelist()

    # one download allowed: the page comes back by itself saying when it was downloaded, that the link is used
    # up, and keeps the instructions for checking the package; no download form, no error
    expect(recipient.locator("#downloaded")).to_contain_text("used as many times")
    assert recipient.locator("#downloads-left").inner_text() == "0"
    assert recipient.locator("#verify-howto").count() == 1 and recipient.locator("#download-form").count() == 0
    response = recipient.goto(url)  # opened again later: the same, answered 410
    assert response.status == 410
    assert response.headers["content-type"].startswith("text/html")
    assert recipient.locator("#link-error").count() == 0 and recipient.locator("#downloaded").count() == 1
    assert recipient.locator("#verify-howto").count() == 1

    response = recipient.goto(web.url("/d/" + "A" * 43))  # a guessed link
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert recipient.locator("#download-form").count() == 0
