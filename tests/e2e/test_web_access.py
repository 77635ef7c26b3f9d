"""Every page and form of the web UI against every role (and anonymous), without a
browser: allowed, refused with a page (403, HTML), or sent to sign-in, as the access policy says.

Who may use a page is read from the app (the action its dependencies declare) and the policy's table
(tests/support/route_policy.py); the matrix here builds one request per page and must name every web route,
so a new page cannot slip in without a rule and a request.  Allowed means: not 401/403, never 5xx, and an HTML page or a
redirect (a 404/409/422 page for its own reasons is fine)."""

from __future__ import annotations

from urllib.parse import quote

from api import web
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import PASSWORD
from tests.support.route_policy import PUBLIC, allowed_users, route_actions

ANON, OPERATOR, MANAGER, AUDITOR, ADMIN = "anonymous", "olga", "mia", "aud", "adam"
JOB, PACKAGE = "0" * 16, "0" * 32


def _ticket(env):
    return env.file_ticket("olga")["id"]


# (method, path template) -> builder returning (url, form fields); who may is the access policy's
MATRIX = {
    ("GET", "/signin"): (lambda env: ("/signin", None)),
    ("POST", "/signin"): (lambda env: ("/signin", {"name": "otto", "password": PASSWORD})),
    ("GET", "/lang/{code}"): (lambda env: ("/lang/en?next=/tickets", None)),
    ("POST", "/signout"): (lambda env: ("/signout", {})),
    ("GET", "/"): (lambda env: ("/", None)),
    ("GET", "/password"): (lambda env: ("/password", None)),
    ("POST", "/password"): (lambda env: ("/password", {
        "current_password": PASSWORD, "new_password": PASSWORD, "new_password_again": PASSWORD})),  # 422: same
    ("GET", "/tickets"): (lambda env: ("/tickets", None)),
    ("GET", "/queue"): (lambda env: ("/queue", None)),
    ("GET", "/tickets/new"): (lambda env: ("/tickets/new", None)),
    ("POST", "/tickets/new"): (lambda env: ("/tickets/new", {"cameras": "hall", "start": "x"})),  # 422
    ("GET", "/tickets/{ticket_id}"): (lambda env: (f"/tickets/{_ticket(env)}", None)),
    ("GET", "/tickets/{ticket_id}/doorlog"): (lambda env: (f"/tickets/{_ticket(env)}/doorlog", None)),
    ("POST", "/tickets/{ticket_id}/doorlog/identifier"): (lambda env: (  # 409: no door log configured
        f"/tickets/{_ticket(env)}/doorlog/identifier", {"identifier": "card1234"})),
    ("POST", "/tickets/{ticket_id}/decide"): (lambda env: (
        f"/tickets/{_ticket(env)}/decide", {"decision": "deny", "reason": "no"})),
    ("POST", "/tickets/{ticket_id}/close"): (lambda env: (f"/tickets/{_ticket(env)}/close", {"reason": "x"})),
    ("POST", "/tickets/{ticket_id}/export"): (lambda env: (  # 409: not approved yet
        f"/tickets/{env.file_ticket('olga', action='export')['id']}/export", {})),
    ("POST", "/exports/{job_id}/cancel"): (lambda env: (f"/exports/{JOB}/cancel", {})),  # 404 page
    ("GET", "/exports"): (lambda env: ("/exports", None)),
    ("POST", "/packages/{package_id}/links"): (lambda env: (f"/packages/{PACKAGE}/links", {})),
    ("POST", "/links/{delivery_id}/revoke"): (lambda env: ("/links/999999/revoke", {})),
    ("POST", "/packages/{package_id}/delete"): (lambda env: (f"/packages/{PACKAGE}/delete", {})),
    ("GET", "/audit"): (lambda env: ("/audit", None)),
    ("GET", "/audit/verify"): (lambda env: ("/audit/verify", None)),
    ("GET", "/retention"): (lambda env: ("/retention", None)),
    ("GET", "/deletions"): (lambda env: ("/deletions", None)),
    ("GET", "/admin"): (lambda env: ("/admin", None)),
    ("GET", "/admin/users"): (lambda env: ("/admin/users", None)),
    ("POST", "/admin/users"): (lambda env: ("/admin/users", {"op": "role", "name": "otto",
                                                                       "role": "operator"})),
    ("GET", "/cameras"): (lambda env: ("/cameras", None)),
    ("GET", "/admin/cameras/new"): (lambda env: ("/admin/cameras/new", None)),
    ("POST", "/admin/cameras/new"): (lambda env: ("/admin/cameras/new", {  # 422: refused by the config check
        "id": "x", "source": "rtsp://127.0.0.1:1/x", "retain_days": "x"})),
    ("POST", "/admin/cameras/onvif/lookup"): (lambda env: ("/admin/cameras/onvif/lookup", {  # 409: nobody there
        "onvif": "stream", "onvif_address": "127.0.0.1:1"})),
    ("GET", "/admin/cameras/{camera_id}"): (lambda env: ("/admin/cameras/hall", None)),
    ("POST", "/admin/cameras/{camera_id}"): (lambda env: ("/admin/cameras/hall", {  # 422
        "op": "save", "source": "rtsp://127.0.0.1:1/hall", "retain_days": "999"})),
    ("POST", "/account-changes"): (lambda env: ("/account-changes", {"op": "confirm", "entry": "999999",
                                                                      "reason": "x", "back": "/audit"})),
    ("GET", "/health"): (lambda env: ("/health", None)),
    ("GET", "/live"): (lambda env: ("/live", None)),
    ("GET", "/live/{camera_id}"): (lambda env: ("/live/hall", None)),  # 404 page: no live view on hall
    ("GET", "/admin/live"): (lambda env: ("/admin/live", None)),
    ("POST", "/packages/{package_id}/release"): (lambda env: (f"/packages/{PACKAGE}/release", {"reason": "x"})),
}


