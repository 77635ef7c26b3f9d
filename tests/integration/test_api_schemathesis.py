"""Schemathesis against the OpenAPI schema: generated requests (valid and invalid)
for every operation, as each role and anonymously; no response may be a 5xx.

Runs on SQLite (every case hits the database; PostgreSQL-specific bad input
such as NUL bytes is covered by the 422 tests, which run on both)."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis  # a test dependency (pyproject's [test] extra): missing is an error, never a skip
from hypothesis import HealthCheck, settings

from tests.support.api_env import *  # noqa: F403 (fixtures)

EXAMPLES = 30


@pytest.mark.parametrize("who", ["anonymous", "olga", "mia", "aud", "adam"])
def test_no_5xx_for_any_generated_request(sqlite_api_env, who):
    env = sqlite_api_env
    for name in ("olga", "mia"):  # something to act on
        t = env.file_ticket(name)
        if name == "olga":
            env.approve(t["id"], "mia")
    headers = {} if who == "anonymous" else {"Authorization": env.bearer(who).headers["Authorization"]}
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", env.api)
    failures, statuses = [], []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        if operation.path.endswith("/signout") or operation.path.endswith("/password"):
            continue  # would end or change the credential the run uses (covered in test_api_auth)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def run(case):
            response = case.call(headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{case.as_curl_command()[:300]}")

        run()
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= 5 * len(operations)  # the run really exercised the API
    print(who, len(statuses), "requests:", {s: statuses.count(s) for s in sorted(set(statuses))})
