"""The continuous player in Chromium, on footage recorded from the real RTSP test server.

A clip with a still scene and an object crossing it is recorded by the recorder from GStreamer's RTSP
server; its packets are repeated (with the recorder's activity records) to fill a 30-minute window of
``entrance`` and three minutes of ``hall``.  The operator hovers the timeline and sees a thumbnail with its
time, seeks to minute 7 without a page load (a marker set in the page survives) and the clock beside the
video says the right time to within a second, plays at 4x, adds the second camera side by side (in sync),
steps a frame, runs a region search and plays a hit; a thumbnail outside the window is refused (403).
One audit entry for the page view, a few for plays, none per fragment."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.footage import ensure_signing_key
from testkit.moving import HEIGHT, SIDE, TOP, WIDTH, make_moving_clip
from testkit.player import seed_window
from testkit.recording import recording, stored, wait_for
from testkit.rtsp_server import Mount
from tests.e2e.conftest import Served, screenshot, sign_in
from tests.support.api_env import CAMERAS, USERS, ApiEnv, iso, password_hash
from vms.core.clock import Clock
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp
MIN = 60_000_000
ZONE = ZoneInfo("Europe/Copenhagen")


def local(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).astimezone(ZONE).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def player_web(appliance_factory, sqlite_url, rtsp_server_factory, tmp_path):
    clip = make_moving_clip(tmp_path / "moving.mp4", still_s=4, move_s=4)  # 12 s, a keyframe every second
    server = rtsp_server_factory({"/entrance": Mount(clip)})
    cams = [dict(c) for c in CAMERAS]
    cams[0] |= {"source": server.url("/entrance"), "segment_seconds": 4}
    app = appliance_factory(cams, database_url=sqlite_url, clock=Clock(),
                            recorder={"backoff_initial_s": 60, "backoff_max_s": 60})
    ensure_signing_key(app)
    rec = Recorder(app)
    with recording(rec):
        wait_for(lambda: rec.cameras["entrance"].stats.last_error == "stream ended", 40, "the end of the stream")
    packets = [p for _, ps in stored(app, "entrance") for p in ps]
    with Session(app.engine) as s:
        info = app.store.reader(s, index.timeline(s, "entrance", 0, 2**62, max_segment_us=2**62)[0]).header.stream
    w0 = (packets[0].wall_us - 35 * MIN) // 1_000_000 * 1_000_000
    w1 = w0 + 30 * MIN
    seed_window(app, "entrance", info, packets, w0, w1)
    seed_window(app, "hall", info, packets, w0 + 6 * MIN, w0 + 9 * MIN)
    with Session(app.engine) as s, s.begin():
        for name, role in USERS.items():
            index.add_user(s, name, role=role, password_hash=password_hash(), now_us=app.clock.now_us(),
                           must_change=False)
    from api.app import create_app

    api = create_app(app)
    env = ApiEnv(app, api, app.clock)
    t = env.file_ticket("olga", cameras=["entrance", "hall"], start_us=w0, end_us=w1)["id"]
    env.approve(t, "mia")
    with Served(api) as served:
        yield {"env": env, "base": f"http://127.0.0.1:{served.port}", "ticket": t, "w0": w0, "w1": w1}


class _Web:
    def __init__(self, base):
        self.base = base

    def url(self, path):
        return self.base + path


def _poll(page, js: str, what: str, timeout_s: float = 30.0):
    """Poll a JS expression (the pages' CSP refuses wait_for_function's eval)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(f"() => {js}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {js}")
        time.sleep(0.1)


def _clock_us(page) -> int:
    return int(page.locator("#cp-clock").get_attribute("data-us") or 0)


