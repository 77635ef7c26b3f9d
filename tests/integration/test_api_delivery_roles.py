"""Every role (and anonymous) against every export and delivery route: allowed or
refused (401 anonymous, 403 signed in), never 5xx; on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_matrix import ADMIN, ANON, AUDITOR, EXPORT_MATRIX, MANAGER, OPERATOR


def test_matrix_names_every_export_and_delivery_route(sqlite_api_env):
    ours = {(m.upper(), path) for path, ops in sqlite_api_env.api.openapi()["paths"].items() for m in ops
            if path.startswith(("/d/", "/api/exports", "/api/packages", "/api/deliveries"))
            or path.endswith(("/exports", "/packages"))}
    assert ours == set(EXPORT_MATRIX)


def test_every_role_against_every_export_and_delivery_route(api_env):
    env = api_env
    failures = []
    for (method, _path), (allowed, build) in EXPORT_MATRIX.items():
        for who in (ANON, OPERATOR, MANAGER, AUDITOR, ADMIN):
            url, kwargs = build(env)
            client = env.anonymous() if who == ANON else env.client(who)
            r = client.request(method, url, **kwargs)
            refused = r.status_code in (401, 403)
            if r.status_code >= 500 or refused == (who in allowed):
                failures.append(f"{who:9} {method} {url[:60]}: {r.status_code} {r.text[:160]}")
            elif refused and r.status_code != (401 if who == ANON else 403):
                failures.append(f"{who:9} {method} {url[:60]}: refused with {r.status_code}")
    assert not failures, "\n".join(failures)
