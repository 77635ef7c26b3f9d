"""Each role's pages show only controls the policy allows, and say who can do the rest.

For every role the test signs in, walks the pages its header offers and the ticket pages its list links to,
and uses every link and form shown, one at a time (tests/e2e/walk.py): none may lead to a refusal.  Then it
checks the notes that tell a person who can do what they cannot, and that the controls they cannot use are
not there."""

from __future__ import annotations

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.walk import nav_paths, scene, ticket_paths, walk


def _forms_used(walked, needle: str) -> list[str]:
    return [f for f in walked.forms if needle in f]


def test_operator_sees_only_what_an_operator_may_do(web, browser):
    s = scene(web)
    page = browser.new_page()
    sign_in(page, web, "olga")
    # the notes first, before the walk changes anything
    page.goto(web.url(f"/tickets/{s.waiting}"))
    assert "leder" in page.locator("#who-decides").inner_text()  # who decides instead
    assert "godkendt" in page.locator("#footage-refusal").inner_text()
    assert "godkendt" in page.locator("#export-refusal").inner_text()  # why no export yet
    assert page.locator("#decide").count() == 0
    page.goto(web.url(f"/tickets/{s.delivered}"))
    assert page.get_attribute("#ticket-state", "data-state") == "exported"  # a link is not a delivery
    note = page.locator("#links-by-managers").first.inner_text()
    assert "leder" in note and "udleveringslinks" in note
    assert page.locator("form.new-link, form[action^='/links/'], form[action$='/delete']").count() == 0
    assert page.locator("#start-export").count() == 1  # her own approved export ticket: she may export
    screenshot(page, "operator-ticket-controls")

    walked = walk(page, web, [*nav_paths(page), *ticket_paths(page, web)])
    assert f"/tickets/{s.others}" not in walked.pages  # otto's ticket is not hers to see
    assert _forms_used(walked, "/tickets/new")  # she filed a ticket,
    assert _forms_used(walked, f"/tickets/{s.delivered}/export")  # exported her ticket
    assert _forms_used(walked, "/close")  # and closed (withdrew) her tickets
    assert not _forms_used(walked, "/decide") and not _forms_used(walked, "/links")


def test_manager_sees_only_what_a_manager_may_do(web, browser):
    s = scene(web)
    page = browser.new_page()
    sign_in(page, web, "mia")
    own = page.locator(f"article[data-ticket='{s.own}']")
    assert own.locator("form").count() == 0  # her own ticket: no approve/deny ...
    assert "anden leder" in own.locator(".four-eyes").inner_text()  # ... another manager decides
    assert page.locator(f"article[data-ticket='{s.waiting}'] form button[value=approve]").count() == 1
    page.goto(web.url(f"/tickets/{s.own}"))
    assert "anden leder" in page.locator("#four-eyes").inner_text() and page.locator("#decide").count() == 0
    page.goto(web.url(f"/tickets/{s.delivered}"))
    assert page.locator("form.new-link").count() == 1 and page.locator("tr[data-link] form").count() == 1

    walked = walk(page, web, [*nav_paths(page), *ticket_paths(page, web)])
    assert _forms_used(walked, f"/tickets/{s.waiting}/decide")  # she decided olga's ticket from the queue
    assert not _forms_used(walked, f"/tickets/{s.own}/decide")  # never her own
    for needle in ("/links", "/revoke", "/delete", "/export", "/close"):
        assert _forms_used(walked, needle), needle
    # after the walk her own ticket was never decided (she withdrew it: closing is hers)
    page.goto(web.url(f"/tickets/{s.own}"))
    assert page.get_attribute("#ticket-state", "data-state") == "closed" and page.locator("#decision").count() == 0


def test_auditor_reads_and_is_told_who_acts(web, browser):
    s = scene(web)
    page = browser.new_page()
    sign_in(page, web, "aud")
    page.goto(web.url(f"/tickets/{s.waiting}"))
    assert "leder" in page.locator("#who-decides").inner_text()
    assert page.locator("main form").count() == 0  # reading only: no decide, export, link or close form
    assert page.locator("#export").count() == 0 and page.locator("#footage").count() == 0
    assert page.locator("#ticket-audit").get_attribute("href") == f"/audit?ticket={s.waiting}"  # what she can do
    page.goto(web.url(f"/tickets/{s.delivered}"))
    assert page.locator("main form").count() == 0

    walked = walk(page, web, [*nav_paths(page), *ticket_paths(page, web)])
    assert {f"/tickets/{s.waiting}", "/audit", "/retention", "/deletions", "/audit/verify"} <= set(walked.pages)
    assert all(" get " in f" {f.split(': ', 1)[1]}" for f in walked.forms), walked.forms  # only filters


def test_administrator_manages_accounts_but_not_their_own(web, browser):
    scene(web)
    page = browser.new_page()
    sign_in(page, web, "adam")
    page.goto(web.url("/admin/users"))
    own = page.locator("#user-table tr[data-user=adam]")
    assert own.locator("form").count() == 0
    assert "anden administrator" in own.locator("#own-account").inner_text()
    assert own.locator("#own-account a[href='/password']").count() == 1
    assert page.locator("#user-table tr[data-user=olga] button[value=disable]").count() == 1

    walked = walk(page, web, nav_paths(page))
    assert "/tickets" not in walked.links and not any(link.startswith("/audit") for link in walked.links)
    for op in ("op=role", "op=disable", "op=reset"):
        assert [f for f in walked.forms if op in f], op
    assert not [f for f in walked.forms if "name=adam" in f]
