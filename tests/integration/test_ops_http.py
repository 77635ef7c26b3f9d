"""/healthz, /readyz and /metrics on the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient

from tests.support.api_env import *  # noqa: F403 (fixtures)


def _loopback(env) -> TestClient:
    return TestClient(env.api, base_url=env.base_url, raise_server_exceptions=False, client=("127.0.0.1", 40000))


def test_health_and_ready(api_env):
    anon = api_env.anonymous()
    assert anon.get("/healthz").status_code == 200
    r = anon.get("/readyz")
    assert r.status_code == 200, r.text
    assert str(api_env.app.config.key_path) not in r.text


def test_not_ready_when_the_key_file_is_unsafe(api_env):
    key = api_env.app.config.key_path
    os.chmod(key, 0o644)
    try:
        r = api_env.anonymous().get("/readyz")
        assert r.status_code == 503
        assert str(key) not in r.text
    finally:
        os.chmod(key, 0o600)


def test_metrics_from_loopback_without_credentials(api_env):
    r = _loopback(api_env).get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {line.split()[2] for line in r.text.splitlines() if line.startswith("# TYPE ")}
    assert any(f.startswith("vms_camera_") for f in families), sorted(families)


def test_metrics_through_a_local_reverse_proxy_need_credentials(api_env):
    r = _loopback(api_env).get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert r.status_code == 401


def test_metrics_elsewhere_need_admin_or_auditor(api_env):
    assert api_env.anonymous().get("/metrics").status_code == 401
    assert api_env.bearer("olga").get("/metrics").status_code == 403
    assert api_env.bearer("aud").get("/metrics").status_code == 200
