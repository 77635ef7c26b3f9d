"""The door log in the web UI (without a browser; SQLite and PostgreSQL): the filing form offers the doors, the
approved ticket's page offers both lookups in Danish and in English, the results show times, doors and CPR or
card numbers, a search by CPR number never puts it in a URL, and a door outside the ticket is refused on the
page in the reader's language."""

from __future__ import annotations

import pytest

from testkit.doorlog import FAKE_CPR, FAKE_CPR_DIGITS, csv_default
from tests.support.api_env import make_api_env
from vms.access.audit import SYSTEM
from vms.doorlog import ingest

T0 = 1_767_225_600_000_000
MIN_US, HOUR_US, DAY_US = 60_000_000, 3_600_000_000, 86_400_000_000
EVENING = T0 + 20 * HOUR_US  # 21:00 in Copenhagen


@pytest.fixture
def env(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0 + DAY_US)
    env = make_api_env(appliance_factory, database_url, fake_clock, doorlog={"inbox": "inbox"})
    ingest.import_file(env.app, csv_default([(EVENING + 5 * MIN_US, "hoveddør", FAKE_CPR),
                                             (EVENING + 9 * MIN_US, "hoveddør", "card4711"),
                                             (EVENING + 12 * MIN_US, "bagdør", "card4712")]),
                       name="a.csv", source="inbox", actor=SYSTEM)
    return env


def test_file_a_door_ticket_and_look_up_in_danish_and_english(env):
    olga = env.client("olga")
    form = olga.get("/tickets/new").text
    assert 'name="doors" value="hoveddør"' in form and "Tillad søgning på ét CPR- eller kortnummer" in form
    r = olga.post("/tickets/new", data={
        "doors": "hoveddør", "door_id_lookup": "on", "start": "2026-01-01T21:00", "end": "2026-01-01T21:30",
        "description": "Rude knust ved hoveddøren", "purpose": "Finde ud af, hvem der var inde",
        "legal_basis": "Databeskyttelsesforordningen art. 6, stk. 1, litra e", "action": "view",
        "recipient": "internal"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    tid = int(r.headers["location"].split("/")[2].split("?")[0])
    assert 'id="doorlog"' not in olga.get(f"/tickets/{tid}").text  # not approved: no lookups offered
    mia = env.client("mia")
    assert mia.post(f"/tickets/{tid}/decide", data={"decision": "approve", "reason": "ok"},
                    follow_redirects=False).status_code == 303

    page = olga.get(f"/tickets/{tid}").text
    assert 'id="doorlog"' in page and "Hvem gik ind ad døren?" in page and "hoveddør" in page
    r = olga.get(f"/tickets/{tid}/doorlog", params={"search": "1", "door": "hoveddør",
                                                   "start": "2026-01-01T21:00", "end": "2026-01-01T21:30"})
    assert r.status_code == 200 and "2 passage(r)" in r.text and FAKE_CPR in r.text and "CARD4711" in r.text
    assert "CPR-nr." in r.text and "Opslaget er skrevet i revisionssporet." in r.text
    r = olga.post(f"/tickets/{tid}/doorlog/identifier", data={"identifier": FAKE_CPR_DIGITS,
                                                               "start": "2026-01-01T21:00",
                                                               "end": "2026-01-01T21:30"})
    assert r.status_code == 200 and "1 passage(r)" in r.text and "21:05" in r.text
    assert FAKE_CPR_DIGITS not in str(r.url) and FAKE_CPR not in str(r.url)
    r = olga.get(f"/tickets/{tid}/doorlog", params={"search": "1", "door": "bagdør"})
    assert r.status_code == 403 and "Døren hører ikke til sagens døre." in r.text  # a sentence of its own

    olga.get("/lang/en?next=/tickets")
    r = olga.get(f"/tickets/{tid}/doorlog", params={"search": "1"})
    assert "Who passed the door?" in r.text and "2 passage(s)" in r.text and "CPR no." in r.text
    r = olga.get(f"/tickets/{tid}/doorlog", params={"search": "1", "start": "2026-01-01T20:00"})
    assert r.status_code == 403 and "The span lies outside the ticket" in r.text
    assert env.client("adam").get(f"/tickets/{tid}/doorlog").status_code == 403


def test_the_administrator_sees_the_files_received_without_identifiers(env):
    ingest.import_file(env.app, b"time,door,id\n2026-01-01T21:00:00,main,310771-9876\n", name="bad.csv",
                       source="inbox", actor=SYSTEM)
    page = env.client("adam").get("/admin").text
    assert 'id="doorlog-files"' in page and "Adgangslog: modtagne filer" in page
    assert 'data-status="rejected"' in page and "line 2: time: has no UTC offset" in page
    assert 'data-status="imported"' in page and FAKE_CPR_DIGITS not in page and FAKE_CPR not in page
