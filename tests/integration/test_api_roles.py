"""Every role (and anonymous) against every API route: allowed or refused, as the access policy says.

Who may use a route is read from the app (the action its dependencies declare) and the policy's table
(tests/support/route_policy.py); this module only builds one request per route.  A new route without a rule
or without a request here fails.  Allowed means: not 401/403 (the request may still be a 404/409/422 for its
own reasons) and never 5xx."""

from __future__ import annotations

import itertools

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import PASSWORD, iso
from tests.support.delivery_matrix import EXPORT_MATRIX
from tests.support.route_policy import NODE_ONLY, check_matrix, route_actions

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


def _finding(env, what: str):
    t = _approved(env)
    now = env.clock.now_us()
    base = f"/api/tickets/{t}/cameras/entrance"
    if what == "activity":
        return f"{base}/activity", {"params": {"start": iso(now - 3000_000_000), "end": iso(now - 2990_000_000)}}
    if what == "thumbnail":
        return f"{base}/thumbnail", {"params": {"at": iso(now - 3000_000_000)}}
    if what == "search":
        return f"{base}/searches", {"json": {"region": {"x": 0.1, "y": 0.1, "w": 0.5, "h": 0.5}}}
    return f"/api/tickets/{t}/searches/0123456789abcdef{what}", {}  # 404 for those who may ask


def _change(env) -> int:
    """A change to an account waiting for a second person, asked for at the console (so neither the admin nor
    the auditor is its requester)."""
    from vms.access import account_changes, users

    name = f"chg{next(_names)}"
    users.add_user(env.app.engine, env.clock, users.CONSOLE, name, "auditor")
    users.set_role(env.app.engine, env.clock, users.CONSOLE, name, "manager")
    return next(c.seq for c in account_changes.open_changes(env.app.engine) if c.user == name)


def _plays(env):
    return f"/api/tickets/{_approved(env)}/plays", {"json": {"cameras": ["entrance"]}}


def _fragment(env):
    t = _approved(env)
    now = env.clock.now_us()
    return f"/api/tickets/{t}/cameras/entrance/fragment", {"params": {"play": "p" * 22,
                                                                       "at": iso(now - 3000_000_000)}}


