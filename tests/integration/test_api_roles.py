"""Every role (and anonymous) against every route: allowed or refused.

The matrix must name every route of the app, so a new route cannot slip in
without a decision about who may use it.  Allowed means: not 401/403 (the
request may still be a 404/409/422 for its own reasons) and never 5xx."""

from __future__ import annotations

import itertools

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import PASSWORD, iso
from tests.support.delivery_matrix import EXPORT_MATRIX

ANON, OPERATOR, MANAGER, AUDITOR, ADMIN = "anonymous", "olga", "mia", "aud", "adam"
EVERYONE = {ANON, OPERATOR, MANAGER, AUDITOR, ADMIN}
SIGNED_IN = {OPERATOR, MANAGER, AUDITOR, ADMIN}
_names = itertools.count()


def _requested(env):
    return env.file_ticket("olga")["id"]


def _approved(env):
    t = env.file_ticket("olga")["id"]
    env.approve(t, "max")
    return t


def _play(env):
    t = _approved(env)
    now = env.clock.now_us()
    return f"/api/tickets/{t}/cameras/entrance/play", {"params": {"start": iso(now - 3000_000_000),
                                                                    "end": iso(now - 2990_000_000)}}


# (method, path template) -> (who may, request builder returning (url, httpx kwargs))
MATRIX = {
    ("GET", "/api/health"): (EVERYONE, lambda env: ("/api/health", {})),
    ("POST", "/api/auth/signin"): (EVERYONE, lambda env: ("/api/auth/signin",
                                                          {"json": {"name": "otto", "password": PASSWORD}})),
    ("POST", "/api/auth/signout"): (SIGNED_IN, lambda env: ("/api/auth/signout", {})),
    ("GET", "/api/auth/me"): (SIGNED_IN, lambda env: ("/api/auth/me", {})),
    ("POST", "/api/auth/password"): (SIGNED_IN, lambda env: (
        "/api/auth/password", {"json": {"current_password": PASSWORD, "new_password": PASSWORD}})),  # 422: same
    ("GET", "/api/auth/tokens"): (SIGNED_IN, lambda env: ("/api/auth/tokens", {})),
    ("POST", "/api/auth/tokens"): (SIGNED_IN, lambda env: ("/api/auth/tokens", {"json": {"label": "m", "days": 1}})),
    ("DELETE", "/api/auth/tokens/{token_id}"): (SIGNED_IN, lambda env: ("/api/auth/tokens/999999", {})),
    ("GET", "/api/users"): ({ADMIN}, lambda env: ("/api/users", {})),
    ("POST", "/api/users"): ({ADMIN}, lambda env: ("/api/users", {"json": {"name": f"new{next(_names)}",
                                                                           "role": "operator"}})),
    ("GET", "/api/users/{name}"): ({ADMIN}, lambda env: ("/api/users/otto", {})),
    ("PATCH", "/api/users/{name}"): ({ADMIN}, lambda env: ("/api/users/otto", {"json": {"role": "operator"}})),
    ("POST", "/api/users/{name}/reset-password"): ({ADMIN}, lambda env: ("/api/users/otto/reset-password", {})),
    ("GET", "/api/tickets"): ({OPERATOR, MANAGER, AUDITOR}, lambda env: ("/api/tickets", {})),
    ("POST", "/api/tickets"): ({OPERATOR, MANAGER}, lambda env: ("/api/tickets", {"json": {
        "cameras": ["hall"], "start": iso(env.clock.now_us() - 7200_000_000),
        "end": iso(env.clock.now_us() - 3600_000_000), "description": "d", "purpose": "p", "legal_basis": "l",
        "action": "view", "recipient": "internal"}})),
    ("GET", "/api/tickets/{ticket_id}"): ({OPERATOR, MANAGER, AUDITOR},
                                          lambda env: (f"/api/tickets/{_requested(env)}", {})),
    ("POST", "/api/tickets/{ticket_id}/approve"): ({MANAGER}, lambda env: (
        f"/api/tickets/{_requested(env)}/approve", {"json": {"reason": "ok"}})),
    ("POST", "/api/tickets/{ticket_id}/deny"): ({MANAGER}, lambda env: (
        f"/api/tickets/{_requested(env)}/deny", {"json": {"reason": "no"}})),
    ("POST", "/api/tickets/{ticket_id}/close"): ({OPERATOR, MANAGER}, lambda env: (
        f"/api/tickets/{_requested(env)}/close", {"json": {"reason": "done"}})),
    ("GET", "/api/tickets/{ticket_id}/holds"): ({OPERATOR, MANAGER, AUDITOR},
                                                lambda env: (f"/api/tickets/{_approved(env)}/holds", {})),
    ("GET", "/api/cameras"): (SIGNED_IN, lambda env: ("/api/cameras", {})),
    ("GET", "/api/tickets/{ticket_id}/footage"): ({OPERATOR, MANAGER},
                                                  lambda env: (f"/api/tickets/{_approved(env)}/footage", {})),
    ("GET", "/api/tickets/{ticket_id}/cameras/{camera_id}/play"): ({OPERATOR, MANAGER}, _play),
    ("GET", "/api/audit"): ({AUDITOR}, lambda env: ("/api/audit", {})),
    ("GET", "/api/audit/export.csv"): ({AUDITOR}, lambda env: ("/api/audit/export.csv", {})),
    ("GET", "/api/audit/verify"): ({AUDITOR}, lambda env: ("/api/audit/verify", {})),
    ("GET", "/healthz"): (EVERYONE, lambda env: ("/healthz", {})),
    ("GET", "/readyz"): (EVERYONE, lambda env: ("/readyz", {})),
    ("GET", "/metrics"): ({ADMIN, AUDITOR}, lambda env: ("/metrics", {})),  # test client is not loopback
}

MATRIX.update(EXPORT_MATRIX)


def app_routes(api) -> set[tuple[str, str]]:
    """Every (method, path) in the OpenAPI schema (which must describe every route)."""
    return {(m.upper(), path) for path, ops in api.openapi()["paths"].items() for m in ops}


def test_matrix_names_every_route(sqlite_api_env):
    assert app_routes(sqlite_api_env.api) == set(MATRIX)


def test_every_role_against_every_route(api_env):
    env = api_env
    failures = []
    for (method, _path), (allowed, build) in MATRIX.items():
        for who in (ANON, OPERATOR, MANAGER, AUDITOR, ADMIN):
            url, kwargs = build(env)
            if who == ANON:
                client = env.anonymous()
            elif method == "POST" and url.endswith(("/signin", "/signout", "/password")):
                client = env.client(who, fresh=True)  # do not end the shared session
            else:
                client = env.client(who)
            r = client.request(method, url, **kwargs)
            refused = r.status_code in (401, 403)
            if r.status_code >= 500 or refused == (who in allowed):
                failures.append(f"{who:9} {method} {url}: {r.status_code} {r.text[:160]}")
            elif refused and r.status_code != (401 if who == ANON else 403):
                failures.append(f"{who:9} {method} {url}: refused with {r.status_code}")
    assert not failures, "\n".join(failures)
