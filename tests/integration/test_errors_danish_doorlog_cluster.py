"""Errors of the door log's push and of the node-to-node endpoint, asked for in Danish (issue 16.2): each
refusal keeps its English ``detail`` and adds its ``message_id`` and a Danish ``localized_detail``.  The archive's
credentials file and the TLS certificate are refused outside the API (configuration and ``vms tls``); their
texts are checked through the same ``error_text`` the pages and the API use."""

from __future__ import annotations

import hashlib
import os

import pytest
from fastapi.testclient import TestClient

from api import i18n
from testkit.doorlog import FAKE_CPR, csv_default
from tests.support.api_env import CAMERAS, make_api_env
from vms.archive import bucket
from vms.core.errors import DomainError
from vms.ops import cluster, tls

T0 = 1_767_225_600_000_000
HOUR_US, DAY_US = 3_600_000_000, 86_400_000_000
TOKEN = "door-controller-token-for-tests-0123456789"
SECRET = b"s" * 48
DA = {"Accept-Language": "da"}


@pytest.fixture
def env(tmp_path, appliance_factory, sqlite_url, fake_clock):
    fake_clock.set(T0 + DAY_US)
    (tmp_path / "appliance0").mkdir()
    secret = tmp_path / "appliance0" / "cluster.secret"
    secret.write_bytes(SECRET)
    os.chmod(secret, 0o600)
    return make_api_env(appliance_factory, sqlite_url, fake_clock, cluster={"secret_file": str(secret)}, doorlog={
        "inbox": "inbox", "max_file_bytes": 4096, "controllers": [{"id": "hovedindgang", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]})


def _danish(r, status: int, message_id: str, phrase: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["message_id"] == message_id, body
    assert phrase in body["localized_detail"], body
    assert r.headers["content-language"] == "da"
    return body


def _push(env, data: bytes, headers: dict):
    return env.anonymous().post("/api/doorlog/push", params={"name": "export.csv"}, content=data,
                                headers=DA | {"Content-Type": "text/csv"} | headers)


def test_door_log_push_refusals_in_danish(env):
    rows = [(T0 + 21 * HOUR_US, "main", FAKE_CPR)]
    b = _danish(_push(env, csv_default(rows), {}), 401, "doorlog.err.bearer",
                "Authorization skal være 'Bearer <dørcontrollerens token>'.")
    assert b["detail"] == "Authorization must be 'Bearer <the controller's token>'"
    _danish(_push(env, csv_default(rows), {"Authorization": "Bearer not-the-token"}), 401,
            "doorlog.err.unknown_token", "Ukendt token fra en dørcontroller")
    bad = csv_default(rows).decode().replace("main", "main door!", 1).encode()
    b = _danish(_push(env, bad, {"Authorization": f"Bearer {TOKEN}"}), 422, "doorlog.err.rejected",
                "Filen blev afvist, og intet er indlæst:\nline 2: door")
    assert b["detail"].startswith("the file was rejected, nothing imported:\nline 2: door")
    b = _danish(_push(env, b"x" * 5000, {"Authorization": f"Bearer {TOKEN}"}), 413, "doorlog.err.push_too_big",
                "byte, som [doorlog] max_file_bytes tillader.")
    assert b["detail"] == "more than [doorlog] max_file_bytes (4096) bytes" and b["params"] == {"max": 4096}


def test_node_endpoint_refusals_in_danish(env, appliance_factory, fake_clock):
    from api.app import create_app

    alone = TestClient(create_app(appliance_factory(CAMERAS), clock=fake_clock), base_url=env.base_url,
                       raise_server_exceptions=False)  # its own SQLite database and no [cluster]
    path = "/internal/segments/999"
    c = env.anonymous()
    _danish(alone.get(path, headers=DA), 404, "cluster.err.not_cluster",
            "Denne node er ikke med i en klynge.")
    _danish(c.get(path, headers=DA), 401, "cluster.err.headers",
            f"Anmodninger mellem noder skal have {cluster.NODE_HEADER} og {cluster.AUTH_HEADER}.")
    _danish(c.get(path, headers=DA | cluster.sign(SECRET, "GET", path, "api-1", now_s=1_000_000)), 401,
            "cluster.err.skew", f"mere end {cluster.MAX_SKEW_S} s for gammel eller for ny")
    _danish(c.get(path, headers=DA | cluster.sign(b"x" * 48, "GET", path, "api-1")), 401, "cluster.err.signature",
            "Nodens signatur passer ikke med klyngens fælles hemmelighed.")
    b = _danish(c.get(path, headers=DA | cluster.sign(SECRET, "GET", path, "api-1")), 404, "cluster.err.no_segment",
                "Segment 999 findes ikke i indekset (slettet eller aldrig lukket)")
    assert b["detail"] == "segment 999 is not in the index (deleted, or never sealed)"
    assert b["params"] == {"segment": 999}


def _text(exc: DomainError, lang: str = "da") -> str:
    return i18n.error_text(i18n.translator(lang), exc)


def test_archive_credentials_and_certificate_errors_in_danish(tmp_path):
    creds = tmp_path / "archive.toml"
    with pytest.raises(DomainError) as e:
        bucket.read_credentials(creds)
    assert e.value.key == "archive.err.creds_missing"
    assert _text(e.value) == f"{creds}: filen med adgangsoplysningerne til arkivet findes ikke."
    creds.write_text('access_key_id = "abc"\nregion = "x"\n')
    with pytest.raises(DomainError) as e:
        bucket.read_credentials(creds)
    assert _text(e.value).endswith("ukendte nøgler region; tilladt er access_key_id og secret_access_key.")
    creds.write_text('access_key_id = "ab"\n')
    with pytest.raises(DomainError) as e:
        bucket.read_credentials(creds)
    assert _text(e.value).endswith("access_key_id skal være en tekst på 3-256 tegn.")
    assert "ab\"" not in str(e.value.params)  # the file's values are never in an error
    with pytest.raises(DomainError) as e:
        tls.write_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", ["bad host"])
    assert _text(e.value) == "--host bad host er hverken et værtsnavn eller en adresse."
    assert _text(e.value, "en") == "--host bad host is not a host name or address."
    with pytest.raises(DomainError) as e:
        tls.write_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", [], days=0)
    assert _text(e.value) == "--days (de dage, certifikatet gælder) skal være 1-3650."
