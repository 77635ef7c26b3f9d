"""Four eyes on accounts: an administrator alone cannot give footage to people of their choosing.

The attack of issue 20: as admin, create two managers and set their passwords; one files a ticket, the
other approves it, the first plays the footage.  Now the managers' accounts work only once another
administrator or the auditor confirms them; neither the requester nor the account's owner may confirm;
where nobody else could, the change is made but stays flagged in the trail and on the pages."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from storage.sql import auth_store, index
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import ApiEnv, password_hash
from vms.access import audit


def _set_password(env: ApiEnv, name: str, otp: str) -> None:
    c = env.anonymous()
    r = c.post("/api/auth/signin", json={"name": name, "password": otp})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    assert c.post("/api/auth/password", json={"current_password": otp,
                                              "new_password": "test password horse"}).status_code == 204


def _signin(env: ApiEnv, name: str, password: str = "test password horse") -> int:
    return env.anonymous().post("/api/auth/signin", json={"name": name, "password": password}).status_code


def test_an_administrators_own_managers_get_nothing_until_a_second_person_confirms(api_env):
    env = api_env
    admin = env.client("adam")
    made = {}
    for name in ("sp-one", "sp-two"):
        r = admin.post("/api/users", json={"name": name, "role": "manager"})
        assert r.status_code == 201 and r.json()["confirmation"] == "pending" and r.json()["user"]["disabled"]
        made[name] = r.json()["one_time_password"]
    assert all(_signin(env, n, p) == 401 for n, p in made.items())  # neither account works yet

    changes = env.client("aud").get("/api/account-changes").json()
    assert [(c["user"], c["change"], c["requester"]) for c in changes] == [("sp-one", "add", "adam"),
                                                                             ("sp-two", "add", "adam")]
    own = admin.post(f"/api/account-changes/{changes[0]['entry']}/confirm", json={"reason": "trust me"})
    assert own.status_code == 409 and "cannot confirm it" in own.json()["detail"]  # the requester cannot
    assert env.client("olga").get("/api/account-changes").status_code == 403  # nor anyone but admin/auditor

    for c in changes:
        r = env.client("aud").post(f"/api/account-changes/{c['entry']}/confirm", json={"reason": "new staff"})
        assert r.status_code == 200, r.text
    assert env.client("aud").get("/api/account-changes").json() == []
    for name, otp in made.items():
        _set_password(env, name, otp)
    assert _signin(env, "sp-one") == 200
    steps = [(e.action, e.actor, e.outcome[:8]) for e in audit.search(env.app.engine, action="account.")]
    assert steps == [("account.confirm", "adam", "refused:"), ("account.confirm", "aud", "ok"),
                     ("account.confirm", "aud", "ok")]


def test_raising_a_role_re_enabling_and_a_managers_new_password_wait_too(api_env):
    env = api_env
    with Session(env.app.engine) as s, s.begin():  # a second administrator, so that the auditor is not the only one
        index.add_user(s, "ada", role="admin", password_hash=password_hash(), now_us=env.clock.now_us(),
                       must_change=False)
    admin = env.client("adam")
    r = admin.patch("/api/users/aud", json={"role": "manager"})  # the auditor made a manager: waits
    assert r.status_code == 200 and r.json()["confirmation"] == "pending" and r.json()["role"] == "auditor"
    r = admin.patch("/api/users/olga", json={"disabled": True})
    assert r.json()["confirmation"] == "done" and r.json()["disabled"]  # shutting someone out needs nobody
    r = admin.patch("/api/users/olga", json={"disabled": False})
    assert r.json()["confirmation"] == "pending" and r.json()["disabled"]
    r = admin.post("/api/users/mia/reset-password")
    assert r.json()["confirmation"] == "pending" and r.json()["user"]["disabled"]
    r = admin.post("/api/users/otto/reset-password")  # an operator's new password takes effect at once
    assert r.json()["confirmation"] == "done" and not r.json()["user"]["disabled"]
    changes = {c["user"]: c for c in env.client("aud").get("/api/account-changes").json()}
    assert set(changes) == {"aud", "olga", "mia"}
    r = env.client("aud").post(f"/api/account-changes/{changes['aud']['entry']}/confirm", json={"reason": "x"})
    assert r.status_code == 409 and "their own account" in r.json()["detail"]  # nobody confirms their own
    r = env.client("aud").post(f"/api/account-changes/{changes['olga']['entry']}/reject", json={"reason": "no"})
    assert r.status_code == 200
    with Session(env.app.engine) as s:
        assert index.user_by_name(s, "olga").disabled  # rejected: stays as it was


def test_a_site_with_one_administrator_makes_the_change_but_flags_it(api_env):
    env = api_env
    with Session(env.app.engine) as s, s.begin():  # nobody else who could confirm: no auditor, one admin
        auth_store.set_disabled(s, index.user_by_name(s, "aud").id, True)
    r = env.client("adam").post("/api/users", json={"name": "nina", "role": "operator"})
    assert r.status_code == 201 and r.json()["confirmation"] == "unconfirmed" and not r.json()["user"]["disabled"]
    (entry,) = audit.search(env.app.engine, action="user.add")
    assert entry.outcome.startswith("ok: unconfirmed") and json.loads(entry.detail)["user"] == "nina"
    with Session(env.app.engine) as s, s.begin():  # an auditor arrives and sees the flagged change
        auth_store.set_disabled(s, index.user_by_name(s, "aud").id, False)
    (change,) = env.client("aud").get("/api/account-changes").json()
    assert change["made_without_confirmation"] is True and change["user"] == "nina"
    r = env.client("aud").post(f"/api/account-changes/{change['entry']}/reject", json={"reason": "not agreed"})
    assert r.status_code == 200
    with Session(env.app.engine) as s:
        assert index.user_by_name(s, "nina").disabled  # a rejected unconfirmed account is shut


def test_the_first_administrator_is_the_bootstrap_and_says_so(tmp_path):
    from vms.appliance import Appliance
    from vms.cli.setup import initialise

    result = initialise(tmp_path / "site")
    app = Appliance.open(result.config_path)
    try:
        (entry,) = audit.search(app.engine, action="user.add")
        detail = json.loads(entry.detail)
        assert entry.actor == "cli" and detail["bootstrap"].startswith("the first administrator")
        assert entry.outcome == "ok" and audit.verify(app.engine).ok
    finally:
        app.close()
