"""A data subject's request of access through the browser, on a real clip of two people crossing a room
(testkit.media.two_people_clip, stored as the recorder stores it).

The operator files the request (with the day it was received), a manager approves it, the operator picks the
camera and a moment on the ticket page, shows that frame (the thumbnail API), draws a box around the first
person with a finger and then with the mouse, sees the box as fractions of the frame, and starts the export
for the data subject.  The operator can neither watch nor approve the package; a second manager watches the
clip in the page (it plays), approves it, and only then makes the delivery link.  A manager who filed a
request of access themselves sees the policy's refusal and is refused when posting the approval anyway."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from api.web.render import input_local
from storage.sql import audit as audit_store
from testkit.footage import ensure_signing_key, store_clip
from testkit.media import two_people_clip
from tests.e2e.conftest import Served, screenshot, sign_in
from tests.support.api_env import iso, make_api_env
from tests.support.delivery_env import ExportEnv
from vms.evidence.export import package_store

S = 1_000_000
FPS, SECONDS, W, H = 8, 5, 640, 360


@pytest.fixture
def subject_web(appliance_factory, sqlite_url, fake_clock, tmp_path):
    clip, boxes = two_people_clip(tmp_path / "two.mp4", seconds=SECONDS, fps=FPS, width=W, height=H, face_px=110)
    env = make_api_env(appliance_factory, sqlite_url, fake_clock)
    ensure_signing_key(env.app)
    minute = (fake_clock.now_us() - 10 * 60 * S) // (60 * S) * 60 * S
    stored = store_clip(env.app, "entrance", clip, minute)
    with Served(env.api) as served:
        yield env, f"http://127.0.0.1:{served.port}", stored, minute, boxes


class Site:
    def __init__(self, env, base: str):
        self.env, self.base = env, base

    @property
    def app(self):
        return self.env.app

    def url(self, path: str) -> str:
        return self.base + path


def _audit(app, action: str) -> list:
    with Session(app.engine) as s:
        return list(audit_store.search(s, action=action, limit=1000))


def _drag_by_touch(page, a: tuple[float, float], b: tuple[float, float]) -> None:
    """A finger drawing from ``a`` to ``b`` (viewport pixels), as Chromium's touch input (pointer events follow)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": a[0], "y": a[1]}]})
    for i in range(1, 6):
        x, y = a[0] + (b[0] - a[0]) * i / 5, a[1] + (b[1] - a[1]) * i / 5
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _fields(page) -> dict:
    return {f: float(page.input_value(f"#subject-{f}")) for f in ("x", "y", "width", "height")}


