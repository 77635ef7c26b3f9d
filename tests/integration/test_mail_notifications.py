"""Notification e-mails, read from a real SMTP server (aiosmtpd on 127.0.0.1), on SQLite and PostgreSQL.

Events go to the outbox in their own transaction; the mail worker (vms.notify.sender) sends them; the clock's
notices (vms.notify.timers) and problems (vms.ops.problem_mail) are driven with a moved clock.
"""

from __future__ import annotations

import socket

from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql import outbox as store
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.api_env import iso, make_api_env
from tests.support.smtp import *  # noqa: F403 (fixtures)
from tests.support.smtp import PUBLIC_URL, SmtpServer, free_port
from vms.notify.sender import MailSender
from vms.notify.timers import due_notices
from vms.ops.alarms import Alarms
from vms.ops.problem_mail import ProblemNotices

H = 3600
ADDRESSES = {"olga": "olga@library.example", "mia": "mia@library.example", "max": "max@library.example",
             "aud": "aud@library.example", "adam": "adam@library.example"}


def mail_env(appliance_factory, database_url, fake_clock, mail: dict, *, languages=None):
    env = make_api_env(appliance_factory, database_url, fake_clock, mail=mail)
    languages = {"max": "en"} if languages is None else languages
    with Session(env.app.engine) as s, s.begin():
        for name, address in ADDRESSES.items():
            user = index.user_by_name(s, name)
            store.set_contact(s, user.id, email=address, language=languages.get(name))
    return env


def outbox(env) -> list[store.MailRow]:
    with Session(env.app.engine) as s:
        return list(s.execute(__import__("sqlalchemy").select(*store._MAIL_COLS)).all())


def test_ticket_filed_mails_the_managers_who_may_decide_it(appliance_factory, database_url, fake_clock, smtp_server):
    env = mail_env(appliance_factory, database_url, fake_clock, smtp_server.config())
    t = env.file_ticket("olga")
    assert smtp_server.inbox.messages == []  # filing only queued them
    assert MailSender(env.app).send_due() == 2
    inbox = smtp_server.inbox
    assert sorted(m.to for m in inbox.messages) == ["max@library.example", "mia@library.example"]
    (da,), (en,) = inbox.to("mia@library.example"), inbox.to("max@library.example")
    assert da.subject == f"Sag {t['id']} venter på en afgørelse" and da.message["Content-Language"] == "da"
    assert en.subject == f"Ticket {t['id']} is waiting for a decision"
    assert f"{PUBLIC_URL}/tickets/{t['id']}" in da.body and "Hej mia" in da.body
    assert da.message["From"] == "Videoarkiv <cctv@library.example>"
    for m in inbox.messages:  # no description, purpose, legal basis or requester's address in a mail
        assert "Bicycle" not in m.body and "GDPR" not in m.body and "olga@" not in m.body
    assert MailSender(env.app).send_due() == 0  # sent once

    inbox.clear()
    t2 = env.file_ticket("mia")  # a manager's own ticket: only the other manager may decide it
    MailSender(env.app).send_due()
    assert [m.to for m in inbox.messages] == ["max@library.example"] and str(t2["id"]) in inbox.messages[0].subject


def test_reminder_and_escalation_with_a_moved_clock(appliance_factory, database_url, fake_clock, smtp_server):
    env = mail_env(appliance_factory, database_url, fake_clock, smtp_server.config(reminder_hours=4,
                                                                                   escalation_hours=24))
    t = env.file_ticket("mia")
    sender, inbox = MailSender(env.app), smtp_server.inbox
    sender.send_due()
    inbox.clear()
    env.advance(3.9 * H)
    assert due_notices(env.app) == 0
    env.advance(0.2 * H)
    assert due_notices(env.app) == 1  # the reminder: max (mia filed it)
    assert due_notices(env.app) == 0  # once
    sender.send_due()
    assert [(m.to, m.subject) for m in inbox.messages] == [
        ("max@library.example", f"Reminder: ticket {t['id']} is still waiting")]
    inbox.clear()
    env.advance(20 * H)
    assert due_notices(env.app) == 2  # the escalation: every manager, mia too
    assert due_notices(env.app) == 0
    sender.send_due()
    assert sorted((m.to, m.subject) for m in inbox.messages) == [
        ("max@library.example", f"Ticket {t['id']} has waited 24 hours without a decision"),
        ("mia@library.example", f"Sag {t['id']} har ventet i 24 timer uden afgørelse")]
    # a decided ticket is not reminded of
    t2 = env.file_ticket("olga")
    env.approve(t2["id"], "max")
    sender.send_due()
    inbox.clear()
    env.advance(30 * H)
    due_notices(env.app)
    sender.send_due()
    assert inbox.messages == []