def web_routes() -> set[tuple[str, str]]:
    """Every (method, path) of the page routers api/web installs."""
    return {(method, route.path) for router in web.routers() for route in router.routes
            for method in route.methods - {"HEAD"}}


def test_matrix_names_every_web_route():
    assert web_routes() == set(MATRIX)


def test_every_role_against_every_page(sqlite_api_env):
    env = sqlite_api_env
    actions = route_actions(env.api)
    failures = []
    for (method, path), build in MATRIX.items():
        allowed = allowed_users(actions[(method, path)])
        for who in (ANON, OPERATOR, MANAGER, AUDITOR, ADMIN):
            url, form = build(env)
            if who == ANON:
                client = env.anonymous()
            else:
                client = env.client(who, fresh=path in ("/signout", "/password", "/signin"))
            if method == "POST" and path == "/signin":
                client.get("/signin")  # the sign-in form's double-submit cookie
                form = dict(form, signin_token=client.cookies.get("vms_signin", ""))
            r = client.request(method, url, data=form, follow_redirects=False)
            where = f"{who} {method} {url}: {r.status_code}"
            ctype = r.headers.get("content-type", "")
            if r.status_code >= 500:
                failures.append(f"{where} (server error)")
            elif who in allowed:
                if r.status_code in (401, 403) or not (ctype.startswith("text/html") or r.status_code in (302, 303)):
                    failures.append(f"{where} should be allowed ({ctype})")
            elif who == ANON and (method, path) not in PUBLIC:
                if r.status_code != 303 or not r.headers["location"].startswith("/signin"):
                    failures.append(f"{where} should send to sign-in")
            elif r.status_code != 403 or not ctype.startswith("text/html"):
                failures.append(f"{where} should be refused with a page ({ctype})")
    assert not failures, "\n".join(failures)


BAD_TEXTS = ["", "\x00", "x" * 5000, "a\x1fb", "'; DROP TABLE tickets; --", "<script>alert(1)</script>", "é" * 300,
             "0001-01-01T00:00", "9999-12-31T23:59",  # well-formed times at the ends of the calendar
             "x" * 100_000, "a\u202eb\u200f", "\r\nSet-Cookie: x=1", "9" * 400, "-9223372036854775809", "1e308",
             "NaN", "2025-02-30T10:00", "99999-01-01T00:00", "../../etc/passwd"]


