"""Pages per role in the browser: sign-in redirects, the four-eyes refusal on
the page, the auditor's and the administrator's pages, language switching."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.appliance import stream_info, synthetic_packets
from testkit.footage import store_packets
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_web_flow import file_ticket

DAY_US = 86_400_000_000


@pytest.mark.parametrize("path", ["/", "/tickets", "/tickets/new", "/tickets/1", "/queue", "/audit",
                                  "/audit/verify", "/retention", "/deletions", "/admin", "/admin/users",
                                  "/password"])
def test_signed_out_user_is_sent_to_sign_in(web, browser, path):
    page = browser.new_page()
    response = page.goto(web.url(path))
    assert response.status == 200
    assert page.url.split("?")[0] == web.url("/signin")
    assert page.locator("form[action='/signin']").count() == 1


def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_the_session(web, browser):
    page = browser.new_page()
    page.goto(web.url("/audit/verify"))
    page.fill("input[name=name]", "aud")
    page.fill("input[name=password]", "wrong password here")
    page.click("form[action='/signin'] button[type=submit]")
    assert page.locator(".error").inner_text().startswith("Brugernavnet eller adgangskoden er forkert, eller kontoen")
    sign_in(page, web, "aud", next_path="/audit/verify")
    assert page.url == web.url("/audit/verify")
    page.click("header form[action='/signout'] button")
    page.wait_for_url("**/signin")
    page.goto(web.url("/audit"))
    assert page.url.startswith(web.url("/signin"))


def test_a_page_for_another_role_says_why(web, browser):
    page = browser.new_page()
    sign_in(page, web, "olga")
    response = page.goto(web.url("/audit"))
    assert response.status == 403
    assert "revisor" in page.locator(".error").inner_text()
    assert "operatør" in page.locator(".error").inner_text()


def test_self_approval_is_refused_on_the_page(web, browser):
    mia = browser.new_page()
    sign_in(mia, web, "mia")
    ticket_id = file_ticket(mia, web, description="Broken window in the hall, filed by a manager")
    # the policy refuses her own decision, so the page offers no decide form and says who decides instead
    assert "fire-øjne" in mia.locator("#four-eyes").inner_text().lower() or \
        "four-eyes" in mia.locator("#four-eyes").inner_text()
    assert mia.locator("#decide").count() == 0
    assert mia.get_attribute("#ticket-state", "data-state") == "requested"
    # and a form posted anyway (an old tab, a crafted request) is refused by the same rule
    mia.evaluate("""([id, csrf]) => { const f = document.createElement('form'); f.method = 'post';
        f.action = `/tickets/${id}/decide`;
        for (const [k, v] of [['csrf_token', csrf], ['decision', 'approve'], ['reason', 'I saw it myself']]) {
            const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }
        document.body.appendChild(f); f.submit(); }""",
                 [ticket_id, mia.locator("input[name=csrf_token]").first.get_attribute("value")])
    expect(mia.locator("#page-error")).to_contain_text("en anden leder skal godkende eller afvise den")  # the policy's refusal, in Danish
    assert mia.get_attribute("#ticket-state", "data-state") == "requested"
    screenshot(mia, "manager-self-approval-refused")

    other = browser.new_page()
    sign_in(other, web, "max")
    other.goto(web.url(f"/tickets/{ticket_id}"))
    assert other.locator("#four-eyes").count() == 0
    other.fill("#decide textarea[name=reason]", "Confirmed by the caretaker")
    other.click("#decide button[value=deny]")
    other.wait_for_url("**?done=denied")
    assert other.get_attribute("#ticket-state", "data-state") == "denied"
    assert "Confirmed by the caretaker" in other.locator("#decision").inner_text()


def test_ticket_form_errors_are_shown_on_the_page(web, browser):
    page = browser.new_page()
    sign_in(page, web, "olga")
    page.goto(web.url("/tickets/new"))
    page.check("input[name=cameras][value=entrance]")
    page.fill("input[name=start]", "2025-12-31T23:00")
    page.fill("input[name=end]", "2025-12-31T22:00")  # reversed
    page.fill("textarea[name=description]", "x")
    page.fill("textarea[name=purpose]", "y")
    page.fill("input[name=legal_basis]", "z")
    page.click("#new-ticket button[type=submit]")
    assert page.locator(".error").inner_text() == "Til: tidspunktet skal ligge efter Fra."  # the policy's rule, in Danish
    assert page.input_value("textarea[name=description]") == "x"  # nothing typed is lost


def test_language_switch(web, browser):
    page = browser.new_page()
    sign_in(page, web, "olga")
    assert page.locator("header nav").inner_text().startswith("Mine sager")
    with page.expect_navigation():
        page.click("header .langs a[lang=en]")
    assert page.url == web.url("/tickets")
    assert page.locator("header nav").inner_text().startswith("My tickets")
    assert page.locator("html").get_attribute("lang") == "en"


def test_auditor_pages(web, browser):
    app, clock = web.app, web.clock
    # footage older than the entrance camera's 14 days that nobody holds: a violation until the janitor runs
    old = synthetic_packets(clock.now_us() - 15 * DAY_US, 4)
    store_packets(app, "entrance", stream_info(), old)
    page = browser.new_page()
    sign_in(page, web, "aud")
    assert page.url == web.url("/audit")
    page.goto(web.url("/retention"))
    row = page.locator("#retention-table tr[data-camera=entrance]")
    assert "violation" in row.get_attribute("class")
    assert int(row.locator("td.violations").inner_text()) >= 1
    assert page.locator("#retention-table tr[data-camera=hall]").get_attribute("class") == ""
    screenshot(page, "auditor-retention")

    from vms.retention.janitor import Janitor

    Janitor(app).sweep()
    page.reload()
    assert page.locator("#retention-table tr[data-camera=entrance] td.violations").inner_text() == "0"
    page.goto(web.url("/deletions"))
    rows = page.locator("#deletions-table tr[data-camera=entrance]")
    assert rows.count() >= 1
    assert "maksimal alder" in rows.first.inner_text()

    page.goto(web.url("/audit/verify"))
    assert page.get_attribute("#verify-result", "data-ok") == "true"

    page.goto(web.url("/audit?action=auth.&latest=1"))
    actions = page.locator("#audit-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions and set(actions) == {"auth.signin"}
    with page.expect_download() as dl:
        page.click("#csv-link")
    body = open(dl.value.path(), encoding="utf-8").read()
    parsed = list(csv.DictReader(io.StringIO(body)))
    assert parsed and {r["action"] for r in parsed} == {"auth.signin"}
    assert any(r["actor"] == "aud" for r in parsed)

    page.goto(web.url("/audit?ticket=abc&since=yesterday"))
    assert page.locator(".error").count() == 2


def test_admin_pages(web, browser):
    app, clock = web.app, web.clock
    with Session(app.engine) as s, s.begin():
        index.save_camera_state(s, "entrance", node_id=app.config.node_id, now_us=clock.now_us(), online=True,
                                fps=15.0, bitrate_bps=812_000.0, last_packet_us=clock.now_us() - 200_000,
                                packets=9000, reconnects=1)
    page = browser.new_page()
    sign_in(page, web, "adam")
    assert page.url == web.url("/admin")
    entrance = page.locator("#camera-table tr[data-camera=entrance]")
    assert entrance.get_attribute("data-online") == "true"
    assert "812 kbit/s" in entrance.inner_text()
    assert entrance.locator("td").nth(5).inner_text() == "1"  # the logged gap of the test footage is today
    assert page.locator("#camera-table tr[data-camera=hall]").get_attribute("data-online") == "false"
    assert "Ledigt" in page.locator("#disk").inner_text()
    screenshot(page, "admin-cameras")

    page.goto(web.url("/admin/users"))
    page.fill("#add-user input[name=name]", "nina")
    page.select_option("#add-user select[name=role]", "operator")
    page.click("#add-user button[type=submit]")
    password = page.locator("#one-time-password").inner_text()
    assert len(password) >= 12
    assert page.locator("#user-table tr[data-user=nina]").get_attribute("data-role") == "operator"
    # four eyes: an operator sees footage, so the account works once someone else confirms it
    assert "anden administrator eller revisoren" in page.locator("#change-pending").inner_text()
    pending = page.locator("#account-changes article[data-user=nina]")
    assert pending.count() == 1 and pending.locator("form").count() == 0  # not the requester's to confirm
    screenshot(page, "admin-users")
    # one's own account: no buttons, a note saying who changes it instead; a form posted anyway is refused
    own = page.locator("#user-table tr[data-user=adam]")
    assert own.locator("button").count() == 0 and own.locator("select").count() == 0
    assert "anden administrator" in own.locator("#own-account").inner_text()
    page.evaluate("""csrf => { const f = document.createElement('form'); f.method = 'post'; f.action = '/admin/users';
        for (const [k, v] of [['csrf_token', csrf], ['op', 'disable'], ['name', 'adam']]) {
            const i = document.createElement('input'); i.name = k; i.value = v; f.appendChild(i); }
        document.body.appendChild(f); f.submit(); }""", page.locator("input[name=csrf_token]").first.get_attribute("value"))
    expect(page.locator("#page-error")).to_contain_text("egen konto")  # the policy's refusal, in Danish

    nina = browser.new_page()
    sign_in(nina, web, "nina", password=password)
    assert nina.url.endswith("/signin") or "/signin" in nina.url  # not yet: the account waits for confirmation

    auditor = browser.new_page()
    sign_in(auditor, web, "aud")
    change = auditor.locator("#account-changes article[data-user=nina]")
    change.locator("input[name=reason]").fill("Ny medarbejder, aftalt med biblioteksleder")
    with auditor.expect_navigation():
        change.locator("button[value=confirm]").click()
    assert "bekræftet" in auditor.locator(".ok").inner_text()
    assert auditor.locator("#account-changes article[data-user=nina]").count() == 0

    sign_in(nina, web, "nina", password=password)
    assert nina.url == web.url("/password")
    nina.goto(web.url("/tickets"))
    assert nina.url == web.url("/password")  # nothing else until the one-time password is replaced
    nina.fill("input[name=current_password]", password)
    nina.fill("input[name=new_password]", "a much longer secret phrase")
    nina.fill("input[name=new_password_again]", "a much longer secret phrase")
    nina.click("form[action='/password'] button[type=submit]")
    nina.wait_for_url("**/password?done=1")
    expect(nina.locator(".ok")).to_have_count(1)
    nina.goto(web.url("/tickets"))
    assert nina.url == web.url("/tickets")


def test_bad_addresses_and_forged_forms_get_pages_not_errors(web, browser):
    olga = browser.new_page()
    sign_in(olga, web, "olga")
    ticket_id = file_ticket(olga, web)
    response = olga.goto(web.url("/tickets/abc"))
    assert response.status == 404 and "nummer" in olga.locator(".error").inner_text()
    response = olga.goto(web.url("/tickets/999999"))
    assert response.status == 404 and "Sag 999999 findes ikke." in olga.locator(".error").inner_text()
    response = olga.goto(web.url("/tickets?offset=-5&state=bogus"))
    assert response.status == 200
    # a form posted without the session's CSRF token (as another site would try) is refused
    response = olga.request.post(web.url(f"/tickets/{ticket_id}/close"), form={"reason": "forged"})
    assert response.status == 403 and "CSRF" in response.text()

    otto = browser.new_page()  # another operator: someone else's ticket does not exist for him
    sign_in(otto, web, "otto")
    response = otto.goto(web.url(f"/tickets/{ticket_id}"))
    assert response.status == 404 and f"Sag {ticket_id} findes ikke." in otto.locator(".error").inner_text()
    olga.goto(web.url(f"/tickets/{ticket_id}"))
    assert olga.get_attribute("#ticket-state", "data-state") == "requested"