def test_the_operator_marks_the_subject_and_another_manager_reviews_and_releases(subject_web, browser):
    env, base, stored, minute, boxes = subject_web
    web = Site(env, base)
    day = datetime.fromtimestamp((env.clock.now_us() - 86_400 * S) / S, UTC).astimezone(
        ZoneInfo(env.app.config.timezone)).date().isoformat()

    olga = browser.new_page(has_touch=True)
    sign_in(olga, web, "olga")
    olga.goto(web.url("/tickets/new"))
    olga.check("input[name=cameras][value=entrance]")
    olga.fill("input[name=start]", input_local(env.app, minute))
    olga.fill("input[name=end]", input_local(env.app, minute + 60 * S))
    olga.fill("textarea[name=description]", "A visitor asks for the recordings of themselves in the reading room")
    olga.fill("textarea[name=purpose]", "Answer the visitor's request of access")
    olga.fill("input[name=legal_basis]", "GDPR art. 15")
    olga.select_option("select[name=action]", "export")
    olga.select_option("select[name=recipient]", "data_subject")
    olga.fill("input[name=received]", day)
    olga.click("#new-ticket button[type=submit]")
    olga.wait_for_url("**/tickets/*?done=filed")
    ticket_id = int(olga.url.split("/tickets/")[1].split("?")[0])
    assert olga.locator("#subject").count() == 0  # nothing to mark before approval

    mia = browser.new_page()
    sign_in(mia, web, "mia")
    mia.goto(web.url(f"/tickets/{ticket_id}"))
    mia.fill("#decide textarea[name=reason]", "A request of access from the person filmed")
    mia.click("#decide button[value=approve]")
    mia.wait_for_url("**?done=approved")

    # the operator shows the frame 2 s in and marks the first person
    olga.goto(web.url(f"/tickets/{ticket_id}"))
    expect(olga.locator("#subject-what")).to_contain_text("forbliver synlig")
    expect(olga.locator("#subject-what")).to_contain_text("alle andre personer og ansigter sløres")
    assert olga.locator("#subject-start").is_disabled()  # no frame, no box
    olga.select_option("#subject-camera", "entrance")
    olga.focus("#subject-moment")
    olga.keyboard.press("ArrowRight")
    olga.keyboard.press("ArrowRight")
    olga.click("#subject-show")
    img = olga.locator("#subject-frame img")
    expect(img).to_be_visible()
    olga.wait_for_function("() => document.querySelector('#subject-frame img').naturalWidth > 0")
    shown = datetime.fromisoformat(olga.input_value("#subject-at"))
    assert shown == datetime.fromtimestamp(minute / S + 2, UTC)  # the frame's own time (a keyframe)
    expect(olga.locator("#subject-frame-time")).to_contain_text("Træk en firkant")
    r = img.bounding_box()
    x1, y1, x2, y2 = boxes[2 * FPS][0]
    at = lambda fx, fy: (r["x"] + fx * r["width"], r["y"] + fy * r["height"])  # noqa: E731
    _drag_by_touch(olga, at(0.5, 0.5), at(0.9, 0.9))  # a finger first: the wrong person
    touched = _fields(olga)
    assert touched["x"] == pytest.approx(0.5, abs=0.01) and touched["width"] == pytest.approx(0.4, abs=0.01)
    want = {"x": (x1 - 10) / W, "y": (y1 - 10) / H, "width": (x2 - x1 + 20) / W, "height": (y2 - y1 + 20) / H}
    olga.mouse.move(*at(want["x"], want["y"]))
    olga.mouse.down()
    olga.mouse.move(*at(want["x"] + want["width"] / 2, want["y"] + want["height"] / 2), steps=4)
    olga.mouse.move(*at(want["x"] + want["width"], want["y"] + want["height"]), steps=4)
    olga.mouse.up()
    drawn = _fields(olga)
    for k, v in want.items():
        assert drawn[k] == pytest.approx(v, abs=0.01), k
    assert olga.locator("#subject-start").is_enabled()
    shown_box = olga.locator("#subject-frame .subject-box").bounding_box()  # drawn where the fields say, on the frame
    assert shown_box["x"] == pytest.approx(at(drawn["x"], 0)[0], abs=3)
    assert shown_box["width"] == pytest.approx(drawn["width"] * r["width"], abs=4)
    assert shown_box["y"] == pytest.approx(at(0, drawn["y"])[1], abs=3)
    screenshot(olga, "operator-subject-box")
    olga.click("#subject-start")
    olga.wait_for_url("**?done=export_started*")
    expect(olga.locator("#ticket-state")).to_have_attribute("data-state", "exported", timeout=180_000)
    package = olga.locator("#export article[data-package]")
    assert package.count() == 1
    package_id = package.get_attribute("data-package")
    with zipfile.ZipFile(io.BytesIO(b"".join(package_store(env.app).open(package_id)))) as zf:
        marked = json.loads(zf.read("manifest.json"))["redaction"]["data_subject"]
    assert marked["camera"] == "entrance" and marked["marked_at_us"] == minute + 2 * S
    assert marked["box"] == {k: pytest.approx(drawn[k], abs=1e-6) for k in drawn}

    # the operator can neither watch the package here nor approve it
    assert package.locator("video").count() == 0 and package.locator("form[action$='/release']").count() == 0
    expect(package).to_contain_text("En anden leder end den, der oprettede anmodningen")
    csrf = olga.locator("input[name=csrf_token]").first.input_value()
    refused = olga.request.post(web.url(f"/api/packages/{package_id}/release"),
                                headers={"X-CSRF-Token": csrf}, data={"reason": "I checked it myself"})
    assert refused.status == 403
    assert olga.request.get(web.url(f"/api/packages/{package_id}/clips/0")).status == 403

    # a second manager watches the clip in the page, approves it, and then makes the link
    max_ = browser.new_page()
    sign_in(max_, web, "max")
    max_.goto(web.url(f"/tickets/{ticket_id}"))
    card = max_.locator(f"article[data-package='{package_id}']")
    assert card.locator(".new-link").count() == 0  # no link before the approval
    expect(card.locator(".link-after-release")).to_contain_text("godkendt den til udlevering")
    video = card.locator(".preview video")
    assert video.count() == 1
    video.evaluate("v => v.play()")
    max_.wait_for_function("v => v.currentTime > 1 && v.videoWidth === 640", arg=video.element_handle(),
                           timeout=30_000)
    assert [e.actor for e in _audit(env.app, "package.preview") if e.outcome == "ok"] == ["max"]
    screenshot(max_, "manager-subject-review")
    csrf = max_.locator("input[name=csrf_token]").first.input_value()
    early = max_.request.post(web.url(f"/packages/{package_id}/links"),
                              form={"recipient": "The visitor", "passcode_mode": "generate", "csrf_token": csrf})
    assert early.status == 409 and "skal se udtrækket igennem og godkende det" in early.text()
    card.locator("input[name=reason]").fill("Watched it: only the visitor can be recognised")
    card.locator("button", has_text="Godkend til udlevering").click()
    max_.wait_for_url("**?done=released*")
    card = max_.locator(f"article[data-package='{package_id}']")
    expect(card.locator(f"[data-released='{package_id}']")).to_be_visible()
    card.locator("input[name=recipient]").fill("The visitor (by hand)")
    card.locator("select[name=passcode_mode]").select_option("generate")
    card.locator("button", has_text="Opret link").click()
    max_.wait_for_selector("#link-url")
    assert max_.locator("#link-url").inner_text().startswith(web.url("/d/"))
    assert [e.actor for e in _audit(env.app, "package.release") if e.outcome == "ok"] == ["max"]


