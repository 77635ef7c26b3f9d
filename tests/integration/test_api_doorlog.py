"""The door log over HTTP, on SQLite and PostgreSQL: a controller pushes with its own token (unknown tokens
refused and audited; a bad file a 422 naming the line, nothing imported), the administrator sees the files, an
operator looks up inside an approved door ticket, and the CPR number searched for is never in a URL or the
audit trail."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql.models import AuditEntry
from testkit.doorlog import FAKE_CPR, FAKE_CPR_DIGITS, csv_default
from tests.support.api_env import make_api_env

T0 = 1_767_225_600_000_000
MIN_US, HOUR_US, DAY_US = 60_000_000, 3_600_000_000, 86_400_000_000
EVENING = T0 + 21 * HOUR_US
TOKEN = "door-controller-token-for-tests-0123456789"


@pytest.fixture
def env(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0 + DAY_US)
    return make_api_env(appliance_factory, database_url, fake_clock, doorlog={
        "inbox": "inbox", "controllers": [{"id": "hovedindgang", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]})


def push(env, data: bytes, token: str = TOKEN):
    return env.anonymous().post("/api/doorlog/push", params={"name": "export.csv"}, content=data,
                                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"})


def test_controller_push_status_and_lookups(env):
    rows = [(EVENING + 5 * MIN_US, "main", FAKE_CPR), (EVENING + 6 * MIN_US, "main", "card1234"),
            (EVENING + 40 * MIN_US, "main", FAKE_CPR)]
    r = push(env, csv_default(rows))
    assert r.status_code == 200, r.text
    assert r.json() | {"file_id": 0} == {"file_id": 0, "status": "imported", "rows": 3, "added": 3, "expired": 0,
                                         "report": ""}
    assert push(env, csv_default(rows)).json()["status"] == "duplicate"
    assert push(env, csv_default(rows), token="wrong").status_code == 401
    assert env.client("olga").post("/api/doorlog/push", content=b"x").status_code == 401  # a user session is no token
    bad = csv_default(rows).decode().replace("main", "main door!", 1).encode()
    r = push(env, bad)
    assert r.status_code == 422 and "line 2: door" in r.json()["detail"] and FAKE_CPR_DIGITS not in r.text

    files = env.client("adam").get("/api/doorlog/files").json()
    assert [f["status"] for f in files] == ["rejected", "duplicate", "imported"]
    assert env.client("olga").get("/api/doorlog/files").status_code == 403

    olga = env.client("olga")
    t = olga.post("/api/tickets", json={
        "doors": ["main"], "door_id_lookup": True, "start": "2026-01-01T21:00:00Z", "end": "2026-01-01T21:30:00Z",
        "description": "a window was broken", "purpose": "find who was inside", "legal_basis": "GDPR 6(1)(e)",
        "action": "view", "recipient": "internal"})
    assert t.status_code == 201, t.text
    tid = t.json()["id"]
    assert t.json()["doors"] == ["main"] and t.json()["door_id_lookup"] is True and t.json()["cameras"] == []
    assert olga.get(f"/api/tickets/{tid}/doorlog").status_code == 409  # not approved yet
    assert env.client("mia").post(f"/api/tickets/{tid}/approve", json={"reason": "ok"}).status_code == 200
    r = olga.get(f"/api/tickets/{tid}/doorlog", params={"door": "main"})
    assert r.status_code == 200 and [p["identifier"] for p in r.json()] == [FAKE_CPR, "CARD1234"]
    assert olga.get(f"/api/tickets/{tid}/doorlog", params={"door": "side"}).status_code == 403
    assert olga.get(f"/api/tickets/{tid}/doorlog", params={"start": "2026-01-01T20:59:00Z"}).status_code == 403
    r = olga.post(f"/api/tickets/{tid}/doorlog/identifier", json={"identifier": FAKE_CPR})
    assert r.status_code == 200 and [p["at"] for p in r.json()] == ["2026-01-01T21:05:00Z"]
    assert env.client("adam").get(f"/api/tickets/{tid}/doorlog").status_code == 403  # admins see no door log
    with Session(env.app.engine) as s:
        trail = list(s.scalars(select(AuditEntry)))
    assert sum(1 for e in trail if e.action == "doorlog.lookup" and e.outcome == "ok") == 2
    assert any(e.action == "doorlog.push" and e.outcome.startswith("refused") for e in trail)
    assert any(e.actor == "controller:hovedindgang" and e.action == "doorlog.import" for e in trail)
    for e in trail:
        assert FAKE_CPR_DIGITS not in f"{e.object} {e.outcome} {e.detail}".replace("-", "")
