"""Notifications in the browser: a manager's badge of waiting tickets in the top bar, an administrator setting a
user's e-mail address, and the health page (disk forecast, retention in words, doctor, failed mails)."""

from __future__ import annotations

import shutil

from playwright.sync_api import expect
from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql import outbox as store
from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.test_web_flow import file_ticket


def test_badge_shows_a_manager_the_tickets_waiting(web, browser):
    operator = browser.new_page()
    sign_in(operator, web, "olga")
    expect(operator.locator("#waiting-badge")).to_have_count(0)  # operators decide nothing
    first = file_ticket(operator, web)
    file_ticket(operator, web)
    manager = browser.new_page()
    sign_in(manager, web, "mia", next_path="/tickets")
    badge = manager.locator("header.top nav a[href='/queue'] #waiting-badge")
    expect(badge).to_have_text("2")
    assert "2 sag(er) venter" in badge.get_attribute("title")
    screenshot(manager, "manager-waiting-badge")
    web.env.approve(first, "max")  # another manager decides one
    manager.reload()
    expect(badge).to_have_text("1")


def test_health_page_for_an_administrator(web, browser):
    app = web.app
    free = shutil.disk_usage(app.config.storage_path).free
    rate_bps = free / 7 / 86400 * 8  # this disk would hold about a week of it: short of entrance's 14 days
    with Session(app.engine) as s, s.begin():
        index.save_camera_state(s, "entrance", node_id=app.config.node_id, now_us=web.clock.now_us(),
                                last_packet_us=web.clock.now_us(), bitrate_bps=rate_bps, online=True)
        mia = index.user_by_name(s, "mia")
        store.queue(s, event="ticket.waiting:1", user_id=mia.id, recipient="mia@library.example", language="da",
                    subject="Sag 1 venter på en afgørelse", body="...", now_us=web.clock.now_us())
    with Session(app.engine) as s, s.begin():
        row = store.due(s, web.clock.now_us())[0]
        store.mark_failed(s, row.id, error="ConnectionRefusedError", next_attempt_us=web.clock.now_us() + 60_000_000)
    page = browser.new_page()
    sign_in(page, web, "adam")
    page.click("header.top nav a[href='/health']")
    expect(page.locator("h1")).to_have_text("Driftsstatus")
    expect(page.locator("#forecast")).to_contain_text("Med den nuværende optagehastighed rækker disken kun til")
    expect(page.locator("#forecast")).to_contain_text("kamera entrance: 14 dages opbevaring kræver")
    expect(page.locator("#retention-words li[data-camera=entrance]")).to_contain_text("Kamera entrance gemmer 14 dage")
    expect(page.locator("#doctor-table tr[data-check=database]")).to_contain_text("i orden")
    failed = page.locator("#mail-failures tr[data-state=queued]")
    expect(failed).to_contain_text("mia@library.example")
    expect(failed).to_contain_text("ConnectionRefusedError")
    expect(failed).to_contain_text("prøves igen")
    expect(page.locator("#health-problems")).to_contain_text("Der er ikke sat mail op")
    screenshot(page, "admin-health")
    page.click("a[lang=en]")
    expect(page.locator("h1")).to_have_text("Health")
    expect(page.locator("#forecast")).to_contain_text("camera entrance's 14 days need")
    # operators and managers have no such page
    other = browser.new_page()
    sign_in(other, web, "mia")
    expect(other.locator("header.top nav a[href='/health']")).to_have_count(0)
    assert other.goto(web.url("/health")).status == 403


def test_administrator_sets_an_address_on_the_users_page(web, browser):
    page = browser.new_page()
    sign_in(page, web, "adam", next_path="/admin/users")
    row = page.locator("#user-table tr[data-user=mia]")
    row.locator("input[name=email]").fill("mia@library.example")
    row.locator("select[name=language]").select_option("en")
    row.locator("form.contact button").click()
    expect(page.locator("#user-table tr[data-user=mia] input[name=email]")).to_have_value("mia@library.example")
    with Session(web.app.engine) as s:
        mia = index.user_by_name(s, "mia")
        assert (mia.email, mia.language) == ("mia@library.example", "en")
