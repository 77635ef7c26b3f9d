"""Sign-in, cookies, CSRF, lockout with back-off, tokens, one-time passwords, user administration."""

from __future__ import annotations

import json
import re

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import PASSWORD


def _audit(env, **params):
    return env.client("aud").get("/api/audit", params=params | {"limit": 1000}).json()["items"]


def test_signin_sets_a_strict_httponly_secure_cookie_and_is_audited(api_env):
    env = api_env
    c = env.anonymous()
    r = c.post("/api/auth/signin", json={"name": "olga", "password": PASSWORD})
    assert r.status_code == 200
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("vms_session="))
    assert "HttpOnly" in session and "SameSite=strict" in session.replace("Strict", "strict") and "Secure" in session
    csrf = next(h for h in cookies if h.startswith("vms_csrf="))
    assert "HttpOnly" not in csrf
    assert r.json()["user"] == {"id": r.json()["user"]["id"], "name": "olga", "role": "operator", "disabled": False,
                                "must_change_password": False, "locked_until": None}
    assert PASSWORD not in r.text
    assert c.get("/api/auth/me").json()["name"] == "olga"
    bad = env.anonymous().post("/api/auth/signin", json={"name": "olga", "password": "wrong password"})
    unknown = env.anonymous().post("/api/auth/signin", json={"name": "hunter2-typed-here", "password": "x" * 12})
    assert bad.status_code == unknown.status_code == 401
    assert bad.json()["detail"] == unknown.json()["detail"]  # does not reveal which names exist
    entries = [e for e in _audit(env, action="auth.signin") if e["actor"] != "aud"]
    assert [(e["actor"], e["outcome"]) for e in entries] == [
        ("olga", "ok"), ("olga", "refused: wrong password (1 in a row)"), ("(unknown)", "refused: unknown user"),
    ]
    assert "hunter2" not in json.dumps(entries)  # a name matching no user may be a mistyped password
    assert all(e["client"] == "testclient" for e in entries)


def test_plain_http_cookie_is_not_secure(api_env):
    api_env.base_url = "http://testserver"
    r = api_env.anonymous().post("/api/auth/signin", json={"name": "olga", "password": PASSWORD})
    assert "Secure" not in next(h for h in r.headers.get_list("set-cookie") if h.startswith("vms_session="))


