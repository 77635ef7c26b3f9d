"""The whole path through the browser: an operator files an export ticket, a
second (manager) user approves it, the operator plays the footage in a <video>
element (it buffers and its current time advances), the manager exports it
(progress bar), makes a delivery link with a passcode, the recipient (no
account) downloads the package through the link and it verifies, the manager
revokes the link, and the auditor finds each of those steps in the audit trail."""

from __future__ import annotations

import subprocess
import time
import zipfile

from playwright.sync_api import expect

from api.web.render import input_local
from tests.e2e.conftest import screenshot, sign_in
from vms.evidence.verify import verify_package


def file_ticket(page, web, *, action: str = "view", description: str = "Bicycle stolen by the entrance") -> int:
    f = web.footage
    page.goto(web.url("/tickets/new"))
    page.check("input[name=cameras][value=entrance]")
    page.fill("input[name=start]", input_local(web.app, f.first_us - 60_000_000))
    page.fill("input[name=end]", input_local(web.app, f.last_us + 120_000_000))
    page.fill("textarea[name=description]", description)
    page.fill("textarea[name=purpose]", "Identify the thief for the police report")
    page.fill("input[name=legal_basis]", "GDPR art. 6(1)(f); TV-overvågningsloven § 4")
    page.select_option("select[name=action]", action)
    page.select_option("select[name=recipient]", "police")
    page.click("#new-ticket button[type=submit]")
    page.wait_for_url("**/tickets/*?done=filed")
    return int(page.url.split("/tickets/")[1].split("?")[0])


