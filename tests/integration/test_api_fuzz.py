"""Property-based fuzzing of the JSON API (Schemathesis over the app's own OpenAPI schema).

Every operation of the schema, with generated valid and invalid requests, as each role (signed in through
``POST /api/auth/signin``: session cookie and CSRF header) and anonymously, on a real appliance (SQLite) that
has something to act on: a requested ticket, an approved one over recorded footage, API tokens and an
account change waiting for a second person.  Path parameters are drawn from those real ids as often as
they are generated, so the generated bodies and queries reach the code behind the lookups.

Asserted for every response: never a 5xx; every 4xx is ``application/problem+json`` whose ``detail`` says
what is wrong (not just the status's name); and (Schemathesis' checks) the body conforms to the schema the
operation declares for its status.  Bounded and reproducible: ``derandomize=True``, few examples per
operation (``FUZZ_EXAMPLES`` raises it for a local hunt, e.g. 200; not for CI).  Cases found by a hunt
are kept as explicit examples in ``test_found_cases`` below."""

from __future__ import annotations

import os

import hypothesis
import pytest
import schemathesis  # a test dependency (pyproject's [test] extra): missing is an error, never a skip
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from testkit.api_footage import record
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))
ROLES = {"anonymous": None, "operator": "olga", "manager": "mia", "auditor": "aud", "administrator": "adam"}
# the status's bare name is no help to the person who must act on it
VAGUE = {"", "error", "invalid", "not found", "bad request", "method not allowed", "forbidden", "unauthorized",
         "unprocessable entity", "internal error", "conflict"}
# the framework's own words, which say neither what is wrong nor what is allowed
FRAMEWORK = ("there was an error parsing the body", "object to extract fields from")


def _setup(env, clip):
    """Real things to aim at; returns {path parameter name: [real values]}."""
    now = env.clock.now_us()
    start = now - 600_000_000
    record(env.app, "entrance", clip.path, start)
    approved = env.file_ticket("olga", cameras=["entrance", "hall"], start_us=start - 1_000_000,
                               end_us=start + 60_000_000)["id"]
    env.approve(approved, "mia")
    requested = env.file_ticket("otto")["id"]
    tokens = []
    for name in ("olga", "mia", "aud", "adam"):
        r = env.client(name).post("/api/auth/tokens", json={"label": "fuzz", "days": 1})
        assert r.status_code == 201, r.text
        tokens.append(r.json()["id"])
    r = env.client("adam").post("/api/users", json={"name": "nina", "role": "operator"})
    assert r.status_code in (201, 202), r.text  # four eyes: may wait for a second person
    changes = env.client("adam").get("/api/account-changes").json()
    entries = [c["entry"] for c in changes]
    return {"ticket_id": [approved, requested], "camera_id": ["entrance", "hall"],
            "name": ["olga", "mia", "aud", "nina"], "token_id": tokens, "entry": entries or [1],
            "play": ["p" * 22], "start": [iso(start + 1_000_000)], "end": [iso(start + 3_000_000)],
            "at": [iso(start + 1_500_000)]}


def _order(operation) -> tuple:
    """Reads first, then writes; last what would end the run's own session or ticket."""
    path, method = operation.path, operation.method.upper()
    last = path.endswith(("/signout", "/password", "/close", "/deny", "/reset-password")) or (
        path.startswith("/api/users/") and method == "PATCH") or "/tokens/" in path
    return (last, method != "GET", path, method)


def _send(client, case):
    kw = case.as_transport_kwargs(base_url="https://testserver")
    body = {}
    if "json" in kw:
        body["json"] = kw["json"]
    elif isinstance(kw.get("data"), (bytes, str)):
        body["content"] = kw["data"]
    elif kw.get("data") is not None:
        body["data"] = kw["data"]
    return client.request(kw["method"], kw["url"], params=kw.get("params"),
                          headers={k: v for k, v in (kw.get("headers") or {}).items() if k.lower() != "cookie"},
                          **body)


def check_problem(response, where: str) -> str | None:
    """None if a 4xx is a problem+json a person can act on, else what is wrong."""
    if not 400 <= response.status_code < 500:
        return None
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return f"{where}: {response.status_code} is {response.headers.get('content-type')}, not problem+json"
    detail = response.json().get("detail")
    if (not isinstance(detail, str) or detail.strip().lower().rstrip(".") in VAGUE or len(detail) < 8
            or any(words in detail.lower() for words in FRAMEWORK)):
        return f"{where}: {response.status_code} detail {detail!r} does not say what is wrong"
    return None


