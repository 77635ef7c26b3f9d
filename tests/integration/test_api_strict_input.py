"""Strict request bodies and query parameters: a yes/no is a JSON boolean, a count a JSON integer, a time an
ISO 8601 text with a time zone; anything else is a 422 naming the field, never a guess (SQLite and
PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso

HOUR_US = 3_600_000_000


def _refused(r, field: str, words: str = "") -> None:
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["field"] == field and problem["detail"].startswith(f"{field}: "), problem
    assert words in problem["detail"], problem


@pytest.mark.parametrize("value", ["yes", 1, 0, "true", "1"])
def test_a_yes_or_no_is_a_json_boolean(api_env, value):
    adam = api_env.client("adam")
    _refused(adam.patch("/api/users/otto", json={"disabled": value}), "body.disabled", "boolean")
    olga = api_env.client("olga")
    ticket = api_env.file_ticket("olga", action="export")
    _refused(olga.post(f"/api/tickets/{ticket['id']}/exports", json={"redaction": {"faces": value}}),
             "body.redaction.faces", "boolean")
    assert adam.get("/api/users/otto").json()["disabled"] is False
    assert adam.patch("/api/users/otto", json={"disabled": True}).json()["disabled"] is True


def test_delivery_and_token_fields_take_no_guesses(api_env):
    mia = api_env.client("mia")
    package = "0" * 32  # validation comes first: the package need not exist
    for change, field in (({"generate_passcode": 1}, "body.generate_passcode"),
                          ({"generate_passcode": "yes"}, "body.generate_passcode"),
                          ({"max_downloads": "3"}, "body.max_downloads"),
                          ({"expires_hours": 1.5}, "body.expires_hours"),
                          ({"expires_hours": True}, "body.expires_hours")):
        _refused(mia.post(f"/api/packages/{package}/deliveries", json={"recipient": "Politi"} | change), field)
    for days in ("30", 30.0, True):
        _refused(mia.post("/api/auth/tokens", json={"label": "script", "days": days}), "body.days")


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value, words", [
    (1_767_225_600, "numbers such as Unix times are not accepted"),  # a Unix time in seconds
    (1_767_225_600_000, "numbers such as Unix times are not accepted"),  # ... in milliseconds
    ("1767225600", "numbers such as Unix times are not accepted"),
    ("2026-01-01T00:00:00", "no time zone"),
    ("2026-01-01 00:00", "no time zone"),
    ("2026-01-01", "ISO 8601"),
    ("yesterday", "ISO 8601"),
])
def test_a_ticket_window_is_iso_8601_with_a_zone(api_env, field, value, words):
    now = api_env.clock.now_us()
    body = {"cameras": ["entrance"], "start": iso(now - 2 * HOUR_US), "end": iso(now - HOUR_US),
            "description": "d", "purpose": "p", "legal_basis": "l", "action": "view", "recipient": "police"}
    _refused(api_env.client("olga").post("/api/tickets", json=body | {field: value}), f"body.{field}", words)


def test_time_and_yes_no_query_parameters_are_strict(api_env):
    env = api_env
    t = env.file_ticket("olga")
    env.approve(t["id"])
    play = f"/api/tickets/{t['id']}/cameras/entrance/play"
    now = env.clock.now_us()
    good = {"start": iso(now - HOUR_US), "end": iso(now - HOUR_US + 1_000_000)}
    olga, aud = env.client("olga"), env.client("aud")
    for name in ("start", "end"):
        _refused(olga.get(play, params=good | {name: "1767225600"}), f"query.{name}", "Unix times")
        _refused(olga.get(play, params=good | {name: "2026-01-01T00:00:00"}), f"query.{name}", "no time zone")
    for name in ("since", "until"):
        _refused(aud.get("/api/audit", params={name: "1767225600"}), f"query.{name}", "Unix times")
        _refused(aud.get("/api/audit", params={name: "2026-01-01T00:00"}), f"query.{name}", "no time zone")
    assert aud.get("/api/audit", params={"since": "2026-01-01T00:00:00+01:00"}).status_code == 200
    for value in ("yes", "1", "on"):
        _refused(olga.get("/api/tickets", params={"mine": value}), "query.mine", "true or false")
    assert olga.get("/api/tickets", params={"mine": "true"}).json()["total"] == 1


@pytest.mark.parametrize("change, field, shown, key, danish", [
    ({"start": "1767225600"}, "start", "Fra", "invalid.time_number", "tal som Unix-tid tages ikke imod"),
    ({"start": "2026-01-01T00:00:00"}, "start", "Fra", "invalid.time_zone", "Tidspunktet mangler tidszone"),
    ({"end": "yesterday"}, "end", "Til", "invalid.time_format", "Ikke en ISO 8601-dato og -tid med tidszone"),
    ({"start": "2300-01-01T00:00:00Z"}, "start", "Fra", "invalid.time_range", "ligger uden for det tilladte"),
    ({"purpose": "a\x00b"}, "purpose", "Formål", "invalid.control_characters", "Styretegn er ikke tilladt"),
    ({"description": "x" * 5000}, "description", "Hvad skete der", "invalid.too_long", "Højst "),
    ({"description": None}, "description", "Hvad skete der", "invalid.text", "Skal være en tekst"),
    ({"action": "steal"}, "action", "Handling", "invalid.choice", "Skal være en af: "),
    ({"cameras": "entrance"}, "cameras", "Kameraer", "invalid.list", "Skal være en liste"),
    ({"colour": "red"}, "colour", "colour", "invalid.extra", "Feltet findes ikke her"),
])
def test_refused_input_is_explained_in_danish(api_env, change, field, shown, key, danish):
    """The 422's localized_detail says in the reader's language which field and what is allowed (detail stays
    English for scripts); Danish when Accept-Language names neither language."""
    now = api_env.clock.now_us()
    body = {"cameras": ["entrance"], "start": iso(now - 2 * HOUR_US), "end": iso(now - HOUR_US),
            "description": "d", "purpose": "p", "legal_basis": "l", "action": "view", "recipient": "police"}
    olga = api_env.client("olga")
    for lang in ("da", "fr"):
        r = olga.post("/api/tickets", json=body | change, headers={"Accept-Language": lang})
        assert r.status_code == 422, r.text
        p = r.json()
        assert p["message_id"] == key and p["errors"][0]["message_id"] == key, p
        assert p["localized_detail"].startswith(f"{shown}: ") and danish in p["localized_detail"], p
        assert r.headers["content-language"] == "da"
        assert p["detail"].startswith(f"body.{field}: ") and danish not in p["detail"]
    r = olga.post("/api/tickets", json=body | change, headers={"Accept-Language": "en-GB,en;q=0.8"})
    english = r.json()["localized_detail"]
    assert r.headers["content-language"] == "en" and ": " in english and danish not in english, english


def test_several_problems_are_counted_in_danish(api_env):
    r = api_env.client("olga").post("/api/tickets", json={"cameras": 3}, headers={"Accept-Language": "da"})
    p = r.json()
    assert r.status_code == 422 and len(p["errors"]) > 2
    assert p["localized_detail"].endswith(f"(og {len(p['errors']) - 1} fejl mere)"), p
    assert all(e["localized"] and e["message_id"].startswith("invalid.") for e in p["errors"])
