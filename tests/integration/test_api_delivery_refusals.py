"""Delivery links refused, on SQLite and PostgreSQL: expired, revoked, exhausted, wrong or
missing passcode, unknown token; guessing is rate limited; each refusal is audited with
the client address; bad input is 4xx, never 5xx."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import *  # noqa: F403 (fixtures)
from tests.support.delivery_env import token_path
from vms.evidence import delivery


@pytest.fixture
def package(export_env):
    return export_env, export_env.export("olga")["package_id"]


@pytest.fixture
def sqlite_package(sqlite_export_env):
    return sqlite_export_env, sqlite_export_env.export("olga")["package_id"]


def _refusals(x, action="delivery.download"):
    return [e for e in x.audit(action) if e.outcome.startswith("refused")]


def _gone(r, words):
    assert r.status_code == 410, r.text
    assert r.headers["content-type"] == "application/problem+json" and words in r.json()["detail"], r.json()
    assert r.json()["instance"] == "/d/{token}"


def test_expired_revoked_exhausted(package):
    x, package_id = package
    anon = x.env.anonymous()
    expiring = token_path(x.link(package_id, recipient="Politi", expires_hours=1)["url"])
    revoked = x.link(package_id, recipient="SSP")
    once = token_path(x.link(package_id, recipient="Data subject", max_downloads=1)["url"])

    r = x.env.client("mia").post(f"/api/deliveries/{revoked['delivery']['id']}/revoke")
    assert r.status_code == 200 and r.json()["state"] == "revoked" and r.json()["revoked_at"]
    again = x.env.client("mia").post(f"/api/deliveries/{revoked['delivery']['id']}/revoke")
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]
    assert x.env.client("mia").post("/api/deliveries/999999/revoke").status_code == 404
    _gone(anon.get(token_path(revoked["url"])), "revoked by the sender")
    _gone(anon.post(token_path(revoked["url"])), "revoked by the sender")

    assert anon.post(once).status_code == 200
    _gone(anon.post(once), "used 1 time(s), which is its limit")
    _gone(anon.get(once), "its limit")

    assert anon.get(expiring).status_code == 200
    x.env.advance(3600)
    _gone(anon.get(expiring), "expired at")
    _gone(anon.post(expiring), "expired at")

    outcomes = [e.outcome for e in _refusals(x)]
    assert sum("revoked" in o for o in outcomes) == 1 and sum("limit" in o for o in outcomes) == 1
    assert sum("expired" in o for o in outcomes) == 1
    opens = [e.outcome for e in _refusals(x, "delivery.open")]
    assert len(opens) == 3 and all(e.client == "testclient" for e in _refusals(x) + _refusals(x, "delivery.open"))
    revokes = [e for e in x.audit("delivery.revoke")]
    assert [e.outcome.split(":")[0] for e in revokes] == ["ok", "refused", "refused"]


def test_passcode_wrong_missing_right(package):
    x, package_id = package
    anon = x.env.anonymous()
    path = token_path(x.link(package_id, passcode="correct passcode 42")["url"])
    r = anon.post(path)
    assert r.status_code == 401 and "passcode" in r.json()["detail"] and "www-authenticate" not in r.headers
    r = anon.post(path, json={"passcode": "wrong passcode"})
    assert r.status_code == 403 and r.json()["detail"] == "the passcode is wrong"
    assert anon.post(path, data={"passcode": "also wrong"}).status_code == 403
    assert anon.post(path, json={"passcode": "correct passcode 42"}).status_code == 200
    outcomes = [e.outcome for e in _refusals(x)]
    assert outcomes == ["refused: this link needs the passcode the sender gave you separately",
                        "refused: the passcode is wrong", "refused: the passcode is wrong"]
    assert x.audit("delivery.download")[-1].outcome == "ok"


def test_unknown_token_is_refused_and_audited(package):
    x, _ = package
    anon = x.env.anonymous()
    for path in (f"/d/{secrets.token_urlsafe(32)}", "/d/short", "/d/" + "x" * 200):
        for method in ("GET", "POST"):
            r = anon.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
            assert "not valid" in r.json()["detail"] and r.json()["instance"] == "/d/{token}"
    refused = _refusals(x, "delivery.open") + _refusals(x, "delivery.download")
    assert len(refused) == 6 and {(e.actor, e.role, e.client) for e in refused} == {
        ("anonymous", "anonymous", "testclient")}
    assert anon.get("/d/" + "x" * 201).status_code == 422  # longer than any link: refused before a lookup


def test_guessing_is_rate_limited(sqlite_package):
    x, package_id = sqlite_package
    delivery.configure(x.app, delivery.DeliveryPolicy(guess_limit=3, guess_window_s=60, passcode_attempts=2,
                                                      passcode_lockout_s=30))
    anon = x.env.anonymous()
    good = token_path(x.link(package_id, passcode="the right passcode")["url"])
    assert [anon.get(f"/d/{secrets.token_urlsafe(32)}").status_code for _ in range(3)] == [404, 404, 404]
    r = anon.get(f"/d/{secrets.token_urlsafe(32)}")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0 and "too many" in r.json()["detail"]
    assert anon.get(good).status_code == 429  # the address is locked, even for a good link
    (lockout,) = x.audit("delivery.guessing")
    assert lockout.client == "testclient" and lockout.outcome.startswith("refused: 3 failed attempts")
    before = len(x.audit())
    for _ in range(5):
        assert anon.get(f"/d/{secrets.token_urlsafe(32)}").status_code == 429
    assert len(x.audit()) == before  # a locked-out guesser cannot flood the audit trail
    x.env.clock.advance(61)
    assert anon.get(good).status_code == 200

    # wrong passcodes lock the link itself (whatever the address) with a back-off
    delivery.configure(x.app, delivery.DeliveryPolicy(guess_limit=100, passcode_attempts=2, passcode_lockout_s=30))
    assert anon.post(good, json={"passcode": "guess one"}).status_code == 403
    assert anon.post(good, json={"passcode": "guess two"}).status_code == 403
    r = anon.post(good, json={"passcode": "the right passcode"})
    assert r.status_code == 429 and "locked" in r.json()["detail"]
    x.env.clock.advance(31)
    assert anon.post(good, json={"passcode": "the right passcode"}).status_code == 200


def test_bad_input_never_500(sqlite_package):
    x, package_id = sqlite_package
    anon = x.env.anonymous()
    path = token_path(x.link(package_id, passcode="the right passcode")["url"])
    for kwargs in ({"content": b"{no json", "headers": {"content-type": "application/json"}},
                   {"json": ["passcode"]}, {"json": {"passcode": 42}}, {"json": {"passcode": "x", "more": 1}},
                   {"json": {"passcode": "p" * 257}}, {"content": b"passcode", "headers": {"content-type": "text/plain"}},
                   {"content": b'{"passcode": "\\ud800"}', "headers": {"content-type": "application/json"}}):
        r = anon.post(path, **kwargs)
        assert r.status_code == 422, (kwargs, r.text)
    r = anon.post(path, content=b"passcode=x", headers={"content-type": "multipart/form-data"})  # no boundary
    assert r.status_code == 400 and "boundary" in r.json()["detail"], r.text
    assert path.split("/")[-1] not in r.text
    c = x.env.client("mia")
    url = f"/api/packages/{package_id}/deliveries"
    for body in ({"recipient": ""}, {"recipient": "a\nb"}, {"recipient": "P", "expires_hours": 0},
                 {"recipient": "P", "expires_hours": 721}, {"recipient": "P", "max_downloads": 0},
                 {"recipient": "P", "passcode": "short"}, {"recipient": "P", "passcode": "long enough",
                                                           "generate_passcode": True}, {"recipient": "P", "x": 1}):
        r = c.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
    assert c.post("/api/packages/" + "0" * 32 + "/deliveries", json={"recipient": "P"}).status_code == 404
    assert c.get("/api/packages/nothex/deliveries").status_code == 422
    assert c.post("/api/deliveries/0/revoke").status_code == 422
    refused = [e for e in x.audit("delivery.create") if e.outcome.startswith("refused")]
    assert len(refused) == 2  # the two that passed the schema: both passcodes, and the unknown package


def test_no_link_once_the_ticket_is_closed(sqlite_package):
    x, package_id = sqlite_package
    r = x.env.client("mia").post(f"/api/tickets/{x.ticket['id']}/close", json={"reason": "case closed"})
    assert r.status_code == 200
    r = x.env.client("mia").post(f"/api/packages/{package_id}/deliveries", json={"recipient": "Politi"})
    assert r.status_code == 409 and "closed" in r.json()["detail"], r.text
    (refusal,) = [e for e in x.audit("delivery.create") if e.outcome.startswith("refused")]
    assert refusal.actor == "mia" and "closed" in refusal.outcome and refusal.ticket_id == x.ticket["id"]
    assert x.audit("ticket.delivered") == []


def test_download_limit_holds_under_concurrency(package):
    x, package_id = package
    path = token_path(x.link(package_id, max_downloads=2)["url"])
    barrier = threading.Barrier(6)

    def fetch(_):
        client = x.env.anonymous()
        barrier.wait(10)
        return client.post(path).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(fetch, range(6)))
    assert codes == [200, 200, 410, 410, 410, 410], codes
    assert len([e for e in x.audit("delivery.download") if e.outcome == "ok"]) == 2