def _one(client, case, data, reals: dict, checks: list, failures: list, statuses: dict) -> None:
    swapped = False
    for n, values in reals.items():
        if data.draw(st.booleans(), label=f"real {n}"):
            where = case.path_parameters if n in (case.path_parameters or {}) else case.query
            if where is not None:
                where[n] = data.draw(st.sampled_from(values))
                swapped = True  # perhaps valid now: the negative-data check no longer applies
    response = _send(client, case)
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    where = f"{case.method} {case.formatted_path} ({response.status_code}) {case.as_curl_command()[:400]}"
    if response.status_code >= 500:
        failures.append(f"5xx: {where}: {response.text[:200]}")
        return
    if problem := check_problem(response, where):
        failures.append(problem)
    try:
        case.validate_response(response, checks=checks[:3] if swapped else checks)
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 (the checks raise a group: reported with the others)
        failures.append(f"schema: {where}: {str(exc)[:300]}")


def _bound(*args):
    def test(case, data):
        _one(args[0], case, data, *args[1:])

    return test


def fuzz(client, api, real: dict, *, examples: int, operations=()) -> tuple[list[str], dict]:
    """Every operation (or those named ``"METHOD /path"``), ``examples`` valid and ``examples`` invalid
    requests each; returns (failures, {status: count})."""
    schema = schemathesis.openapi.from_dict(api.openapi())
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for operation in sorted((r.ok() for r in schema.get_all_operations()), key=_order):
        if operations and f"{operation.method.upper()} {operation.path}" not in operations:
            continue
        names = [p.name for p in operation.path_parameters] + [p.name for p in operation.query]
        reals = {n: real[n] for n in names if n in real}
        for mode in GenerationMode:
            checks = [not_a_server_error, response_schema_conformance, content_type_conformance] + (
                [negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
            run = settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                           suppress_health_check=list(HealthCheck),
                           phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])(
                hypothesis.given(case=operation.as_strategy(generation_mode=mode), data=st.data())(
                    _bound(client, reals, checks, failures, statuses)))
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation  # nothing to make invalid (no parameters, no body)
    return failures, statuses


@pytest.mark.timeout(240)
@pytest.mark.parametrize("role", list(ROLES))
def test_generated_requests_never_a_5xx_and_every_refusal_is_clear(sqlite_api_env, h264_clip, role):
    env = sqlite_api_env
    real = _setup(env, h264_clip)
    name = ROLES[role]
    client = env.anonymous() if name is None else env.client(name, fresh=True)
    failures, statuses = fuzz(client, env.api, real, examples=EXAMPLES)
    sent = sum(statuses.values())
    print(role, sent, "requests:", sorted(statuses.items()))
    unique = list(dict.fromkeys(failures))
    assert not failures, f"{len(unique)} failure(s):\n" + "\n".join(unique[:15])
    assert sent >= 3 * 50  # the run really reached the operations (57 in the schema)



def test_the_refusal_check_itself_tells_a_clear_problem_from_a_vague_one():
    import httpx

    def r(status, body, ctype="application/problem+json"):
        return httpx.Response(status, json=body, headers={"content-type": ctype})

    assert check_problem(r(422, {"detail": "body.start: this field is required"}), "x") is None
    assert check_problem(r(200, {}), "x") is None
    assert "does not say" in check_problem(r(404, {"detail": "Not Found"}), "x")
    assert "does not say" in check_problem(r(400, {"detail": None}), "x")
    assert "does not say" in check_problem(r(400, {"detail": "There was an error parsing the body"}), "x")
    assert "not problem+json" in check_problem(r(422, {"detail": "body.x: bad value"}, "application/json"), "x")


# Found by the fuzzing (FUZZ_EXAMPLES=120): a JSON body FastAPI cannot decode got its "There was an error
# parsing the body"; a form or text body where a JSON object belongs got pydantic's "Input should be a valid
# dictionary or object to extract fields from"; broken JSON was blamed on a field "body[0]".
FOUND = [
    ("application/json", b"\xff\xfe{", 400, "not UTF-8"),
    ("application/json; charset=latin-1", b'{"reason": "\xe9t\xe9 confirmed"}', 400, "not UTF-8"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("application/json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, "nested too deeply"),
    ("application/x-www-form-urlencoded", b"reason=Incident+confirmed", 422, "must be a JSON object"),
    ("text/plain", b'{"reason": "Incident confirmed"}', 422, "must be a JSON object"),
    ("application/json", b"\x00", 422, "not valid JSON (at character 0)"),
]


@pytest.mark.parametrize(("ctype", "body", "status", "says"), FOUND)
def test_found_cases(sqlite_api_env, ctype, body, status, says):
    env = sqlite_api_env
    ticket = env.file_ticket("olga")["id"]
    r = env.client("mia").post(f"/api/tickets/{ticket}/approve", content=body, headers={"content-type": ctype})
    assert r.status_code == status and says in r.json()["detail"], r.text[:300]
    assert check_problem(r, "approve") is None
    assert r.json()["localized_detail"] and r.headers["content-language"] == "da"  # Danish first
    assert env.client("mia").get(f"/api/tickets/{ticket}").json()["state"] == "requested"  # nothing happened
