"""A manager on a phone (390 x 844 CSS pixels, Chromium): the queue, approve and deny from it, the ticket list
and a ticket's page, with nothing wider than the screen (no sideways scrolling) and tables read as lists (each
row a card, each cell on its own line under its column's name)."""

from __future__ import annotations

from tests.e2e.conftest import screenshot, sign_in
from tests.e2e.walk import scene

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}

WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll("body *")].filter((el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5);
  }).map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "." + el.className);
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}"""

TABLE_AS_LIST = """(table) => {
  const head = table.querySelector("thead");
  const rows = [...table.querySelectorAll("tbody tr")];
  return {
    head: head ? getComputedStyle(head).display : "none",
    rows: rows.map((tr) => getComputedStyle(tr).display),
    labels: rows.slice(0, 1).flatMap((tr) => [...tr.querySelectorAll("td[data-label]")].map(
      (td) => getComputedStyle(td, "::before").content)),
    cells: rows.slice(0, 1).flatMap((tr) => [...tr.querySelectorAll("td")].map((td) => getComputedStyle(td).display)),
  };
}"""


def _fits(page) -> None:
    got = page.evaluate(WIDER_THAN_SCREEN)
    assert got["scroll"] <= got["width"] == 390, got  # no sideways scrolling
    assert not got["wide"], got


def _reads_as_list(page, selector: str, labels: list[str]) -> None:
    got = page.locator(selector).evaluate(TABLE_AS_LIST)
    assert got["head"] == "none" and got["rows"] and set(got["rows"]) == {"block"}, got
    assert set(got["cells"]) <= {"block", "none"}, got
    for label in labels:
        assert f'"{label}: "' in got["labels"], (label, got["labels"])


def test_a_manager_decides_from_a_phone(web, browser):
    s = scene(web)
    second = web.env.file_ticket("otto", action="view", start_us=web.footage.first_us,
                                 end_us=web.footage.last_us)["id"]
    page = browser.new_page(**PHONE)
    sign_in(page, web, "mia")
    assert page.url == web.url("/queue")
    _fits(page)
    cards = page.locator("article.card[data-ticket]")
    assert cards.count() == 3  # olga's, otto's, and her own (marked, without buttons)
    assert page.locator(f"article[data-ticket='{s.own}'] .four-eyes").is_visible()
    card = page.locator(f"article[data-ticket='{s.waiting}']")
    approve = card.locator("button[value=approve]")
    box = approve.bounding_box()
    assert box["height"] >= 40 and box["width"] >= 120  # big enough for a thumb
    screenshot(page, "manager-phone-queue")

    card.locator("textarea[name=reason]").fill("Tyveri bekræftet af bibliotekaren")
    with page.expect_navigation():
        approve.tap()
    assert "/queue?done=approved" in page.url
    assert f"Sag {s.waiting} er godkendt" in page.locator("#decided").inner_text()
    assert page.locator(f"article[data-ticket='{s.waiting}']").count() == 0
    _fits(page)

    other = page.locator(f"article[data-ticket='{second}']")
    other.locator("textarea[name=reason]").fill("Ikke en hændelse")
    with page.expect_navigation():
        other.locator("button[value=deny]").tap()
    assert f"Sag {second} er afvist" in page.locator("#decided").inner_text()
    env = web.env
    assert env.client("mia").get(f"/api/tickets/{s.waiting}").json()["state"] == "approved"
    assert env.client("mia").get(f"/api/tickets/{second}").json()["state"] == "denied"

    page.goto(web.url("/tickets"))
    _fits(page)
    _reads_as_list(page, "main table.list", ["Status", "Anmodet af", "Kameraer", "Tidsrum", "Handling"])
    screenshot(page, "manager-phone-tickets")

    page.goto(web.url(f"/tickets/{s.delivered}"))
    _fits(page)
    _reads_as_list(page, "#export table.links", ["Modtager", "Status", "Downloads", "Udløber"])
    page.goto(web.url("/exports"))
    _fits(page)
    _reads_as_list(page, "#packages-table", ["Pakke", "Kameraer", "Størrelse"])
