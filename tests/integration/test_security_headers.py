"""Security headers (api/headers.py, api/web/render.py): a Content-Security-Policy on every HTML page the
app serves, signed in or not, the API docs included; nosniff everywhere; Strict-Transport-Security on every
answer over HTTPS (the appliance's own TLS, or a trusted proxy's X-Forwarded-Proto) and never over HTTP."""

from __future__ import annotations

import socket
import ssl
import threading
import time
import urllib.request
from types import SimpleNamespace

import pytest

from api import web
from api.headers import HSTS, add_headers
from api.web.render import CSP
from tests.support.api_env import *  # noqa: F403 (fixtures)
from vms.ops.tls import write_self_signed

WHO = ("anonymous", "olga", "mia", "aud", "adam")
BOGUS_TOKEN = "A" * 43


def _page_urls(env) -> list[str]:
    """One URL for every GET page of the web UI, the API docs and a recipient's link page."""
    ticket = env.file_ticket("olga")["id"]
    fill = {"{ticket_id}": str(ticket), "{code}": "en", "{camera_id}": "entrance"}
    urls = ["/api/docs", f"/d/{BOGUS_TOKEN}", "/no-such-page"]
    for router in web.routers():
        for route in router.routes:
            if "GET" in route.methods:
                path = route.path
                for name, value in fill.items():
                    path = path.replace(name, value)
                assert "{" not in path, f"no value for the parameter of {route.path}"
                urls.append(path)
    return urls


def _csp_ok(value: str | None) -> bool:
    if not value:
        return False
    directives = {d.split()[0]: d.split()[1:] for d in value.split(";") if d.strip()}
    return directives.get("script-src") == ["'self'"] and directives.get("object-src") == ["'none'"] \
        and "frame-ancestors" in directives


def test_every_html_page_carries_a_csp(sqlite_api_env):
    env = sqlite_api_env
    urls = _page_urls(env)
    html, failures = 0, []
    for who in WHO:
        client = env.anonymous() if who == "anonymous" else env.client(who)
        for url in urls:
            r = client.get(url, headers={"accept": "text/html"}, follow_redirects=True)
            where = f"{who} GET {url} -> {r.status_code} {r.url.path}"
            if not r.headers.get("content-type", "").startswith("text/html"):
                if url != "/no-such-page":  # an unknown path is problem+json, as in the API
                    failures.append(f"{where}: not a page ({r.headers.get('content-type')})")
                continue
            html += 1
            if not _csp_ok(r.headers.get("content-security-policy")):
                failures.append(f"{where}: CSP {r.headers.get('content-security-policy')!r}")
            if r.headers.get("x-content-type-options") != "nosniff":
                failures.append(f"{where}: no nosniff")
    assert not failures, "\n".join(failures)
    assert html >= len(WHO) * (len(urls) - 1)


def test_the_docs_page_loads_nothing_but_the_appliance_s_files(sqlite_api_env):
    c = sqlite_api_env.anonymous()
    r = c.get("/api/docs")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    assert "<script>" not in r.text and "http://" not in r.text and "https://" not in r.text
    for name, ctype in (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"),
                        ("favicon-32x32.png", "image/png")):
        a = c.get(f"/api/docs/assets/{name}")
        assert a.status_code == 200 and a.headers["content-type"].startswith(ctype) and len(a.content) > 100
    # only the files the page uses: not the package's index.html (a demo schema on the internet), nor a way out
    for name in ("index.html", "swagger-initializer.js", "..%2F__init__.py", "%2e%2e"):
        assert c.get(f"/api/docs/assets/{name}").status_code == 404
    assert c.get("/static/api-docs.js").status_code == 200


def test_the_middleware_adds_only_what_is_missing():
    page = add_headers([(b"content-type", b"text/html; charset=utf-8")], https=False)
    assert (b"content-security-policy", CSP.encode()) in page and (b"x-content-type-options", b"nosniff") in page
    assert not any(name == b"strict-transport-security" for name, _ in page)
    own = add_headers([(b"Content-Type", b"text/html"), (b"Content-Security-Policy", b"default-src 'none'")],
                      https=True)
    assert [v for n, v in own if n.lower() == b"content-security-policy"] == [b"default-src 'none'"]
    assert (b"strict-transport-security", HSTS) in own
    data = add_headers([(b"content-type", b"application/json")], https=True)
    assert not any(name == b"content-security-policy" for name, _ in data)


@pytest.mark.parametrize("path", ["/api/health", "/signin", "/", "/static/web.css", "/api/docs",
                                  "/api/openapi.json", "/api/tickets", "/no-such-page"])
def test_hsts_over_https_and_never_over_http(sqlite_api_env, path):
    env = sqlite_api_env
    env.base_url = "https://testserver"
    r = env.anonymous().get(path, follow_redirects=False)
    assert r.headers.get("strict-transport-security") == "max-age=31536000", (path, r.status_code)
    assert r.headers.get("x-content-type-options") == "nosniff"
    env.base_url = "http://testserver"
    r = env.anonymous().get(path, follow_redirects=False)
    assert "strict-transport-security" not in r.headers, (path, r.status_code)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Serve:
    """``vms serve``'s own uvicorn set-up (vms/serve.py) for this app and [api] config, in a thread."""

    def __init__(self, env, **api_config):
        from vms.serve import _uvicorn_server

        cfg = env.app.config.api.model_copy(update={"host": "127.0.0.1", "port": _free_port(), **api_config})
        services = SimpleNamespace(app=SimpleNamespace(config=SimpleNamespace(api=cfg)), api=env.api)
        self.server, self.scheme = _uvicorn_server(services)
        self.base = f"{self.scheme}://127.0.0.1:{cfg.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _headers(url: str, context=None, *, forwarded_proto: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"X-Forwarded-Proto": forwarded_proto} if forwarded_proto else {})
    with urllib.request.urlopen(req, timeout=10, context=context) as r:
        return {k.lower(): v for k, v in r.headers.items()}


def test_hsts_from_the_appliance_s_own_tls_and_a_trusted_proxy(sqlite_api_env, tmp_path):
    env = sqlite_api_env
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    ctx = ssl.create_default_context(cafile=str(cert))
    with _Serve(env, tls_cert=cert, tls_key=key) as served:
        assert served.scheme == "https"
        for path in ("/api/health", "/signin", "/api/docs"):
            assert _headers(served.base + path, ctx).get("strict-transport-security") == "max-age=31536000"
    with _Serve(env) as served:
        assert served.scheme == "http"
        assert "strict-transport-security" not in _headers(served.base + "/signin")
        # a client's own X-Forwarded-Proto is not believed without trusted_proxies
        assert "strict-transport-security" not in _headers(served.base + "/signin", forwarded_proto="https")
    with _Serve(env, trusted_proxies=["127.0.0.1"]) as served:  # TLS ends at a reverse proxy on this host
        assert "strict-transport-security" in _headers(served.base + "/signin", forwarded_proto="https")
        assert "strict-transport-security" not in _headers(served.base + "/signin")
