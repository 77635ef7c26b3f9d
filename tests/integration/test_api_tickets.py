"""Tickets through the API: filing, four-eyes decisions, holds, transitions, expiry."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage.sql import index
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso
from vms.access import tickets

DAY_US = 86_400_000_000


def test_file_approve_places_holds_on_exactly_the_window(api_env):
    env = api_env
    now = env.clock.now_us()
    t = env.file_ticket("olga", cameras=["entrance", "hall"], start_us=now - 7200_000_000, end_us=now - 3600_000_000)
    assert t["state"] == "requested" and t["requester"] == "olga" and t["cameras"] == ["entrance", "hall"]
    assert env.client("mia").get(f"/api/tickets/{t['id']}/holds").json() == []

    approved = env.approve(t["id"], "mia")
    assert approved["state"] == "approved" and approved["decided_by"] == "mia"
    assert approved["next_states"] == ["closed", "expired", "exported"]
    with Session(env.app.engine) as s:
        holds = sorted(index.active_holds(s, env.clock.now_us(), 7 * DAY_US), key=lambda h: h.camera_id)
    assert [(h.camera_id, h.start_us, h.end_us, h.ticket_id, h.released_us) for h in holds] == [
        ("entrance", now - 7200_000_000, now - 3600_000_000, t["id"], None),
        ("hall", now - 7200_000_000, now - 3600_000_000, t["id"], None),
    ]
    # the access window: 7 days by default
    assert approved["access_until"].startswith(iso(now + 7 * DAY_US)[:19])


def test_self_approval_is_refused_and_audited(api_env):
    env = api_env
    t = env.file_ticket("mia")  # a manager files
    r = env.client("mia").post(f"/api/tickets/{t['id']}/approve", json={"reason": "I saw it myself"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "four-eyes" in r.json()["detail"]
    assert env.client("mia").get(f"/api/tickets/{t['id']}").json()["state"] == "requested"
    # another manager may
    assert env.approve(t["id"], "max")["state"] == "approved"
    entries = env.client("aud").get("/api/audit", params={"ticket_id": t["id"]}).json()["items"]
    assert [(e["actor"], e["action"], e["outcome"].split(":")[0]) for e in entries] == [
        ("mia", "ticket.file", "ok"), ("mia", "ticket.approve", "refused"), ("max", "ticket.approve", "ok"),
    ]


def test_operators_cannot_decide(api_env):
    env = api_env
    t = env.file_ticket("olga")
    r = env.client("otto").post(f"/api/tickets/{t['id']}/approve", json={"reason": "looks fine"})
    assert r.status_code == 403


def test_impossible_transitions_are_409_with_the_reason(api_env):
    env = api_env
    t = env.file_ticket("olga")
    deny = env.client("mia").post(f"/api/tickets/{t['id']}/deny", json={"reason": "No incident in the log"})
    assert deny.status_code == 200 and deny.json()["state"] == "denied"
    for verb in ("approve", "deny"):
        r = env.client("max").post(f"/api/tickets/{t['id']}/{verb}", json={"reason": "second thoughts"})
        assert r.status_code == 409, r.text
        assert "denied, which is final" in r.json()["detail"]
    r = env.client("olga").post(f"/api/tickets/{t['id']}/close", json={"reason": "done"})
    assert r.status_code == 409
    # approved twice
    t2 = env.file_ticket("olga")
    env.approve(t2["id"], "mia")
    r = env.client("max").post(f"/api/tickets/{t2['id']}/approve", json={"reason": "me too"})
    assert r.status_code == 409 and "cannot become approved" in r.json()["detail"]


def test_close_releases_holds_after_the_grace_period(api_env):
    env = api_env
    t = env.file_ticket("olga")
    env.approve(t["id"])
    env.advance(3600)
    r = env.client("olga").post(f"/api/tickets/{t['id']}/close", json={"reason": "Handed to police"})
    assert r.status_code == 200 and r.json()["state"] == "closed"
    closed_us = env.clock.now_us()
    holds = env.client("mia").get(f"/api/tickets/{t['id']}/holds").json()
    assert [h["released_at"][:19] for h in holds] == [iso(closed_us + 7 * DAY_US)[:19]]
    with Session(env.app.engine) as s:
        assert len(index.active_holds(s, closed_us + 7 * DAY_US - 1, 7 * DAY_US)) == 1  # still held during the grace
        assert index.active_holds(s, closed_us + 7 * DAY_US, 7 * DAY_US) == []  # then the janitor may delete


def test_access_window_expires_lazily_and_releases_holds(api_env):
    env = api_env
    t = env.file_ticket("olga")
    approved = env.approve(t["id"])
    env.advance(7 * 86400 + 1)
    got = env.client("olga").get(f"/api/tickets/{t['id']}").json()
    assert got["state"] == "expired"
    holds = env.client("mia").get(f"/api/tickets/{t['id']}/holds").json()
    # released grace days after the window ended (not after someone happened to look)
    assert holds[0]["released_at"][:19] == iso(_us(approved["access_until"]) + 7 * DAY_US)[:19]
    entries = env.client("aud").get("/api/audit", params={"action": "ticket.expire"}).json()["items"]
    assert [(e["actor"], e["ticket_id"]) for e in entries] == [("system", t["id"])]


def test_expiry_timer_expires_without_any_request(sqlite_api_env):
    env = sqlite_api_env
    t = env.file_ticket("olga")
    env.approve(t["id"])
    env.advance(8 * 86400)
    timer = tickets.ExpiryTimer(env.app, interval_s=0.05)
    timer.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and tickets.get_unchecked(env.app, t["id"]).state != "expired":
            time.sleep(0.05)
    finally:
        timer.stop()
    assert tickets.get_unchecked(env.app, t["id"]).state == "expired"


def _us(text: str) -> int:
    from datetime import datetime

    return int(round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1_000_000))


def test_operators_see_only_their_own_tickets(api_env):
    env = api_env
    mine = env.file_ticket("olga")
    theirs = env.file_ticket("otto")
    listed = env.client("olga").get("/api/tickets").json()
    assert [t["id"] for t in listed["items"]] == [mine["id"]] and listed["total"] == 1
    assert env.client("olga").get(f"/api/tickets/{theirs['id']}").status_code == 404
    assert {t["id"] for t in env.client("mia").get("/api/tickets").json()["items"]} == {mine["id"], theirs["id"]}
    assert env.client("aud").get("/api/tickets").status_code == 200
    assert env.client("adam").get("/api/tickets").status_code == 403


def test_pagination(api_env):
    env = api_env
    ids = [env.file_ticket("olga")["id"] for _ in range(5)]
    page1 = env.client("mia").get("/api/tickets", params={"limit": 2}).json()
    assert [t["id"] for t in page1["items"]] == ids[::-1][:2] and page1["next_offset"] == 2 and page1["total"] == 5
    page3 = env.client("mia").get("/api/tickets", params={"limit": 2, "offset": 4}).json()
    assert [t["id"] for t in page3["items"]] == [ids[0]] and page3["next_offset"] is None


def test_bad_ticket_input_is_422_naming_the_field(api_env):
    env = api_env
    c = env.client("olga")
    now = env.clock.now_us()
    good = {"cameras": ["entrance"], "start": iso(now - 7200_000_000), "end": iso(now - 3600_000_000),
            "description": "d", "purpose": "p", "legal_basis": "l", "action": "view", "recipient": "police"}
    cases = [
        ({"start": iso(now - 3600_000_000), "end": iso(now - 7200_000_000)}, "reversed"),
        ({"start": iso(now - 40 * DAY_US), "end": iso(now - 1)}, "legal maximum"),
        ({"cameras": ["nowhere"]}, "unknown camera"),
        ({"cameras": ["../etc"]}, "body.cameras[0]"),
        ({"cameras": []}, "at least one camera (or door)"),  # no cameras is allowed when doors are named
        ({"description": "x" * 4001}, "body.description"),
        ({"description": "nul\x00byte"}, "control characters"),
        ({"purpose": "\ud800"}, "body.purpose"),
        ({"start": "2026-01-01T00:00:00"}, "body.start"),  # no time zone
        ({"action": "delete"}, "body.action"),
        ({"recipient": "anyone"}, "body.recipient"),
        ({"start": iso(now + 3600_000_000), "end": iso(now + 7200_000_000)}, "future"),
        ({"extra": 1}, "body.extra"),
    ]
    for change, expect in cases:
        # json.dumps escapes the unpaired surrogate as \\ud800, as a hostile client could
        r = c.post("/api/tickets", content=json.dumps(good | change), headers={"content-type": "application/json"})
        assert r.status_code == 422, (change, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert expect in r.text, (change, r.text)
    r = c.post("/api/tickets", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    assert c.get("/api/tickets/0").status_code == 422
    assert c.get(f"/api/tickets/{10**30}").status_code == 422
    assert c.get("/api/tickets/999999").status_code == 404


def test_an_approved_ticket_keeps_its_footage_past_retention_until_closed_plus_grace(appliance_factory,
                                                                                     database_url, fake_clock):
    """Ticket -> hold -> janitor, end to end: the covered segment outlives its camera's 14 days while the
    ticket is open and through the grace period after it closes; the segment next to it does not."""
    from tests.integration.test_janitor_sweep import record
    from tests.support.api_env import make_api_env
    from vms.retention.janitor import Janitor

    env = make_api_env(appliance_factory, database_url, fake_clock, api={"access_window_days": 30},
                       janitor={"min_free_bytes": 0, "min_free_percent": 0})
    now = env.clock.now_us()
    outside = record(env.app, "entrance", now - 2 * 3_600_000_000)
    inside = record(env.app, "entrance", now - 30 * 60_000_000)
    t = env.file_ticket("olga", start_us=now - 3_600_000_000, end_us=now - 60_000_000)
    env.approve(t["id"])
    janitor = Janitor(env.app)

    def present() -> set[int]:
        with Session(env.app.engine) as s:
            return {i for i in (outside, inside) if index.segment_by_id(s, i) is not None}

    env.advance(15 * 86400)  # both are past the camera's 14 days
    janitor.sweep()
    assert present() == {inside}
    r = env.client("olga").post(f"/api/tickets/{t['id']}/close", json={"reason": "Handed to police"})
    assert r.status_code == 200
    env.advance(7 * 86400 - 60)  # the grace period (7 days) is not over
    janitor.sweep()
    assert present() == {inside}
    env.advance(120)
    janitor.sweep()
    assert present() == set()


def test_filed_answer_get_and_listing_agree_field_for_field(api_env):
    """Filing answers from what it inserted and the listing builds its page from plain rows: both must say
    exactly what reading the ticket back says (cameras of each ticket on the page included)."""
    env = api_env
    cams = sorted(c["id"] for c in env.client("mia").get("/api/cameras").json())
    assert len(cams) >= 2, cams
    filed = [env.file_ticket("olga", cameras=[cams[1], cams[0]], description="  padded text  "),
             env.file_ticket("otto", cameras=[cams[0]]),
             env.file_ticket("mia", cameras=[cams[1]])]
    mia = env.client("mia")
    assert [mia.get(f"/api/tickets/{t['id']}").json() for t in filed] == filed
    assert filed[0]["cameras"] == sorted(cams[:2]) and filed[0]["description"] == "padded text"
    env.approve(filed[0]["id"], name="mia")
    got = {t["id"]: mia.get(f"/api/tickets/{t['id']}").json() for t in filed}
    listed = mia.get("/api/tickets").json()["items"]
    assert [t["id"] for t in listed] == [t["id"] for t in filed][::-1]
    assert listed == [got[t["id"]] for t in filed][::-1]
    by_camera = mia.get("/api/tickets", params={"camera": cams[0]}).json()
    assert [t["id"] for t in by_camera["items"]] == [filed[1]["id"], filed[0]["id"]] and by_camera["total"] == 2
    assert by_camera["items"] == [got[filed[1]["id"]], got[filed[0]["id"]]]
    approved = mia.get("/api/tickets", params={"state": "approved"}).json()["items"]
    assert approved == [got[filed[0]["id"]]] and approved[0]["decided_by"] == "mia"
    assert mia.get("/api/tickets", params={"mine": "true"}).json()["items"] == [got[filed[2]["id"]]]


def test_a_ticket_filed_while_a_page_is_read_does_not_break_the_page(api_env):
    """The page and its cameras are two statements; a ticket committed between them must not make the page
    fail or lose cameras (the cameras are read by the ids the page read)."""
    from sqlalchemy import event

    env = api_env
    for _ in range(3):
        env.file_ticket("olga")
    mia = env.client("mia")
    fired = []

    def between(conn, cursor, statement, params, context, executemany):
        if not fired and statement.lstrip().upper().startswith("SELECT") and "ticket_cameras" in statement \
                and "FROM tickets" not in statement:
            fired.append(statement)
            env.file_ticket("otto")  # another request commits meanwhile

    event.listen(env.app.engine, "before_cursor_execute", between)
    try:
        r = mia.get("/api/tickets", params={"limit": 2})
    finally:
        event.remove(env.app.engine, "before_cursor_execute", between)
    assert fired and r.status_code == 200, r.text
    assert [len(t["cameras"]) for t in r.json()["items"]] == [1, 1]


def test_a_window_that_ends_after_filing_is_refused_naming_the_end(api_env):
    """A ticket covers only footage recorded before it was filed: an end even a minute ahead is a 422 naming
    ``end`` and the latest end allowed, and no ticket (or hold) comes of it; an end of exactly now is fine."""
    env = api_env
    now = env.clock.now_us()
    c = env.client("olga")
    body = {"cameras": ["entrance"], "start": iso(now - 3600_000_000), "description": "d", "purpose": "p",
            "legal_basis": "l", "action": "view", "recipient": "police"}
    for end_us in (now + 2 * DAY_US, now + 60_000_000):
        r = c.post("/api/tickets", json=body | {"end": iso(end_us)})
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail.startswith("end: ") and "no later than its filing time" in detail, detail
    assert env.client("mia").get("/api/tickets").json()["total"] == 0
    assert c.post("/api/tickets", json=body | {"end": iso(now)}).status_code == 201


def test_the_filing_form_refuses_a_future_end_in_the_readers_language(api_env):
    env = api_env
    olga = env.client("olga")
    form = {"description": "Bicycle stolen from the rack", "purpose": "Police report", "legal_basis": "GDPR",
            "action": "view", "recipient": "police", "cameras": "entrance"}
    now_local = datetime.fromtimestamp(env.clock.now_us() / 1e6, ZoneInfo(env.app.config.timezone))
    start, end = (now_local + timedelta(hours=h) for h in (-1, 48))
    form |= {"start": start.strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M")}
    for lang, words in (("en", "To: the time window must end no later than now"),
                        ("da", "Til: tidsrummet skal slutte senest nu")):
        olga.cookies.set("vms_lang", lang)
        r = olga.post("/tickets/new", data=form)
        assert r.status_code == 422 and words in html.unescape(r.text), r.text[:2000]
    assert env.client("mia").get("/api/tickets").json()["total"] == 0