def test_decisions_mail_the_requester(appliance_factory, database_url, fake_clock, smtp_server):
    env = mail_env(appliance_factory, database_url, fake_clock, smtp_server.config())
    a, d = env.file_ticket("olga"), env.file_ticket("olga")
    env.approve(a["id"], "mia")
    r = env.client("max").post(f"/api/tickets/{d['id']}/deny", json={"reason": "Not a matter for footage"})
    assert r.status_code == 200, r.text
    smtp_server.inbox.clear()
    MailSender(env.app).send_due()
    olga = smtp_server.inbox.to("olga@library.example")
    assert sorted(m.subject for m in olga) == [f"Din sag {a['id']} er godkendt", f"Din sag {d['id']} er afvist"]
    approved = next(m for m in olga if "godkendt" in m.subject)
    assert "indtil" in approved.body and f"/tickets/{a['id']}" in approved.body
    denied = next(m for m in olga if "afvist" in m.subject)
    assert "Not a matter" not in denied.body  # the reason is on the page, not in the mail


def test_problems_mail_admins_and_auditors_once_until_cleared(appliance_factory, database_url, fake_clock,
                                                             smtp_server):
    env = mail_env(appliance_factory, database_url, fake_clock, smtp_server.config(offline_minutes=10),
                   languages={"adam": "en"})
    app, inbox, sender = env.app, smtp_server.inbox, MailSender(env.app)
    alarms = Alarms(node_id="test-node", clock=fake_clock)
    problems = ProblemNotices(app)
    alarms.add_listener(problems.on_alarm)
    # the audit chain alarm, raised at every failing check: one mail each to the administrator and the auditor
    for _ in range(3):
        alarms.raise_alarm("audit_chain_broken", "entry 7: hash does not match", severity="critical")
    sender.send_due()
    assert sorted((m.to, m.subject) for m in inbox.messages) == [
        ("adam@library.example", "Problem on the video archive: the audit trail does not verify"),
        ("aud@library.example", "Problem på videoarkivet: revisionssporet kan ikke verificeres")]
    assert f"{PUBLIC_URL}/health" in inbox.messages[0].body
    inbox.clear()
    ProblemNotices(app).on_alarm("audit_chain_broken", None, True, "again")  # a restart does not mail it again
    alarms.clear("audit_chain_broken")
    env.advance(60)
    alarms.raise_alarm("audit_chain_broken", "entry 9: hash does not match", severity="critical")
    sender.send_due()
    assert len(inbox.messages) == 2  # cleared, then back: mailed again

    # a camera silent longer than offline_minutes (no packet ever since the watch started)
    inbox.clear()
    problems.check()
    env.advance(11 * 60)
    for _ in range(2):
        problems.check()
    sender.send_due()
    offline = sorted(m.body for m in inbox.messages if "offline" in m.subject)
    assert len(offline) == 4  # entrance and hall, to adam and aud
    assert any("Camera entrance has sent nothing for 12 minutes" in b for b in offline)
    # packets flow again: cleared, and nothing more is sent
    with Session(app.engine) as s, s.begin():
        for cam in ("entrance", "hall"):
            index.save_camera_state(s, cam, node_id="test-node", now_us=fake_clock.now_us(),
                                    last_packet_us=fake_clock.now_us(), bitrate_bps=8.0, online=True)
    inbox.clear()
    problems.check()
    with Session(app.engine) as s:
        assert not [k for k in store.open_keys(s) if k.startswith("camera_offline")]
    # the disk forecast: at 8 bit/s nothing is short; at an absurd rate the disk holds less than the retention
    assert "disk_forecast" not in problems._open_keys()
    with Session(app.engine) as s, s.begin():
        index.save_camera_state(s, "hall", node_id="test-node", now_us=fake_clock.now_us(),
                                last_packet_us=fake_clock.now_us(), bitrate_bps=8e15, online=True)
    problems.check()
    problems.check()
    sender.send_due()
    short = [m for m in inbox.messages if "disk" in m.subject]
    assert len(short) == 2
    da = next(m for m in short if m.to.startswith("aud"))
    assert "rækker disken kun til" in da.body and "kamera hall: 30 dages opbevaring kræver" in da.body
    assert "entrance" not in da.body  # the 8 bit/s camera lacks less than 0.05 GB: not worth a line