def test_csrf_required_for_unsafe_requests_with_the_cookie(api_env):
    env = api_env
    c = env.client("olga", fresh=True)
    token = c.headers.pop("X-CSRF-Token")
    body = {"label": "ci", "days": 1}
    r = c.post("/api/auth/tokens", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert c.post("/api/auth/tokens", json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert c.get("/api/auth/tokens").status_code == 200  # safe methods need none
    assert c.post("/api/auth/tokens", json=body, headers={"X-CSRF-Token": token}).status_code == 201
    # another session's token does not fit this session
    other = env.client("otto", fresh=True).headers["X-CSRF-Token"]
    assert c.post("/api/auth/tokens", json=body, headers={"X-CSRF-Token": other}).status_code == 403


def test_bearer_tokens_need_no_csrf_and_can_be_revoked(api_env):
    env = api_env
    b = env.bearer("mia")
    assert b.get("/api/auth/me").json()["name"] == "mia"
    assert b.post("/api/tickets/999/deny", json={"reason": "x"}).status_code == 404  # passed auth, no CSRF needed
    tokens = env.client("mia").get("/api/auth/tokens").json()
    assert len(tokens) == 1 and tokens[0]["label"] == "test" and "token" not in tokens[0]
    # someone else cannot revoke it
    assert env.client("max").delete(f"/api/auth/tokens/{tokens[0]['id']}").status_code == 404
    assert env.client("mia").delete(f"/api/auth/tokens/{tokens[0]['id']}").status_code == 204
    r = b.get("/api/auth/me")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert env.anonymous().get("/api/auth/me", headers={"Authorization": "Basic abc"}).status_code == 401
    assert env.anonymous().get("/api/auth/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_token_lifetime_is_bounded_and_expires(api_env):
    env = api_env
    c = env.client("mia")
    r = c.post("/api/auth/tokens", json={"label": "long", "days": 365})
    assert r.status_code == 422 and "90 days" in r.json()["detail"]
    token = c.post("/api/auth/tokens", json={"label": "short", "days": 1}).json()["token"]
    env.advance(86400 + 1)
    r = env.anonymous().get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_signout_ends_the_session(api_env):
    env = api_env
    c = env.client("olga", fresh=True)
    cookie = c.cookies.get("vms_session")
    assert c.post("/api/auth/signout").status_code == 204
    replay = env.anonymous()
    replay.cookies.set("vms_session", cookie, domain="testserver.local")
    r = env.anonymous().get("/api/auth/me", headers={"Cookie": f"vms_session={cookie}"})
    assert r.status_code == 401


def test_lockout_with_back_off(api_env):
    env = api_env
    c = env.anonymous()

    def attempt(password):
        return c.post("/api/auth/signin", json={"name": "otto", "password": password})

    for _ in range(4):
        assert attempt("wrong").status_code == 401
    r = attempt("wrong")  # the 5th failure locks for 30 s
    assert r.status_code == 401
    r = attempt(PASSWORD)  # even the right password is refused while locked, as if it were wrong
    assert r.status_code == 401 and "retry-after" not in r.headers
    env.advance(31)
    assert attempt("wrong").status_code == 401  # 6th failure: 60 s
    env.advance(31)
    assert attempt(PASSWORD).status_code == 401
    env.advance(30)
    assert attempt(PASSWORD).status_code == 200  # success resets the count
    assert attempt("wrong").status_code == 401
    assert attempt(PASSWORD).status_code == 200
    outcomes = [e["outcome"] for e in _audit(env, actor="otto", action="auth.signin")]
    assert outcomes[4] == "refused: wrong password (5 in a row; locked for 30 s)"
    assert outcomes[5].startswith("refused: account locked")
    assert outcomes[6] == "refused: wrong password (6 in a row; locked for 60 s)"


def _lock(env, name: str) -> None:
    for _ in range(env.app.config.api.lockout_after):
        assert env.anonymous().post("/api/auth/signin", json={"name": name, "password": "wrong"}).status_code == 401


def _answer(r, *secrets: str) -> tuple:
    """What a client sees of an answer: status, headers (but the date) and body, with per-form secrets and
    nonces (random on every page) replaced by a placeholder."""
    def plain(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "SECRET")
        return re.sub(r"nonce(=\"|-)[A-Za-z0-9+/=_-]+", r"nonce\1X", text)
    headers = sorted((k, plain(v)) for k, v in r.headers.multi_items() if k.lower() != "date")
    return r.status_code, headers, plain(r.text)


def test_signin_answers_unknown_names_wrong_passwords_and_locked_accounts_alike(api_env):
    """No oracle: a client cannot tell a name that exists, or one that is locked, from one that does not; only
    the audit trail (and the lockout) know which it was."""
    env = api_env
    _lock(env, "otto")
    tries = {"unknown name": ("nora", PASSWORD),  # names of one length: the web form shows the name typed "wrong password": ("olga", "wrong"),
             "locked, right password": ("otto", PASSWORD), "locked, wrong password": ("otto", "wrong")}
    api = {why: _answer(env.anonymous().post("/api/auth/signin", json={"name": name, "password": password}))
           for why, (name, password) in tries.items()}
    assert api["unknown name"][0] == 401
    assert all(answer == api["unknown name"] for answer in api.values()), api
    web = {}
    for why, (name, password) in tries.items():
        c = env.anonymous()
        c.get("/signin")
        token = c.cookies.get("vms_signin")
        r = c.post("/signin", data={"name": name, "password": password, "next": "/", "signin_token": token})
        web[why] = _answer(r, r.cookies.get("vms_signin"), name)  # a new form, with a token of its own
    assert web["unknown name"][0] == 401
    assert all(answer == web["unknown name"] for answer in web.values()), web
    outcomes = [e["outcome"] for e in _audit(env, action="auth.signin")]
    assert sum(o.startswith("refused: account locked") for o in outcomes) == 4
    assert sum(o.startswith("refused: unknown user") for o in outcomes) == 2


def test_guessing_from_one_address_locks_that_address_out_before_any_password_is_hashed(api_env):
    """Per-account lockout cannot stop spraying many names from one address: after api.signin_address_failures
    (20) failed password checks within api.signin_address_window_s (600 s), that address waits, right password
    or not; other addresses are not affected. Every attempt is audited."""
    from fastapi.testclient import TestClient

    env = api_env
    guesser, other = (TestClient(env.api, base_url=env.base_url, raise_server_exceptions=False, client=(addr, 40000))
                      for addr in ("203.0.113.7", "198.51.100.2"))

    def attempt(c, name, password):
        return c.post("/api/auth/signin", json={"name": name, "password": password})

    names = ["olga", "otto", "mia", "aud"]  # 4 wrong passwords each: below the per-account lockout (5)
    for i in range(16):
        assert attempt(guesser, names[i % 4], f"guess {i}").status_code == 401
    for i in range(3):
        assert attempt(guesser, f"nobody{i}", "guess").status_code == 401
    r = attempt(guesser, "nobody3", "guess")  # the 20th failure locks the address
    assert r.status_code == 401
    r = attempt(guesser, "olga", PASSWORD)
    assert r.status_code == 429 and r.headers["retry-after"] == "600", r.text
    assert r.json()["detail"] == "too many failed sign-ins from your address; try again in 600 s"
    assert attempt(other, "olga", PASSWORD).status_code == 200  # another address signs in
    assert attempt(guesser, "otto", PASSWORD).status_code == 429  # counted, not each audited (no flood)
    assert attempt(guesser, "nobody", "x").status_code == 429
    env.advance(599)
    assert attempt(guesser, "olga", PASSWORD).status_code == 429
    env.advance(2)
    assert attempt(guesser, "olga", PASSWORD).status_code == 200  # the window has passed

    auditor = TestClient(env.api, base_url=env.base_url, raise_server_exceptions=False, client=("192.0.2.1", 1))
    csrf = attempt(auditor, "aud", PASSWORD).json()["csrf_token"]
    entries = auditor.get("/api/audit", params={"action": "auth.signin", "limit": 1000},
                          headers={"X-CSRF-Token": csrf}).json()["items"]
    from_guesser = [e for e in entries if e["client"] == "203.0.113.7"]
    assert len(from_guesser) == 23  # 20 failures, two entries for four refusals, one success
    assert from_guesser[19]["outcome"] == "refused: unknown user; address locked out (20 failures within 600 s)"
    assert [e["outcome"] for e in from_guesser[20:22]] == \
        ["refused: too many failed sign-ins from this address; 600 s to wait"] + \
        ["refused: too many failed sign-ins from this address; 1 s to wait; 2 more refused since the previous entry"]
    assert [e["actor"] for e in from_guesser[20:22]] == ["(unknown)", "(unknown)"]
    assert from_guesser[22]["outcome"] == "ok" and from_guesser[22]["actor"] == "olga"


def test_loopback_is_not_limited_per_address(api_env):
    """This machine's own tools, or a local reverse proxy not listed in api.trusted_proxies: one address would
    stand for every user, so one guesser could lock everyone out. Only the per-account lockout applies."""
    from fastapi.testclient import TestClient

    env = api_env
    local = TestClient(env.api, base_url=env.base_url, raise_server_exceptions=False, client=("127.0.0.1", 40000))
    for i in range(25):
        assert local.post("/api/auth/signin", json={"name": f"nobody{i}", "password": "x"}).status_code == 401
    assert local.post("/api/auth/signin", json={"name": "olga", "password": PASSWORD}).status_code == 200


def test_one_time_password_must_be_changed_first(api_env):
    env = api_env
    created = env.client("adam").post("/api/users", json={"name": "nina", "role": "operator"})
    assert created.status_code == 201 and created.json()["confirmation"] == "pending"
    otp = created.json()["one_time_password"]
    assert env.anonymous().post("/api/auth/signin", json={"name": "nina", "password": otp}).status_code == 401
    (change,) = env.client("aud").get("/api/account-changes").json()  # the auditor confirms the new account
    r = env.client("aud").post(f"/api/account-changes/{change['entry']}/confirm", json={"reason": "agreed"})
    assert r.status_code == 200, r.text
    c = env.anonymous()
    r = c.post("/api/auth/signin", json={"name": "nina", "password": otp})
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    r = c.get("/api/tickets")
    assert r.status_code == 403 and "one-time password" in r.json()["detail"]
    r = c.post("/api/auth/password", json={"current_password": otp, "new_password": "short"})
    assert r.status_code == 422 and "at least 12" in r.json()["detail"]
    r = c.post("/api/auth/password", json={"current_password": "wrong", "new_password": "a much longer secret"})
    assert r.status_code == 403
    r = c.post("/api/auth/password", json={"current_password": otp, "new_password": "a much longer secret"})
    assert r.status_code == 204
    assert c.get("/api/tickets").status_code == 200
    assert env.anonymous().post("/api/auth/signin", json={"name": "nina", "password": otp}).status_code == 401


def test_admin_disables_and_resets_users(api_env):
    env = api_env
    admin = env.client("adam")
    victim = env.client("otto", fresh=True)
    r = admin.patch("/api/users/otto", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert victim.get("/api/auth/me").status_code == 401  # sessions end with the account
    assert env.anonymous().post("/api/auth/signin", json={"name": "otto", "password": PASSWORD}).status_code == 401
    assert admin.patch("/api/users/adam", json={"disabled": True}).status_code == 409  # not yourself
    assert admin.patch("/api/users/otto", json={"role": "wizard"}).status_code == 422
    assert admin.patch("/api/users/ghost", json={"disabled": True}).status_code == 404
    assert admin.post("/api/users", json={"name": "otto", "role": "operator"}).status_code == 409
    assert admin.post("/api/users", json={"name": "Bad Name", "role": "operator"}).status_code == 422
    r = admin.post("/api/users/otto/reset-password")
    assert r.status_code == 200 and r.json()["user"]["must_change_password"] is True
    listed = admin.get("/api/users", params={"limit": 2}).json()
    assert listed["total"] == 6 and len(listed["items"]) == 2 and listed["next_offset"] == 2
    actions = [e["action"] for e in _audit(env, actor="adam")]
    assert actions.count("user.disable") == 3 and "user.reset-password" in actions