def test_operator_finds_and_plays_in_the_continuous_player(player_web, browser):
    w, t, w0, w1 = player_web, player_web["ticket"], player_web["w0"], player_web["w1"]
    page = browser.new_page()
    fragments = []
    page.on("response", lambda r: fragments.append(r.url) if "/fragment?" in r.url else None)
    sign_in(page, _Web(w["base"]), "olga")
    page.goto(w["base"] + f"/tickets/{t}")
    assert page.locator("#cplayer").is_visible()
    page.evaluate("() => { window.vmsMarker = 'still here'; }")

    # hover the timeline: a thumbnail and its clock time
    strip = page.locator(".camera-timeline[data-camera=entrance] .cp-strip")
    _poll(page, "document.querySelector('.camera-timeline[data-camera=entrance] canvas.cp-heat').dataset.loaded",
          "the activity heat strip")
    box = strip.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    _poll(page, "(document.querySelector('#cp-thumb img').getAttribute('src') || '').startsWith('data:image/jpeg')",
          "the hover thumbnail")
    _poll(page, "document.querySelector('#cp-thumb img').dataset.frameUs", "the thumbnail's frame time")
    shown = page.locator("#cp-thumb .cp-thumb-time").inner_text()
    hovered = w0 + (w1 - w0) // 2
    shown_us = round(datetime.strptime(shown, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE).timestamp() * 1e6)
    assert abs(shown_us - hovered) <= 5_000_000, (shown, local(hovered))  # the keyframe there (a pixel is 1.5 s)
    screenshot(page, "operator-player-hover")
    page.mouse.move(0, 0)

    # seek to minute 7 with the seek bar: no page load, the clock says 7 minutes into the window
    page.evaluate("() => { const s = document.getElementById('cp-seek'); s.value = '420'; "
                  "s.dispatchEvent(new Event('change')); }")
    _poll(page, f"Math.abs(Number(document.getElementById('cp-clock').dataset.us) - {w0 + 7 * MIN}) < 1e6",
          "the clock at minute 7")
    assert page.locator("#cp-clock").inner_text() in {local(w0 + 7 * MIN + d) for d in (-1_000_000, 0, 1_000_000)}
    assert page.evaluate("() => window.vmsMarker") == "still here"

    # play at 4x
    page.select_option("#cp-speed", "4")
    page.click("#cp-play")
    _poll(page, "document.querySelector('#cp-grid video').playbackRate === 4 && "
                "!document.querySelector('#cp-grid video').paused", "playing at 4x")
    start_clock, start_wall = _clock_us(page), time.monotonic()
    _poll(page, f"Number(document.getElementById('cp-clock').dataset.us) > {start_clock + 8_000_000}",
          "8 s of footage", timeout_s=20)
    rate = (_clock_us(page) - start_clock) / 1e6 / (time.monotonic() - start_wall)
    assert 2.0 < rate < 6.0, rate  # about four seconds of footage per second

    # the second camera side by side, in sync with the first
    page.check("input[name=cp-cam][value=hall]")
    _poll(page, "document.querySelectorAll('#cp-grid video').length === 2", "two tiles")
    page.click("#cp-play") if page.locator("#cp-play").inner_text() != "Pause" else None
    _poll(page, "[...document.querySelectorAll('#cp-grid video')].every(v => !v.paused && v.readyState >= 3)",
          "both cameras playing")
    time.sleep(1.0)
    drift = page.evaluate("() => { const v = [...document.querySelectorAll('#cp-grid video')]; "
                          "return Math.abs(v[0].currentTime - v[1].currentTime); }")
    assert drift < 0.5, drift
    screenshot(page, "operator-player-side-by-side")

    # one frame forward: paused, the clock moves by one frame (1/15 s) or less than a second
    page.click("#cp-play")
    before = _clock_us(page)
    page.click("#cp-step")
    _poll(page, f"Number(document.getElementById('cp-clock').dataset.us) !== {before}", "a frame step")
    assert 0 < _clock_us(page) - before < 1_000_000

    # a region search on entrance: a rectangle the object crosses, a hit, played from there
    panel = page.locator(".cp-search[data-camera=entrance]")
    panel.locator(".cp-search-open").click()
    _poll(page, "(document.querySelector('.cp-search[data-camera=entrance] .cp-frame img').getAttribute('src') "
                "|| '').startsWith('data:')", "the search picture")
    frame = panel.locator(".cp-frame img").bounding_box()
    x0, x1 = 0.45, 0.6  # the object (80 px wide, y 120-200 of 360) crosses this
    y0, y1 = (TOP + 10) / HEIGHT, (TOP + SIDE - 10) / HEIGHT
    assert WIDTH and SIDE
    page.mouse.move(frame["x"] + frame["width"] * x0, frame["y"] + frame["height"] * y0)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * x1, frame["y"] + frame["height"] * y1, steps=5)
    page.mouse.up()
    panel.locator(".cp-search-start").click()
    _poll(page, "document.querySelectorAll('.cp-search[data-camera=entrance] .cp-hits li').length > 0",
          "a search hit", timeout_s=90)
    hit = panel.locator(".cp-hits li").first
    at = int(hit.get_attribute("data-at"))
    assert w0 <= at < w1
    page.select_option("#cp-speed", "1")
    hit.locator("a.cp-hit-play").click()
    _poll(page, f"(us => us > {at - 1_000_000} && us < {at + 3_000_000})"
                "(Number(document.getElementById('cp-clock').dataset.us))", "the clock at the hit")
    screenshot(page, "operator-player-search")
    if panel.get_attribute("data-state") == "running":
        panel.locator(".cp-search-cancel").click()
        _poll(page, "document.querySelector('.cp-search[data-camera=entrance]').dataset.state !== 'running'",
              "the search stopped")
    assert page.evaluate("() => window.vmsMarker") == "still here"  # all of it without a page load

    # next activity: forward to where the heat strip says something moves
    before = _clock_us(page)
    page.click("#cp-next")
    _poll(page, f"Number(document.getElementById('cp-clock').dataset.us) > {before + 500_000}", "next activity")
    level = page.evaluate("() => { const a = window.vmsPlayer.levels.entrance; const us = Number("
                          "document.getElementById('cp-clock').dataset.us); "
                          f"return a.levels[Math.floor((us - {w0}) / (a.step * 1e6))]; }}")
    assert level is not None and level >= 15, level

    # outside the window: refused
    status = page.evaluate(f"() => fetch('/api/tickets/{t}/cameras/entrance/thumbnail?at={iso(w0 - MIN)}')"
                           ".then(r => r.status)")
    assert status == 403

    entries = w["env"].client("aud").get("/api/audit", params={"ticket_id": t, "action": "footage."}).json()["items"]
    pages = [e for e in entries if e["action"] == "footage.page" and e["actor"] == "olga"]
    plays = [e for e in entries if e["action"] == "footage.play" and e["outcome"] == "ok"]
    assert len(pages) == 1
    assert 1 <= len(plays) <= 3 < len(fragments)  # one per play (the second camera started one), not per fragment


def test_without_media_source_the_plain_player_stays(web, browser):
    """A browser without Media Source Extensions gets the page as before: no continuous player, the plain
    <video> of a recorded part, playable."""
    f = web.footage
    t = web.env.file_ticket("olga", cameras=["entrance"], start_us=f.first_us - 1_000_000,
                            end_us=f.last_us + 1_000_000)["id"]
    web.env.approve(t, "mia")
    page = browser.new_page()
    page.add_init_script("delete window.MediaSource; delete window.ManagedMediaSource;")
    sign_in(page, web, "olga")
    page.goto(web.url(f"/tickets/{t}"))
    assert page.evaluate("() => typeof window.MediaSource") == "undefined"
    assert not page.locator("#cplayer").is_visible() and page.locator("#player").is_visible()
    page.locator("#player").evaluate("v => { v.muted = true; return v.play(); }")
    _poll(page, "document.getElementById('player').currentTime > 1", "the plain player playing")
