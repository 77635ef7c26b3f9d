"""Every role (and anonymous) against every export and delivery route: allowed or
refused (401 anonymous, 403 signed in) as the access policy says, never 5xx; on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_matrix import EXPORT_MATRIX
from tests.support.route_policy import check_matrix, route_actions


def test_matrix_names_every_export_and_delivery_route(sqlite_api_env):
    ours = {(m.upper(), path) for path, ops in sqlite_api_env.api.openapi()["paths"].items() for m in ops
            if path.startswith(("/d/", "/api/exports", "/api/packages", "/api/deliveries"))
            or path.endswith(("/exports", "/packages"))}
    assert ours == set(EXPORT_MATRIX)


def test_every_role_against_every_export_and_delivery_route(api_env):
    failures = check_matrix(api_env, EXPORT_MATRIX, route_actions(api_env.api))
    assert not failures, "\n".join(failures)