# (method, path template) -> request builder returning (url, httpx kwargs)
MATRIX = {
    ("GET", "/api/health"): (lambda env: ("/api/health", {})),
    ("POST", "/api/auth/signin"): (lambda env: ("/api/auth/signin",
                                                          {"json": {"name": "otto", "password": PASSWORD}})),
    ("POST", "/api/auth/signout"): (lambda env: ("/api/auth/signout", {})),
    ("GET", "/api/auth/me"): (lambda env: ("/api/auth/me", {})),
    ("POST", "/api/auth/password"): (lambda env: (
        "/api/auth/password", {"json": {"current_password": PASSWORD, "new_password": PASSWORD}})),  # 422: same
    ("GET", "/api/auth/tokens"): (lambda env: ("/api/auth/tokens", {})),
    ("POST", "/api/auth/tokens"): (lambda env: ("/api/auth/tokens", {"json": {"label": "m", "days": 1}})),
    ("DELETE", "/api/auth/tokens/{token_id}"): (lambda env: ("/api/auth/tokens/999999", {})),
    ("GET", "/api/users"): (lambda env: ("/api/users", {})),
    ("POST", "/api/users"): (lambda env: ("/api/users", {"json": {"name": f"new{next(_names)}",
                                                                           "role": "operator"}})),
    ("GET", "/api/users/{name}"): (lambda env: ("/api/users/otto", {})),
    ("PATCH", "/api/users/{name}"): (lambda env: ("/api/users/otto", {"json": {"role": "operator"}})),
    ("POST", "/api/users/{name}/reset-password"): (lambda env: ("/api/users/otto/reset-password", {})),
    ("GET", "/api/account-changes"): (lambda env: ("/api/account-changes", {})),
    ("POST", "/api/account-changes/{entry}/confirm"): (lambda env: (
        f"/api/account-changes/{_change(env)}/confirm", {"json": {"reason": "checked with the library manager"}})),
    ("POST", "/api/account-changes/{entry}/reject"): (lambda env: (
        f"/api/account-changes/{_change(env)}/reject", {"json": {"reason": "not agreed"}})),
    ("GET", "/api/tickets"): (lambda env: ("/api/tickets", {})),
    ("POST", "/api/tickets"): (lambda env: ("/api/tickets", {"json": {
        "cameras": ["hall"], "start": iso(env.clock.now_us() - 7200_000_000),
        "end": iso(env.clock.now_us() - 3600_000_000), "description": "d", "purpose": "p", "legal_basis": "l",
        "action": "view", "recipient": "internal"}})),
    ("GET", "/api/tickets/{ticket_id}"): (lambda env: (f"/api/tickets/{_requested(env)}", {})),
    ("POST", "/api/tickets/{ticket_id}/approve"): (lambda env: (
        f"/api/tickets/{_requested(env)}/approve", {"json": {"reason": "ok"}})),
    ("POST", "/api/tickets/{ticket_id}/deny"): (lambda env: (
        f"/api/tickets/{_requested(env)}/deny", {"json": {"reason": "no"}})),
    ("POST", "/api/tickets/{ticket_id}/close"): (lambda env: (
        f"/api/tickets/{_requested(env)}/close", {"json": {"reason": "done"}})),
    ("GET", "/api/tickets/{ticket_id}/holds"): (lambda env: (f"/api/tickets/{_approved(env)}/holds", {})),
    ("GET", "/api/cameras"): (lambda env: ("/api/cameras", {})),
    # a camera that does not exist: the role rule answers first, then 404 (a live stream would never end)
    ("GET", "/api/cameras/{camera_id}/live"): (lambda env: ("/api/cameras/nosuch/live", {})),
    ("GET", "/api/live/viewers"): (lambda env: ("/api/live/viewers", {})),
    ("GET", "/api/tickets/{ticket_id}/footage"): (lambda env: (f"/api/tickets/{_approved(env)}/footage", {})),
    ("GET", "/api/tickets/{ticket_id}/cameras/{camera_id}/play"): (_play),
    ("GET", "/api/tickets/{ticket_id}/cameras/{camera_id}/activity"): (lambda env: _finding(env, "activity")),
    ("GET", "/api/tickets/{ticket_id}/cameras/{camera_id}/thumbnail"): (lambda env: _finding(env, "thumbnail")),
    ("POST", "/api/tickets/{ticket_id}/cameras/{camera_id}/searches"): (lambda env: _finding(env, "search")),
    ("GET", "/api/tickets/{ticket_id}/searches/{search_id}"): (lambda env: _finding(env, "")),
    ("POST", "/api/tickets/{ticket_id}/searches/{search_id}/cancel"): (lambda env: _finding(env, "/cancel")),
    ("POST", "/api/tickets/{ticket_id}/plays"): (_plays),
    ("GET", "/api/tickets/{ticket_id}/cameras/{camera_id}/fragment"): (_fragment),
    ("GET", "/api/audit"): (lambda env: ("/api/audit", {})),
    ("GET", "/api/audit/export.csv"): (lambda env: ("/api/audit/export.csv", {})),
    ("GET", "/api/audit/verify"): (lambda env: ("/api/audit/verify", {})),
    ("GET", "/healthz"): (lambda env: ("/healthz", {})),
    ("GET", "/readyz"): (lambda env: ("/readyz", {})),
    ("GET", "/metrics"): (lambda env: ("/metrics", {})),  # test client is not loopback
    ("GET", "/api/doorlog/files"): (lambda env: ("/api/doorlog/files", {})),
    ("GET", "/api/tickets/{ticket_id}/doorlog"): (lambda env: (f"/api/tickets/{_approved(env)}/doorlog", {})),
    ("POST", "/api/tickets/{ticket_id}/doorlog/identifier"): (lambda env: (
        f"/api/tickets/{_approved(env)}/doorlog/identifier", {"json": {"identifier": "card1234"}})),
}

MATRIX.update(EXPORT_MATRIX)


def test_every_route_has_a_rule_and_a_request(sqlite_api_env):
    """The routes come from the app, their rules from the policy: a route without either fails here."""
    actions = route_actions(sqlite_api_env.api)
    api_routes = {k for k in actions if k[1].startswith(("/api/", "/healthz", "/readyz", "/metrics", "/d/"))
                  and k not in NODE_ONLY}
    assert api_routes == set(MATRIX)


def test_every_role_against_every_route(api_env):
    failures = check_matrix(api_env, MATRIX, route_actions(api_env.api))
    assert not failures, "\n".join(failures)
