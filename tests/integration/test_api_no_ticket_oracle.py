"""No oracle in ticket numbers: for an operator, another operator's ticket and a ticket that does not exist get
byte-identical answers on every route that takes a ticket id, in the API and the web UI (SQLite and
PostgreSQL).

The same ticket number is asked twice: before it exists, and after someone else filed it (approved, so footage
and exports would go further for its requester)."""

from __future__ import annotations

import re

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso


def _requests(env, n: int) -> dict:
    start, end = env.clock.now_us() - 3_600_000_000, env.clock.now_us() - 3_000_000_000
    span = {"start": iso(start), "end": iso(start + 1_000_000)}
    reason = {"reason": "Not mine, but let us see"}
    return {
        "read": ("GET", f"/api/tickets/{n}", {}),
        "holds": ("GET", f"/api/tickets/{n}/holds", {}),
        "close": ("POST", f"/api/tickets/{n}/close", {"json": reason}),
        "approve": ("POST", f"/api/tickets/{n}/approve", {"json": reason}),
        "footage": ("GET", f"/api/tickets/{n}/footage", {}),
        "play": ("GET", f"/api/tickets/{n}/cameras/entrance/play", {"params": span}),
        "export": ("POST", f"/api/tickets/{n}/exports", {"json": {}}),
        "export jobs": ("GET", f"/api/tickets/{n}/exports", {}),
        "packages": ("GET", f"/api/tickets/{n}/packages", {}),
        "page": ("GET", f"/tickets/{n}", {}),
        "page close": ("POST", f"/tickets/{n}/close", {"data": reason}),
        "page decide": ("POST", f"/tickets/{n}/decide", {"data": reason | {"decision": "approve"}}),
        "page export": ("POST", f"/tickets/{n}/export", {"data": {"recipient_name": "Police"}}),
        "page footage": ("GET", f"/tickets/{n}", {"params": {"camera": "entrance", "at": str(end)}}),
    }


def _answers(env, client, n: int) -> dict:
    out = {}
    for what, (method, path, kw) in _requests(env, n).items():
        if method == "POST" and "data" in kw:  # a web form carries the session's CSRF token
            kw = {"data": kw["data"] | {"csrf_token": client.headers["X-CSRF-Token"]}}
        r = client.request(method, path, **kw)
        headers = sorted((k, v) for k, v in r.headers.multi_items() if k.lower() != "date")
        body = re.sub(r"nonce(=\"|-)[A-Za-z0-9+/=_-]+", r"nonce\1X", r.text)  # random on every page, if any
        out[what] = (r.status_code, headers, body)
    return out


def test_someone_elses_ticket_is_answered_exactly_as_a_missing_one(api_env):
    env = api_env
    first = env.file_ticket("olga", action="export")
    n = first["id"] + 1  # the next ticket's number: nobody has filed it yet
    otto = env.client("otto")
    missing = _answers(env, otto, n)
    theirs = env.file_ticket("olga", action="export")
    assert theirs["id"] == n
    env.approve(n)
    not_yours = _answers(env, otto, n)
    for what in missing:
        assert not_yours[what] == missing[what], (what, missing[what], not_yours[what])
    assert missing["read"][0] == 404 and f"ticket {n} does not exist" in missing["read"][2]
    assert missing["page"][0] == 404
    assert env.client("olga").get(f"/api/tickets/{n}").json()["state"] == "approved"  # untouched by otto
