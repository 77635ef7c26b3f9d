"""Walking a role's pages in the browser and using every control they show (tests/e2e/test_web_controls.py).

:func:`scene` builds tickets in the states a day at the library has (through the API, as people would):
olga's export ticket waiting for a decision, olga's export ticket approved, exported and with a live link,
mia's own ticket waiting, otto's approved view ticket, and olga's denied one.

:func:`walk` visits pages and, on each, uses every link and every form it shows, one at a time: a link is
fetched with the page's cookies, a form is filled in (required fields get test values) and sent with the
button that was pressed, in the browser.  After each use the page is loaded again and the next control not
used yet is taken, so a control is only ever used while the page shows it.  Every use must be allowed: no
answer of 400 or above, no refusal on the page it leads to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.e2e.conftest import Web

#: links every role has that end the session or are not pages (the walk would sign itself out)
SKIPPED_LINKS = ("/signout", "/lang/", "/static/")

COLLECT = """() => {
  const out = {links: [], forms: []};
  for (const a of document.querySelectorAll("header nav a[href], main a[href]")) {
    const u = new URL(a.getAttribute("href"), location.href);
    if (u.origin === location.origin) out.links.push(u.pathname + u.search);
  }
  document.querySelectorAll("main form").forEach((f, fi) => {
    const hidden = [...f.querySelectorAll("input[type=hidden]")].filter((i) => i.name !== "csrf_token")
      .map((i) => i.name + "=" + i.value).join("&");
    const buttons = [...f.querySelectorAll("button")].filter((b) => b.type === "submit");
    (buttons.length ? buttons : [null]).forEach((b, bi) => out.forms.push({
      form: fi, button: bi, method: (f.getAttribute("method") || "get").toLowerCase(),
      key: [f.method, f.getAttribute("action"), hidden, b ? b.name + "=" + b.value : ""].join(" "),
      label: b ? b.textContent.trim() : ""}));
  });
  return out;
}"""

FILL_AND_SEND = """([fi, bi, n]) => {
  const f = document.querySelectorAll("main form")[fi];
  for (const el of f.querySelectorAll("input, textarea")) {
    if (["hidden", "checkbox", "submit"].includes(el.type) || !el.required || el.value) continue;
    el.value = el.pattern ? "walker" + n : "Test " + n;
  }
  const boxes = f.querySelectorAll("input[type=checkbox][name=cameras]");
  if (boxes.length && ![...boxes].some((b) => b.checked)) boxes[0].checked = true;
  const buttons = [...f.querySelectorAll("button")].filter((b) => b.type === "submit");
  f.requestSubmit(buttons[bi] || undefined);
}"""

REFUSAL = "main .error[role=alert], #page-error, #link-error"


@dataclass
class Scene:
    waiting: int  # olga's export ticket, requested
    delivered: int  # olga's export ticket: approved by mia, exported, a live link (not downloaded)
    own: int  # mia's view ticket, requested
    others: int  # otto's view ticket, approved by max
    denied: int  # olga's view ticket, denied by max


@dataclass
class Walked:
    pages: list[str] = field(default_factory=list)
    links: set[str] = field(default_factory=set)
    forms: list[str] = field(default_factory=list)  # "page: key (button label)"


def export_ticket(env, who: str, ticket_id: int) -> str:
    r = env.client(who).post(f"/api/tickets/{ticket_id}/exports")
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = env.client(who).get(f"/api/exports/{job}").json()
        if state["state"] in ("succeeded", "failed", "cancelled"):
            assert state["state"] == "succeeded", state
            return state["package_id"]
        time.sleep(0.1)
    raise AssertionError(f"export {job} did not finish")


def scene(web: Web) -> Scene:
    env, f = web.env, web.footage
    window = {"start_us": f.first_us - 60_000_000, "end_us": f.last_us + 60_000_000}
    waiting = env.file_ticket("olga", action="export", **window)["id"]
    delivered = env.file_ticket("olga", action="export", **window)["id"]
    env.approve(delivered, "mia")
    package_id = export_ticket(env, "olga", delivered)
    r = env.client("mia").post(f"/api/packages/{package_id}/deliveries", json={"recipient": "Politi, sag 4711"})
    assert r.status_code == 201, r.text
    own = env.file_ticket("mia", **window)["id"]
    others = env.file_ticket("otto", **window)["id"]
    env.approve(others, "max")
    denied = env.file_ticket("olga", **window)["id"]
    r = env.client("max").post(f"/api/tickets/{denied}/deny", json={"reason": "Not an incident"})
    assert r.status_code == 200, r.text
    return Scene(waiting, delivered, own, others, denied)


def _check_link(page, web: Web, path: str) -> None:
    response = page.request.get(web.url(path), max_redirects=5)
    assert response.status < 400, f"the link {path} is refused: {response.status} {response.text()[:300]}"
    if response.headers.get("content-type", "").startswith("text/html"):
        assert 'role="alert"' not in response.text(), f"the link {path} leads to a refusal"


def walk(page, web: Web, paths: list[str], walked: Walked | None = None, *, max_uses: int = 60) -> Walked:
    """Use every link and form the pages ``paths`` show (see the module's docstring); returns what was used."""
    walked = walked or Walked()
    page.route("**/static/web.js", lambda route: route.abort())  # no reloads by a progress bar mid-walk
    for path in paths:
        used: set[str] = set()
        for _ in range(max_uses):
            response = page.goto(web.url(path))
            assert response.status < 400, f"{path}: {response.status}"
            walked.pages.append(path)
            shown = page.evaluate(COLLECT)
            for link in shown["links"]:
                if link not in walked.links and not link.startswith(SKIPPED_LINKS):
                    walked.links.add(link)
                    _check_link(page, web, link)
            todo = [c for c in shown["forms"] if c["key"] not in used]
            if not todo:
                break
            control = todo[0]
            used.add(control["key"])
            walked.forms.append(f"{path}: {control['key']} ({control['label']})")
            with page.expect_navigation() as nav:
                page.evaluate(FILL_AND_SEND, [control["form"], control["button"], len(walked.forms)])
            answer = nav.value
            assert answer is not None and answer.status < 400, \
                f"{path}: {control['label']!r} ({control['key']}) is refused: {answer and answer.status}"
            refusals = page.locator(REFUSAL)
            assert refusals.count() == 0, \
                f"{path}: {control['label']!r} ({control['key']}) leads to a refusal: {refusals.first.inner_text()}"
        else:
            raise AssertionError(f"{path}: more than {max_uses} controls")
    return walked


def nav_paths(page) -> list[str]:
    """The pages the header offers the signed-in role."""
    return page.locator("header nav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")


def ticket_paths(page, web: Web) -> list[str]:
    """The ticket pages the role's ticket list links to."""
    page.goto(web.url("/tickets"))
    return page.locator("table.list tr[data-ticket] a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")
