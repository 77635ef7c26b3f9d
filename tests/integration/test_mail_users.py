"""Users' e-mail addresses and mail language: set by an administrator on the users page (validated, audited
without the address), the language also by the user's own choice in the web UI; and the top bar's badge."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from storage.sql import index
from tests.support.api_env import *  # noqa: F403 (fixtures)


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_admin_sets_and_clears_an_address(api_env):
    env = api_env
    admin = env.client("adam")
    csrf = _csrf(admin.get("/admin/users").text)
    r = admin.post("/admin/users", data={"csrf_token": csrf, "op": "contact", "name": "mia",
                                         "email": "mia@library.example", "language": "en"})
    assert r.status_code == 200, r.text
    assert 'value="mia@library.example"' in r.text
    with Session(env.app.engine) as s:
        mia = index.user_by_name(s, "mia")
        assert (mia.email, mia.language) == ("mia@library.example", "en")
    for email, language, words in (("not-an-address", "", "skal se ud som"), ("a@b.dk", "de", "er ikke en af da, en"),
                                   ("x" * 250 + "@b.dk", "", "3 til 254")):
        r = admin.post("/admin/users", data={"csrf_token": csrf, "op": "contact", "name": "mia", "email": email,
                                             "language": language})
        assert r.status_code == 422 and words in r.text, (email, r.text[-500:])
    r = admin.post("/admin/users", data={"csrf_token": csrf, "op": "contact", "name": "mia", "email": "",
                                         "language": ""})
    assert r.status_code == 200
    with Session(env.app.engine) as s:
        mia = index.user_by_name(s, "mia")
        assert (mia.email, mia.language) == (None, None)
    entries = env.client("aud").get("/api/audit", params={"action": "user.contact"}).json()["items"]
    assert len(entries) == 5 and all("mia@" not in e["detail"] for e in entries)
    assert [e["outcome"].split(":")[0] for e in entries].count("refused") == 3
    # nobody sets their own address on the administrator's page (another administrator does)
    r = admin.post("/admin/users", data={"csrf_token": csrf, "op": "contact", "name": "adam", "email": "a@b.dk",
                                         "language": ""})
    assert r.status_code == 409 and "Din egen konto ændres af en anden administrator." in r.text  # the refusal, in Danish
    # a manager may not
    assert env.client("mia").post("/admin/users", data={"op": "contact", "name": "mia"}).status_code == 403


def test_the_language_a_user_picks_is_their_mail_language(api_env):
    env = api_env
    c = env.client("olga")
    assert c.get("/lang/en?next=/tickets", follow_redirects=False).status_code == 303
    with Session(env.app.engine) as s:
        assert index.user_by_name(s, "olga").language == "en"
    env.anonymous().get("/lang/da")  # not signed in: only the cookie
    with Session(env.app.engine) as s:
        assert index.user_by_name(s, "olga").language == "en"


def test_badge_counts_tickets_a_manager_may_decide(api_env):
    env = api_env
    env.file_ticket("olga")
    env.file_ticket("olga")
    env.file_ticket("mia")
    badge = re.compile(r'id="waiting-badge"[^>]*>(\d+)<')
    assert badge.search(env.client("max").get("/tickets").text).group(1) == "3"
    assert badge.search(env.client("mia").get("/tickets").text).group(1) == "2"  # not her own
    assert not badge.search(env.client("olga").get("/tickets").text)
