"""Who may use each route, read from the app and the access policy (vms/access/policy.py), not written by hand.

Every route declares its action through its dependencies (``api.deps.require(action)``, the web's
``api.web.session.allow(action)``, or the ACCOUNT dependencies), so the roles a route admits are the roles
the policy's table gives that action.  A route that declares no action and is not on the short list of
public routes fails :func:`route_actions`: a new route cannot slip in without a rule.
"""

from __future__ import annotations

from fastapi import routing
from fastapi.routing import APIRoute

from vms.access import policy

ANON = "anonymous"
USER_OF_ROLE = {"operator": "olga", "manager": "mia", "auditor": "aud", "admin": "adam"}
EVERYONE = {ANON, *USER_OF_ROLE.values()}

#: open without an account, on purpose
PUBLIC = {("GET", "/api/health"), ("POST", "/api/auth/signin"), ("GET", "/healthz"), ("GET", "/readyz"),
          ("GET", "/d/{token}"), ("POST", "/d/{token}"), ("GET", "/signin"), ("POST", "/signin"),
          ("GET", "/lang/{code}")}
#: node-to-node, authenticated by the cluster's shared secret, not by a person (tests/integration/test_multinode.py)
NODE_ONLY = {("GET", "/internal/segments/{segment_id}"),
             # a door controller's push, authenticated by its own token (tests/integration/test_api_doorlog.py)
             ("POST", "/api/doorlog/push")}
#: routes that ask the policy in their body (loopback scrapes need no account), with the action they ask
CHECKED_IN_BODY = {("GET", "/metrics"): policy.Action.OPS_READ}


def _actions(dependant) -> list[policy.Action]:
    found = []
    for dep in dependant.dependencies:
        action = getattr(dep.call, "action", None)
        if action is not None:
            found.append(action)
        found += _actions(dep)
    return found


def api_routes(api) -> list[APIRoute]:
    """The app's routes as served: included routers expanded with their prefixes and dependencies."""
    contexts = getattr(routing, "iter_route_contexts", None)  # FastAPI keeps included routers lazily
    routes = [c.route for c in contexts(api.routes)] if contexts else list(api.routes)
    return [r for r in routes if isinstance(r, APIRoute)]


def route_actions(api) -> dict[tuple[str, str], policy.Action | None]:
    """(method, path) -> the route's action (None: public).  Raises AssertionError naming routes without one."""
    out, missing = {}, []
    for route in api_routes(api):
        for method in route.methods - {"HEAD"}:
            key = (method, route.path)
            actions = _actions(route.dependant)
            specific = [a for a in actions if a != policy.Action.ACCOUNT]
            if key in CHECKED_IN_BODY:
                out[key] = CHECKED_IN_BODY[key]
            elif specific:
                assert len(set(specific)) == 1, f"{key} declares several actions: {specific}"
                out[key] = specific[0]
            elif actions:
                out[key] = policy.Action.ACCOUNT
            elif key in PUBLIC or key in NODE_ONLY:
                out[key] = None
            else:
                missing.append(key)
    assert not missing, f"routes without an access rule (declare an action or list them as public): {missing}"
    return out


def allowed_users(action: policy.Action | None) -> set[str]:
    """The test users whose role the policy allows ``action`` (everyone, anonymous too, for public routes)."""
    if action is None:
        return set(EVERYONE)
    return {USER_OF_ROLE[r] for r in policy.roles_for(action)}


def check_matrix(env, builders: dict, actions: dict) -> list[str]:
    """Every user against every route in ``builders``: refused (401 anonymous, 403 signed in) exactly when the
    policy says so, never 5xx.  Returns the failures."""
    failures = []
    for (method, path), build in builders.items():
        allowed = allowed_users(actions[(method, path)])
        for who in (ANON, *USER_OF_ROLE.values()):
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
                failures.append(f"{who:9} {method} {url[:60]}: {r.status_code} {r.text[:160]}")
            elif refused and r.status_code != (401 if who == ANON else 403):
                failures.append(f"{who:9} {method} {url[:60]}: refused with {r.status_code}")
    return failures