def test_bad_input_gets_a_page_never_a_server_error(sqlite_api_env):
    env = sqlite_api_env
    ticket = env.file_ticket("olga")["id"]
    failures = []

    def check(who, method, url, **kw):
        client = env.anonymous() if who == ANON else env.client(who)
        if "params" in kw:  # a URL longer than the client sends is no test of the server
            kw["params"] = {k: v[:8000] for k, v in kw["params"].items()}
        r = client.request(method, url, follow_redirects=False, **kw)
        if r.status_code >= 500:
            failures.append(f"{who} {method} {url} {kw}: {r.status_code}")
        return r

    for text in BAD_TEXTS:
        check(OPERATOR, "POST", "/tickets/new", data={
            "cameras": [text, "entrance"], "start": text, "end": "2025-12-31T23:30", "description": text,
            "purpose": text, "legal_basis": text, "action": text, "recipient": text})
        check(OPERATOR, "POST", "/tickets/new", data={
            "cameras": "entrance", "start": "2025-12-31T22:00", "end": "2025-12-31T23:00", "description": text,
            "purpose": "p", "legal_basis": "l", "action": "view", "recipient": "police"})
        check(MANAGER, "POST", f"/tickets/{ticket}/decide", data={"decision": text, "reason": text})
        check(MANAGER, "POST", f"/tickets/{ticket}/decide", data={"decision": "deny", "reason": text})
        check(AUDITOR, "GET", "/audit", params={"actor": text, "action": text, "ticket": text, "since": text,
                                                "until": text, "after": text})
        check(AUDITOR, "GET", "/deletions", params={"camera": text, "days": text})
        check(ADMIN, "POST", "/admin/users", data={"op": "add", "name": text, "role": text})
        check(ADMIN, "POST", "/admin/users", data={"op": text, "name": text})
        check(MANAGER, "POST", f"/packages/{PACKAGE}/links", data={"recipient": text, "expires_hours": text})
        check(OPERATOR, "GET", f"/tickets/{ticket}", params={"camera": text, "at": text, "done": text})
        check(OPERATOR, "GET", "/tickets", params={"state": text, "offset": text})
        check(ANON, "POST", "/signin", data={"name": text, "password": text, "next": text})
        check(ANON, "GET", "/signin", params={"next": text})
        check(ANON, "GET", "/lang/xx", params={"next": text})
        check(MANAGER, "POST", f"/tickets/{ticket}/close", data={"reason": text, "outcome": text})
        check(ADMIN, "POST", "/account-changes", data={"op": "confirm", "entry": text, "reason": text, "back": text})
        check(ADMIN, "POST", "/admin/users", data={"op": "contact", "name": "olga", "email": text, "language": text})
        check(ADMIN, "POST", "/admin/cameras/new", data={"id": text, "name": text, "place": text, "source": text,
                                                         "retain_days": text, "transport": text, "username": text})
        check(ADMIN, "POST", "/admin/cameras/hall", data={"op": "save", "name": text, "source": "rtsp://127.0.0.1:1/h",
                                                          "retain_days": text, "transport": text, "password": text})
        check(OPERATOR, "POST", f"/tickets/{ticket}/doorlog/identifier", data={"identifier": text, "door": text})
        check(MANAGER, "POST", f"/tickets/{ticket}/export", data={"cameras": text, "start": text, "end": text})
        check(MANAGER, "POST", f"/packages/{PACKAGE}/release", data={"reason": text})
        segment = quote(text[:40], safe="") or "0"
        check(MANAGER, "POST", f"/packages/{segment}/delete", data={"reason": text})
        check(MANAGER, "POST", f"/links/{segment}/revoke", data={})
        check(MANAGER, "POST", f"/exports/{segment}/cancel", data={})
    for path in ("/tickets/new", "/admin/users", f"/tickets/{ticket}/close"):  # bytes that are not UTF-8
        who = ADMIN if path.startswith("/admin") else OPERATOR
        check(who, "POST", path, content=b"description=%ff%fe&reason=\xff\xfe",
              headers={"content-type": "application/x-www-form-urlencoded"})
    assert not failures, "\n".join(failures)


def _config_text(env) -> str:
    from pathlib import Path

    return Path(env.app.config_path).read_text() if env.app.config_path else ""


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(sqlite_api_env):
    """Every page form (but sign-in, which has its own token) posted by a signed-in person without the
    session's CSRF token, or with a wrong one: a 403 page, and the ticket, the users and the cameras as before."""
    env = sqlite_api_env
    ticket = env.file_ticket("olga")["id"]
    before = (env.client(ADMIN).get("/api/users").json(), env.client(MANAGER).get(f"/api/tickets/{ticket}").json(),
              _config_text(env))
    failures = []
    for (method, path), build in MATRIX.items():
        if method != "POST" or path == "/signin":
            continue
        url, form = build(env)
        form = dict(form or {}, decision="approve", reason="Incident confirmed", op="add", name="mallory",
                    role="admin", id="evil", source="rtsp://127.0.0.1:1/evil", retain_days="1")
        url = url.replace("{ticket_id}", str(ticket))
        for token in (None, "0" * 43, "é"):
            who = ADMIN if path.startswith(("/admin", "/account-changes")) else MANAGER
            client = env.client(who, fresh=True)
            client.headers.pop("X-CSRF-Token", None)
            data = form if token is None else dict(form, csrf_token=token)
            r = client.post(url, data=data, follow_redirects=False)
            if r.status_code != 403 or not r.headers.get("content-type", "").startswith("text/html"):
                failures.append(f"{path} token={token!r}: {r.status_code} {r.headers.get('content-type')}")
    after = (env.client(ADMIN).get("/api/users").json(), env.client(MANAGER).get(f"/api/tickets/{ticket}").json(),
             _config_text(env))
    assert not failures, "\n".join(failures)
    assert after == before


def test_sign_in_only_returns_to_pages_of_this_site():
    from api.web.session import safe_next

    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", "", None,
                "/\x00x"):
        assert safe_next(bad) == "/"
    assert safe_next("/tickets/3?camera=hall") == "/tickets/3?camera=hall"
