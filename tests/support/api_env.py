"""An appliance with the API app, users of every role and signed-in test clients.

``api_env`` (fixture, SQLite and PostgreSQL): cameras ``entrance`` and ``hall``,
users ``olga`` and ``otto`` (operators), ``mia`` and ``max`` (managers), ``aud``
(auditor) and ``adam`` (admin), all with :data:`PASSWORD` already chosen (no
one-time password), and a :class:`~vms.core.clock.FakeClock`.

``env.client("mia")`` signs in through ``POST /api/auth/signin`` and returns a
TestClient carrying the session cookie and the CSRF header;
``env.bearer("mia")`` returns a client with an API token instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from storage.sql import index
from vms.access import users

PASSWORD = "correct horse battery staple"
USERS = {"olga": "operator", "otto": "operator", "mia": "manager", "max": "manager", "aud": "auditor",
         "adam": "admin"}
CAMERAS = [
    {"id": "entrance", "source": "rtsp://127.0.0.1:1/entrance", "retain_days": 14},
    {"id": "hall", "source": "rtsp://127.0.0.1:1/hall", "retain_days": 30},
]
_HASH: list[str] = []


def password_hash() -> str:
    if not _HASH:  # Argon2 is slow on purpose; hash the shared test password once
        _HASH.append(users.hash_password(PASSWORD))
    return _HASH[0]


def iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class ApiEnv:
    app: object
    api: object
    clock: object
    base_url: str = "https://testserver"
    _clients: dict = field(default_factory=dict)

    def advance(self, seconds: float) -> None:
        """Move the clock; sessions may expire, so clients sign in again when next used."""
        self.clock.advance(seconds)
        self._clients.clear()

    def anonymous(self) -> TestClient:
        return TestClient(self.api, base_url=self.base_url, raise_server_exceptions=False)

    def client(self, name: str, *, fresh: bool = False) -> TestClient:
        if name in self._clients and not fresh:
            return self._clients[name]
        c = self.anonymous()
        r = c.post("/api/auth/signin", json={"name": name, "password": PASSWORD})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        if not fresh:
            self._clients[name] = c
        return c

    def bearer(self, name: str) -> TestClient:
        r = self.client(name).post("/api/auth/tokens", json={"label": "test", "days": 1})
        assert r.status_code == 201, r.text
        c = self.anonymous()
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return c

    def file_ticket(self, name: str = "olga", *, cameras=("entrance",), start_us=None, end_us=None,
                    action: str = "view", **kw) -> dict:
        now = self.clock.now_us()
        body = {
            "cameras": list(cameras),
            "start": iso(start_us if start_us is not None else now - 3_600_000_000),
            "end": iso(end_us if end_us is not None else now - 60_000_000),
            "description": "Bicycle stolen from the rack by the entrance",
            "purpose": "Identify the thief for the police report",
            "legal_basis": "GDPR art. 6(1)(f); TV-overvågningsloven § 4",
            "action": action,
            "recipient": "police",
        } | kw
        r = self.client(name).post("/api/tickets", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def approve(self, ticket_id: int, name: str = "mia") -> dict:
        r = self.client(name).post(f"/api/tickets/{ticket_id}/approve", json={"reason": "Incident confirmed by staff"})
        assert r.status_code == 200, r.text
        return r.json()


def make_api_env(appliance_factory, database_url, fake_clock, **top) -> ApiEnv:
    from api.app import create_app

    app = appliance_factory(CAMERAS, database_url=database_url, **top)
    with Session(app.engine) as s, s.begin():
        for name, role in USERS.items():
            index.add_user(s, name, role=role, password_hash=password_hash(), now_us=fake_clock.now_us(),
                           must_change=False)
    return ApiEnv(app, create_app(app, clock=fake_clock), fake_clock)


@pytest.fixture
def api_env(appliance_factory, database_url, fake_clock) -> ApiEnv:
    return make_api_env(appliance_factory, database_url, fake_clock)


@pytest.fixture
def sqlite_api_env(appliance_factory, sqlite_url, fake_clock) -> ApiEnv:
    """As ``api_env``, on SQLite only (for slow or database-independent checks)."""
    return make_api_env(appliance_factory, sqlite_url, fake_clock)
