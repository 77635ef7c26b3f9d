"""A ticket's holds end on time with no API process running (a recording node alone for weeks): the janitor
reads the ticket rows itself; meanwhile the retention report names footage kept beyond the legal maximum by a
hold, with the hold's ticket and reason.  SQLite and PostgreSQL, a fake clock, no web app anywhere."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from storage.sql import index
from tests.integration.test_janitor_sweep import CAMS, HOUR_US, T0, record, segments
from vms.access import tickets, users
from vms.access.auth import SESSION, Principal
from vms.core.i18n import translator
from vms.retention import rules
from vms.retention.janitor import Janitor

DAY_US = rules.DAY_US


def principal(app, name: str, role: str) -> Principal:
    users.add_user(app.engine, app.clock, users.CONSOLE, name, role)
    with Session(app.engine) as s:
        user = index.user_by_name(s, name)
    return Principal(user.id, name, role, 0, SESSION, False)


@pytest.fixture
def app(appliance_factory, database_url, fake_clock):
    fake_clock.set(T0)
    return appliance_factory(CAMS, database_url=database_url, janitor={"min_free_bytes": 0, "min_free_percent": 0},
                             api={"access_window_days": 30, "hold_grace_days": 7})


def test_a_delivered_tickets_hold_ends_at_window_plus_grace_without_the_api(app, fake_clock):
    seg = record(app, "lib14", T0 + HOUR_US)  # footage of the incident
    fake_clock.set(T0 + 2 * HOUR_US)
    olga, mia = principal(app, "olga", "operator"), principal(app, "mia", "manager")
    t = tickets.file_ticket(app, olga, cameras=["lib14"], start_us=T0, end_us=T0 + 2 * HOUR_US,
                            description="bicycle stolen at the entrance", purpose="police report",
                            legal_basis="TV-overvågningsloven § 4", action="export", recipient="police")
    tickets.decide(app, mia, t.id, approve=True, reason="confirmed by the caretaker")
    tickets.mark_exported(app, mia.actor, t.id)
    tickets.mark_delivered(app, mia.actor, t.id)  # nothing marks it expired later: no API runs
    approved_us = fake_clock.now_us()
    janitor = Janitor(app)

    # day 20: past the camera's 14 days, held; day 31: past the legal maximum too, and the report says so
    for day in (20, 31):
        fake_clock.set(T0 + day * DAY_US)
        janitor.sweep()
        assert seg in segments(app), f"held footage deleted on day {day}"
    report = rules.build_report(app.engine, app.config, fake_clock.now_us())
    (held,) = report.held_beyond_legal
    assert (held.camera_id, held.ticket_id, held.segments) == ("lib14", t.id, 1)
    assert "bicycle" not in held.reason and str(t.id) in held.reason  # the hold's own reason names the ticket
    assert f"ticket {t.id}" in rules.render_text(report, translator("en")) and "HELD beyond the legal maximum" in rules.render_text(report, translator("en"))
    assert report.violations == 0

    # the hold's end: the access window (30 days after approval) plus the grace (7 days)
    end_us = rules.hold_end_us(None, approved_us + 30 * DAY_US, None, 7 * DAY_US)
    assert end_us == approved_us + 37 * DAY_US
    fake_clock.set(end_us - 1)
    janitor.sweep()
    assert seg in segments(app)  # still inside the grace
    fake_clock.set(end_us)
    with Session(app.engine) as s:
        assert tickets.get_unchecked(app, t.id).state == "delivered"  # the ticket was never expired...
        assert index.active_holds(s, fake_clock.now_us(), 7 * DAY_US) == []  # ...yet its hold is over
    janitor.sweep()  # the next sweep deletes the footage
    assert seg not in segments(app)
    assert rules.build_report(app.engine, app.config, fake_clock.now_us()).held_beyond_legal == []


def test_hold_end_is_the_first_of_release_window_and_closing():
    assert rules.hold_end_us(None, None, None, 5) is None  # a hand hold with no release: holds
    assert rules.hold_end_us(100, None, None, 5) == 100
    assert rules.hold_end_us(None, 100, None, 5) == 105
    assert rules.hold_end_us(None, 100, 50, 5) == 55  # closed before the window ended
    assert rules.hold_end_us(60, 100, 50, 5) == 55
