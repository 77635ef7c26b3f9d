"""Export and delivery through the HTTP API, with real footage.

``export_env`` (fixture, SQLite and PostgreSQL): the ``api_env`` users and
cameras, the appliance's signing key, 8 s of a real H.264 clip (libx264, read
by vms.recording.capture, stored as encrypted 2 s segments) on ``entrance`` starting
10 minutes before the fake clock's now, and an export ticket filed by ``olga``
for [start + 2.5 s, start + 6 s) approved by ``mia``.  Helpers drive the API
as people would: start an export, poll it, make a link, download as a
recipient without an account.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from storage.sql import audit as audit_store
from testkit.footage import Stored, ensure_signing_key, store_clip
from tests.support.api_env import ApiEnv, make_api_env

S = 1_000_000
FINAL = ("succeeded", "failed", "cancelled")


@dataclass
class ExportEnv:
    env: ApiEnv
    stored: Stored
    ticket: dict

    @property
    def app(self):
        return self.env.app

    @property
    def start_us(self) -> int:
        return self.stored.first_us

    def start_export(self, who: str = "olga", ticket_id: int | None = None, **body):
        return self.env.client(who).post(f"/api/tickets/{ticket_id or self.ticket['id']}/exports", json=body or None)

    def wait_job(self, job_id: str, who: str = "olga", timeout_s: float = 60) -> dict:
        """Poll ``GET /api/exports/{job_id}`` until the job ends; returns every status seen."""
        seen = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            r = self.env.client(who).get(f"/api/exports/{job_id}")
            assert r.status_code == 200, r.text
            seen.append(r.json())
            if r.json()["state"] in FINAL:
                return {"final": r.json(), "seen": seen}
            time.sleep(0.05)
        raise AssertionError(f"export job {job_id} did not finish in {timeout_s} s: {seen[-1]}")

    def export(self, who: str = "olga", **body) -> dict:
        """Export and wait; returns the finished job (it must have succeeded)."""
        r = self.start_export(who, **body)
        assert r.status_code == 202, r.text
        final = self.wait_job(r.json()["job_id"], who)["final"]
        assert final["state"] == "succeeded", final
        return final

    def link(self, package_id: str, who: str = "mia", **body) -> dict:
        body = {"recipient": "Politi Midt, sag 4711"} | body
        r = self.env.client(who).post(f"/api/packages/{package_id}/deliveries", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def audit(self, action: str | None = None) -> list[audit_store.AuditRow]:
        with Session(self.app.engine) as s:
            rows = audit_store.search(s, limit=10_000) if action is None else audit_store.search(s, action=action,
                                                                                                 limit=10_000)
        return list(rows)


def token_path(url: str) -> str:
    """``/d/<token>`` of a link URL."""
    return url[url.index("/d/"):]


def make_export_env(env: ApiEnv, clip_path) -> ExportEnv:
    ensure_signing_key(env.app)
    start = env.clock.now_us() - 600 * S
    stored = store_clip(env.app, "entrance", clip_path, start)
    ticket = env.file_ticket("olga", cameras=["entrance"], start_us=start + 2_500_000, end_us=start + 6 * S,
                             action="export")
    env.approve(ticket["id"], "mia")
    return ExportEnv(env, stored, ticket)


@pytest.fixture
def export_env(appliance_factory, database_url, fake_clock, clip_factory) -> ExportEnv:
    env = make_api_env(appliance_factory, database_url, fake_clock)
    return make_export_env(env, clip_factory.get(seconds=8).path)


@pytest.fixture
def sqlite_export_env(appliance_factory, sqlite_url, fake_clock, clip_factory) -> ExportEnv:
    env = make_api_env(appliance_factory, sqlite_url, fake_clock)
    return make_export_env(env, clip_factory.get(seconds=8).path)
