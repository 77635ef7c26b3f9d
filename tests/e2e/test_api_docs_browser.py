"""Chromium opens the API documentation (``/api/docs``) with every request that would leave the
appliance blocked: Swagger UI renders from the appliance's own files, under the page's
Content-Security-Policy (no 'unsafe-inline' script), and nothing is fetched from elsewhere."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Served, screenshot
from tests.support.api_env import make_api_env

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture
def docs_base(appliance_factory, sqlite_url, fake_clock):
    env = make_api_env(appliance_factory, sqlite_url, fake_clock)
    with Served(env.api) as served:
        yield f"http://127.0.0.1:{served.port}"


def test_api_docs_render_offline_under_the_csp(docs_base, browser):
    page = browser.new_page()
    left, requested, errors = [], [], []

    def only_the_appliance(route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            requested.append(url)
            route.continue_()
        else:
            left.append(url)
            route.abort()

    page.route("**/*", only_the_appliance)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    response = page.goto(docs_base + "/api/docs")
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split()[1:] == ["'self'"], csp  # no 'unsafe-inline', no 'unsafe-eval'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers  # plain HTTP

    # the operations list, read from /api/openapi.json, shows a known path and operation
    tickets = page.locator(".opblock-summary-path[data-path='/api/tickets']")
    tickets.first.wait_for(timeout=30_000)
    assert page.locator(".info .title").first.inner_text().startswith("vms appliance API")
    assert page.locator(".opblock-summary-method", has_text="POST").count() > 0
    screenshot(page, "api-docs")

    assert not left, f"requests that would have left the appliance: {left}"
    assert any(u.endswith("/api/docs/assets/swagger-ui-bundle.js") for u in requested), requested
    assert any(u.endswith("/api/openapi.json") for u in requested), requested
    assert not errors, errors  # a CSP violation is reported on the console
