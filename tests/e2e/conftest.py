"""Fixtures for the browser tests: the real app under uvicorn on 127.0.0.1, real
footage in the encrypted store, and Debian's Chromium driven by Playwright.

``web`` (fixture): an appliance on SQLite (cameras ``entrance`` and ``hall``,
users of every role from tests/support/api_env.py, a FakeClock), footage of
``entrance`` written from a real H.264 clip in two recordings with a logged
recorder gap between them, the Ed25519 signing key, and the app served by
uvicorn in a thread.  ``web.url(path)`` is the address of a page.

Screenshots: ``VMS_SCREENSHOTS=docs`` saves them into docs/screenshots (the
ones docs/web-ui.md shows); otherwise into a scratch directory.

``browser`` (fixture): Chromium at /usr/bin/chromium (Playwright's own browser
download is not used).  Missing Chromium or Playwright is a skip locally and a
failure with CI=true (``missing_component``).  ``sign_in(page, web, name)``
signs in through the form.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from testkit.footage import ensure_signing_key, read_clip, shift, store_packets
from tests.support.api_env import PASSWORD, make_api_env
from tests.support.fixtures import *  # noqa: F401,F403
from tests.support.fixtures import missing_component

CHROMIUM = os.environ.get("VMS_CHROMIUM", "/usr/bin/chromium")
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
#: where the tests save their screenshots: docs/screenshots with VMS_SCREENSHOTS=docs (to refresh the
#: committed ones), otherwise a scratch directory so an ordinary run leaves the checkout unchanged
SCREENSHOTS = (DOCS_SCREENSHOTS if os.environ.get("VMS_SCREENSHOTS") == "docs"
               else Path(tempfile.gettempdir()) / "vms-web-screenshots")
MINUTE_US = 60_000_000


@dataclass
class Footage:
    camera: str
    first_us: int  # first packet of the first recording
    gap_start_us: int  # the recorder's logged gap between the two recordings
    gap_end_us: int
    last_us: int  # last packet of the second recording


@dataclass
class Web:
    env: object  # tests.support.api_env.ApiEnv
    base: str
    footage: Footage

    @property
    def app(self):
        return self.env.app

    @property
    def clock(self):
        return self.env.clock

    def url(self, path: str) -> str:
        return self.base + path


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    """The ASGI app under a real uvicorn server in a daemon thread."""

    def __init__(self, api):
        import uvicorn

        self.sock = _free_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(api, log_level="warning", lifespan="on", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def store_footage(app, clip_path: Path, camera: str, start_us: int) -> Footage:
    """Two recordings of the clip with a 20 s outage between them, the outage logged
    as a recorder gap (as the recorder does when a stream is lost)."""
    info, packets = read_clip(clip_path, start_us)
    store_packets(app, camera, info, packets)
    duration_us = packets[-1].wall_us - packets[0].wall_us + 1_000_000 // int(info.fps)
    gap_start = start_us + duration_us
    gap_end = gap_start + 20_000_000
    ticks = round((gap_end - start_us) / 1e6 / info.time_base)
    second = shift(packets, wall_us=gap_end - start_us, ticks=ticks)
    store_packets(app, camera, info, second)
    with Session(app.engine) as s, s.begin():
        index.open_gap(s, camera, gap_start, "stream lost (test)")
        index.close_gap(s, camera, gap_end)
    return Footage(camera, start_us, gap_start, gap_end, second[-1].wall_us)


@pytest.fixture
def web(appliance_factory, sqlite_url, fake_clock, clip_factory):
    env = make_api_env(appliance_factory, sqlite_url, fake_clock)
    ensure_signing_key(env.app)
    clip = clip_factory.get(seconds=12)
    footage = store_footage(env.app, clip.path, "entrance", fake_clock.now_us() - 30 * MINUTE_US)
    with Served(env.api) as served:
        yield Web(env, f"http://127.0.0.1:{served.port}", footage)


@pytest.fixture(scope="session")
def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_component("Playwright for Python is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def _chromium(_playwright):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing_component(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    browser = _playwright.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
    yield browser
    browser.close()


@pytest.fixture
def browser(_chromium):
    """A fresh browser context per test (no shared cookies); closed afterwards."""
    contexts = []

    class Browser:
        def new_page(self, **kw):
            kw = {"locale": "da-DK", "timezone_id": "Europe/Copenhagen", "viewport": {"width": 1280, "height": 900}} | kw
            ctx = _chromium.new_context(accept_downloads=True, **kw)
            contexts.append(ctx)
            return ctx.new_page()

    yield Browser()
    for ctx in contexts:
        ctx.close()


def sign_in(page, web: Web, name: str, *, password: str = PASSWORD, next_path: str = "/") -> None:
    page.goto(web.url("/signin" if next_path == "/" else f"/signin?next={next_path}"))
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():  # the POST answers with a redirect; wait for the page it leads to
        page.click("form[action='/signin'] button[type=submit]")


def screenshot(page, name: str) -> None:
    """Save a screenshot of the page (docs/web-ui.md shows them; see SCREENSHOTS)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
