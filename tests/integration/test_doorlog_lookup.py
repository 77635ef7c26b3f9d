"""Door-log lookups only through an approved ticket, on SQLite and PostgreSQL: refused without approval, outside
the ticket's doors or window, by identifier when the ticket does not say so, and after its access period; each
lookup is one audit entry with its scope and no CPR number in clear; approval holds the ticket's doors."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql import doorlog as q
from storage.sql import index
from storage.sql.models import AuditEntry
from testkit.doorlog import FAKE_CPR, FAKE_CPR_DIGITS, csv_default
from vms.access import tickets, users
from vms.access.audit import SYSTEM
from vms.access.auth import SESSION, Principal
from vms.core.errors import DomainError, Kind
from vms.doorlog import ingest, lookup

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MIN_US, HOUR_US, DAY_US = 60_000_000, 3_600_000_000, 86_400_000_000
EVENING = T0 + 21 * HOUR_US  # 21:00 UTC on day 0


def principal(app, name: str, role: str) -> Principal:
    users.add_user(app.engine, app.clock, users.CONSOLE, name, role)
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
    return Principal(user.id, name, role, 0, SESSION, False)


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0 + DAY_US)
    app = appliance_factory([{"id": "cam1", "source": "rtsp://127.0.0.1:1/a", "retain_days": 14}],
                            database_url=database_url, doorlog={"inbox": "inbox"},
                            api={"access_window_days": 7})
    passages = [(EVENING + k * 5 * MIN_US, "main" if k % 2 else "side", f"card{1000 + k}") for k in range(12)]
    passages += [(EVENING + 7 * MIN_US, "main", FAKE_CPR), (EVENING + 50 * MIN_US, "main", FAKE_CPR),
                 (EVENING + 8 * MIN_US, "garage", FAKE_CPR)]
    assert ingest.import_file(app, csv_default(passages), name="x.csv", source="inbox", actor=SYSTEM).added == 15
    return app


def file(app, who, *, id_lookup: bool, doors=("main",)):
    return tickets.file_ticket(app, who, cameras=[], doors=list(doors), door_id_lookup=id_lookup,
                               start_us=EVENING, end_us=EVENING + 30 * MIN_US, description="window broken at 21:10",
                               purpose="find who was inside", legal_basis="GDPR art. 6(1)(e)", action="view",
                               recipient="internal")


def lookups(app) -> list[AuditEntry]:
    with Session(app.engine) as s:
        return [e for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)) if e.action == "doorlog.lookup"]


def refused(fn, kind: Kind | None = None) -> DomainError:
    with pytest.raises(DomainError) as exc:
        fn()
    assert kind is None or exc.value.kind == kind, exc.value.message
    return exc.value


def test_lookups_inside_an_approved_ticket_only(app, fake_clock):
    olga, mia, otto = principal(app, "olga", "operator"), principal(app, "mia", "manager"), principal(app, "otto", "operator")
    t = file(app, olga, id_lookup=False)
    assert t.doors == ("main",)
    refused(lambda: lookup.at_doors(app, olga, t.id), Kind.PRECONDITION)  # not approved yet
    refused(lambda: tickets.decide(app, olga, t.id, approve=True, reason="ok"))  # four eyes: not the requester
    tickets.decide(app, mia, t.id, approve=True, reason="the police asked")
    with Session(app.engine) as s:
        (hold,) = q.holds_of(s, t.id)
        assert (hold.door_id, hold.start_us, hold.end_us) == ("main", EVENING, EVENING + 30 * MIN_US)
    n0 = len(lookups(app))

    found = lookup.at_doors(app, olga, t.id)  # who passed the main door 21:00-21:30
    assert [p.door_id for p in found] == ["main"] * 4
    assert [p.at_us for p in found] == sorted(p.at_us for p in found)
    assert FAKE_CPR in {p.identifier for p in found} and "card1001" in {p.identifier.lower() for p in found}
    entries = lookups(app)[n0:]
    assert len(entries) == 1 and entries[0].outcome == "ok" and entries[0].ticket_id == t.id
    assert "doors=main" in entries[0].detail and f"span={EVENING}..{EVENING + 30 * MIN_US}" in entries[0].detail
    assert "passages=4" in entries[0].detail

    sub = lookup.at_doors(app, mia, t.id, start_us=EVENING, end_us=EVENING + 10 * MIN_US)
    assert len(sub) == 2 and len(lookups(app)) == n0 + 2

    for bad in (lambda: lookup.at_doors(app, olga, t.id, doors=["side"]),  # outside its doors
                lambda: lookup.at_doors(app, olga, t.id, start_us=EVENING - MIN_US),  # outside its window
                lambda: lookup.at_doors(app, olga, t.id, end_us=EVENING + 31 * MIN_US),
                lambda: lookup.of_identifier(app, olga, t.id, FAKE_CPR)):  # the ticket does not allow it
        refused(bad, Kind.FORBIDDEN)
    assert refused(lambda: lookup.at_doors(app, otto, t.id), Kind.NOT_FOUND).message == f"ticket {t.id} does not exist"
    assert all(e.outcome.startswith("refused") for e in lookups(app)[n0 + 2:])

    fake_clock.set(T0 + DAY_US + 7 * DAY_US)  # the access period (7 days) is over
    refused(lambda: lookup.at_doors(app, olga, t.id))
    trail = lookups(app)
    assert all(FAKE_CPR_DIGITS not in e.detail + e.outcome and "310771" not in e.detail for e in trail)


def test_identifier_lookup_when_the_ticket_says_so(app):
    olga, mia = principal(app, "olga", "operator"), principal(app, "mia", "manager")
    t = file(app, olga, id_lookup=True, doors=("main", "garage"))
    tickets.decide(app, mia, t.id, approve=True, reason="the police asked")
    found = lookup.of_identifier(app, olga, t.id, FAKE_CPR_DIGITS)  # without the dash too
    assert [(p.door_id, p.at_us, p.kind) for p in found] == [("main", EVENING + 7 * MIN_US, "cpr"),
                                                            ("garage", EVENING + 8 * MIN_US, "cpr")]
    assert lookup.of_identifier(app, olga, t.id, "card1003")[0].door_id == "main"
    assert lookup.of_identifier(app, olga, t.id, "card1002") == []  # passed the side door: not the ticket's
    refused(lambda: lookup.of_identifier(app, olga, t.id, "12"), Kind.INVALID)
    (entry, *_rest) = [e for e in lookups(app) if "by=identifier" in e.detail]
    assert "kind=cpr" in entry.detail and "ref=" in entry.detail and FAKE_CPR_DIGITS not in entry.detail
    assert "passages=2" in entry.detail


def test_filing_names_only_known_doors(app):
    olga = principal(app, "olga", "operator")
    err = refused(lambda: file(app, olga, id_lookup=False, doors=("cellar",)), Kind.INVALID)
    assert "unknown door(s): cellar" in err.message
    err = refused(lambda: tickets.file_ticket(
        app, olga, cameras=[], start_us=EVENING, end_us=EVENING + MIN_US, description="x", purpose="y",
        legal_basis="z", action="view", recipient="internal"), Kind.INVALID)
    assert "at least one camera (or door)" in err.message