def test_ticket_to_delivery_in_the_browser(web, browser, tmp_path):
    olga = browser.new_page()
    sign_in(olga, web, "olga")
    assert olga.url.endswith("/tickets")
    ticket_id = file_ticket(olga, web, action="export")
    olga.goto(web.url("/tickets"))
    assert olga.locator(f"tr[data-ticket='{ticket_id}'] .state").inner_text() == "anmodet"
    screenshot(olga, "operator-tickets")
    olga.goto(web.url(f"/tickets/{ticket_id}"))
    assert olga.get_attribute("#ticket-state", "data-state") == "requested"
    assert olga.locator("#player").count() == 0  # nothing to see before approval

    mia = browser.new_page()
    sign_in(mia, web, "mia")
    assert mia.url.endswith("/queue")
    assert mia.locator(f"article[data-ticket='{ticket_id}']").count() == 1
    screenshot(mia, "manager-queue")
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    mia.fill("#decide textarea[name=reason]", "Theft confirmed by the librarian on duty")
    mia.click("#decide button[value=approve]")
    mia.wait_for_url("**?done=approved")
    assert mia.get_attribute("#ticket-state", "data-state") == "approved"

    olga.goto(web.url(f"/tickets/{ticket_id}"))
    assert olga.get_attribute("#ticket-state", "data-state") == "approved"
    timeline = olga.locator(".camera-timeline[data-camera=entrance]")
    assert timeline.locator(".bar.recorded").count() == 2
    assert timeline.locator(".bar.gap").count() == 1
    # the continuous player plays the first recording, and a click on the second seeks there without a page load
    olga.click("#cp-play")
    clock = olga.locator("#cp-clock")
    wait_until(clock, f"c => Number(c.dataset.us) > {web.footage.first_us + 1_000_000}")
    screenshot(olga, "operator-ticket-playback")
    olga.locator(".camera-timeline[data-camera=entrance] .bar.recorded").nth(1).click()
    wait_until(clock, f"c => Number(c.dataset.us) >= {web.footage.gap_end_us}")
    assert f"/tickets/{ticket_id}" in olga.url and "at=" not in olga.url

    # the manager exports: a job with a progress bar that the page follows until the package exists
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    mia.fill("#start-export input[name=recipient_name]", "Politi Midt- og Vestjylland")
    mia.click("#start-export button[type=submit]")
    mia.wait_for_url("**?done=export_started*")
    assert mia.locator("#export-jobs progress").count() == 1
    # web.js marks the row succeeded, then reloads the page; wait for the state after the reload, not the row
    expect(mia.locator("#ticket-state")).to_have_attribute("data-state", "exported", timeout=60_000)
    expect(mia.locator("#export-jobs tr[data-state=succeeded] progress")).to_have_attribute("value", "100.0")
    package = mia.locator("#export article[data-package]")
    assert package.count() == 1
    package.locator("input[name=recipient]").fill("Politi, sag 4711 (J. Hansen)")
    package.locator("select[name=passcode_mode]").select_option("generate")
    package.locator("button", has_text="Opret link").click()
    mia.wait_for_selector("#link-url")
    url = mia.locator("#link-url").inner_text()
    passcode = mia.locator("#link-passcode").inner_text()
    assert url.startswith(web.url("/d/")) and len(passcode) >= 8
    mia.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web.base)
    mia.click("button[data-copy=link-url]")
    expect(mia.locator("button[data-copy=link-url]")).to_have_text("Kopieret")  # the clipboard write is async
    assert mia.evaluate("() => navigator.clipboard.readText()") == url
    assert mia.get_attribute("#ticket-state", "data-state") == "exported"  # delivered once the recipient downloads
    screenshot(mia, "manager-export-and-link")

    # the recipient has no account: the link asks for the passcode and offers the package
    recipient = browser.new_page()
    response = recipient.goto(url)
    assert response.status == 200
    assert recipient.locator("#download-form input[name=passcode]").count() == 1
    assert "openssl pkeyutl -verify" in recipient.locator("#verify-howto").inner_text()
    screenshot(recipient, "recipient-link")
    recipient.fill("#download-form input[name=passcode]", "not the passcode")
    recipient.click("#download-form button[type=submit]")
    assert recipient.locator("#link-error").get_attribute("data-status") == "403"
    recipient.fill("#download-form input[name=passcode]", passcode)
    with recipient.expect_download() as download:
        recipient.click("#download-form button[type=submit]")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.endswith(".zip")
    report = verify_package(saved)
    assert report.ok, report
    with zipfile.ZipFile(saved) as z:
        z.extractall(tmp_path / "unpacked")
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path / "unpacked", capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr

    # the manager revokes the link; the recipient's page then says so
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    assert mia.get_attribute("#ticket-state", "data-state") == "delivered"
    mia.locator("#export tr[data-link] button", has_text="Tilbagekald").click()
    mia.wait_for_url("**?done=link_revoked*")
    assert mia.locator("#export tr[data-link]").get_attribute("data-state") == "revoked"
    response = recipient.goto(url)
    assert response.status == 410
    assert "tilbagekaldt" in recipient.locator("#link-error").inner_text()  # in Danish, the page's language

    aud = browser.new_page()
    sign_in(aud, web, "aud")
    aud.goto(web.url(f"/audit?ticket={ticket_id}"))
    steps = audit_steps(aud)
    assert ("ticket.file", "olga", "ok") in steps
    assert ("ticket.approve", "mia", "ok") in steps
    assert sum(1 for s in steps if s == ("footage.play", "olga", "ok")) == 1  # one play, both recordings
    assert not any(s[0] == "footage.play" and s[1] == "mia" for s in steps)  # showing the page is no play
    assert ("export.start", "mia", "ok") in steps
    assert ("ticket.exported", "mia", "ok") in steps
    assert ("delivery.create", "mia", "ok") in steps
    assert ("delivery.revoke", "mia", "ok") in steps
    downloads = [s[2] for s in steps if s[0] == "delivery.download"]
    assert downloads == ["refused: the passcode is wrong", "ok"]  # the wrong passcode, then the one download
    screenshot(aud, "auditor-audit-trail")


def wait_until(locator, predicate: str, timeout_s: float = 20.0) -> None:
    """Poll a JS predicate on an element (page.wait_for_function would need 'unsafe-eval',
    which the pages' Content-Security-Policy refuses)."""
    deadline = time.monotonic() + timeout_s
    while not locator.evaluate(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"{predicate} still false after {timeout_s} s: "
                                 f"{locator.evaluate('v => [v.readyState, v.currentTime, v.error && v.error.message]')}")
        time.sleep(0.1)


def audit_steps(page) -> list[tuple[str, str, str]]:
    """(action, actor, outcome) of the rows on an audit page."""
    return [tuple(r) for r in page.locator("#audit-table tbody tr[data-action]").evaluate_all(
        "rows => rows.map(r => [r.dataset.action, r.dataset.actor, r.children[8].innerText])")]