def test_the_manager_who_filed_a_request_cannot_release_its_export(subject_web, browser):
    env, base, stored, minute, _ = subject_web
    web = Site(env, base)
    body = {"cameras": ["entrance"], "start": iso(minute), "end": iso(minute + SECONDS * S),
            "description": "A visitor asks for the recordings of themselves", "purpose": "Answer the request",
            "legal_basis": "GDPR art. 15", "action": "export", "recipient": "data_subject",
            "received": iso(env.clock.now_us() - 86_400 * S)}
    r = env.client("max").post("/api/tickets", json=body)
    assert r.status_code == 201, r.text
    ticket = r.json()
    env.approve(ticket["id"], "mia")
    package_id = ExportEnv(env, stored, ticket).export(
        "max", redaction={"zones": [{"x": 0.0, "y": 0.9, "width": 0.1, "height": 0.1}]})["package_id"]

    max_ = browser.new_page()
    sign_in(max_, web, "max")
    max_.goto(web.url(f"/tickets/{ticket['id']}"))
    card = max_.locator(f"article[data-package='{package_id}']")
    assert card.locator("video").count() == 0 and card.locator("form[action$='/release']").count() == 0
    expect(card.locator(".release-refusal")).to_contain_text("du har selv oprettet anmodningen om indsigt")
    csrf = max_.locator("input[name=csrf_token]").first.input_value()
    answer = max_.request.post(web.url(f"/packages/{package_id}/release"),
                               form={"reason": "Reviewed it myself", "csrf_token": csrf})
    assert answer.status == 403 and "en anden leder ser udtrækket igennem" in answer.text()
    refused = [e for e in _audit(env.app, "package.release") if e.actor == "max"]
    assert refused and all(e.outcome.startswith("refused") for e in refused)