def test_smtp_down_is_retried_and_requests_do_not_wait(appliance_factory, database_url, fake_clock, tmp_path):
    # a server that accepts connections but never answers: a request that talked to it would hang
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(5)
    hung.setblocking(False)
    port = free_port()
    env = mail_env(appliance_factory, database_url, fake_clock,
                   {"host": "127.0.0.1", "port": port, "security": "none", "sender": "cctv@library.example",
                    "public_url": PUBLIC_URL, "timeout_s": 2})
    try:
        t = env.file_ticket("olga")  # returns: nothing but the outbox was touched
        try:
            hung.accept()
            raise AssertionError("the request connected to an SMTP server")
        except BlockingIOError:
            pass
    finally:
        hung.close()
    sender = MailSender(env.app)
    assert sender.send_due() == 0  # nothing listens on the port
    rows = outbox(env)
    assert {(r.state, r.attempts) for r in rows} == {("queued", 1)}
    assert all(r.last_error.startswith("ConnectionRefusedError") for r in rows)
    # the administrator sees it
    page = env.client("adam").get("/health")
    assert page.status_code == 200 and "ConnectionRefusedError" in page.text and "mia@library.example" in page.text
    # not due again for a minute; then the server is up and they go
    server = SmtpServer(tmp_path).start(port=port)
    try:
        assert sender.send_due() == 0
        env.advance(61)
        assert sender.send_due() == 2
        assert sorted(m.to for m in server.inbox.messages) == ["max@library.example", "mia@library.example"]
        assert str(t["id"]) in server.inbox.messages[0].subject
    finally:
        server.stop()
    assert {r.state for r in outbox(env)} == {"sent"}


def test_given_up_after_max_attempts(appliance_factory, sqlite_url, fake_clock):
    env = mail_env(appliance_factory, sqlite_url, fake_clock,
                   {"host": "127.0.0.1", "port": free_port(), "security": "none", "sender": "cctv@library.example",
                    "public_url": PUBLIC_URL, "max_attempts": 3})
    env.file_ticket("olga")
    sender = MailSender(env.app)
    for _ in range(3):
        sender.send_due()
        env.advance(3600)
    rows = outbox(env)
    assert {(r.state, r.attempts) for r in rows} == {("failed", 3)}
    assert "ConnectionRefusedError" in env.client("adam").get("/health").text


def test_a_request_of_access_is_mailed_about_a_week_before_its_deadline(appliance_factory, database_url, fake_clock,
                                                                        smtp_server):
    env = mail_env(appliance_factory, database_url, fake_clock, smtp_server.config())
    now = env.clock.now_us()
    t = env.file_ticket("olga", action="export", recipient="data_subject",
                        received=iso(now - 3_600_000_000))
    env.approve(t["id"], "mia")  # (a waiting ticket would also be reminded about as a ticket)
    sender, inbox = MailSender(env.app), smtp_server.inbox
    sender.send_due()
    inbox.clear()
    assert due_notices(env.app) == 0  # a month ahead
    env.advance(22 * 24 * H)
    assert due_notices(env.app) == 0  # still more than a week
    env.advance(3 * 24 * H)
    assert due_notices(env.app) == 3  # the requester and both managers
    assert due_notices(env.app) == 0  # once
    sender.send_due()
    assert sorted(m.to for m in inbox.messages) == ["max@library.example", "mia@library.example",
                                                    "olga@library.example"]
    (da,) = inbox.to("olga@library.example")
    assert da.subject.startswith(f"Anmodning om indsigt i sag {t['id']} skal besvares senest")
