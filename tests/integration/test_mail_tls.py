"""The mail worker against aiosmtpd with a self-signed certificate: STARTTLS with a login, implicit TLS, and the
refusals that keep a password from crossing the network in clear (SQLite: the database does not matter here)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.sql import outbox as store
from storage.sql.models import MailOutbox
from tests.integration.test_mail_notifications import mail_env
from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.smtp import *  # noqa: F403 (fixtures)
from tests.support.smtp import SmtpServer, write_secret
from vms.notify.sender import MailSender

LOGIN = ("cctv", "correct-battery-horse-staple")


def _errors(env) -> set[str]:
    with Session(env.app.engine) as s:
        return set(s.execute(select(MailOutbox.last_error)).scalars())


def test_starttls_with_login(appliance_factory, sqlite_url, fake_clock, tmp_path):
    server = SmtpServer(tmp_path).start(security="starttls", login=LOGIN)
    try:
        secret = write_secret(tmp_path / "smtp.password", LOGIN[1] + "\n")
        env = mail_env(appliance_factory, sqlite_url, fake_clock,
                       server.config(security="starttls", username=LOGIN[0], password_file=str(secret)))
        t = env.file_ticket("olga")
        assert MailSender(env.app).send_due() == 2
        assert server.inbox.logins == ["cctv"]  # logged in once for the round, over TLS (aiosmtpd requires it)
        assert sorted(m.to for m in server.inbox.messages) == ["max@library.example", "mia@library.example"]
        assert str(t["id"]) in server.inbox.messages[0].subject
    finally:
        server.stop()


def test_wrong_password_is_retried_without_saying_it(appliance_factory, sqlite_url, fake_clock, tmp_path, caplog):
    server = SmtpServer(tmp_path).start(security="starttls", login=LOGIN)
    try:
        secret = write_secret(tmp_path / "smtp.password", "hunter2\n")
        env = mail_env(appliance_factory, sqlite_url, fake_clock,
                       server.config(security="starttls", username=LOGIN[0], password_file=str(secret)))
        env.file_ticket("olga")
        assert MailSender(env.app).send_due() == 0
        assert _errors(env) == {"SMTPAuthenticationError (server reply 535)"}
        assert "hunter2" not in caplog.text and "hunter2" not in env.client("adam").get("/health").text
        secret.write_text(LOGIN[1])  # fixed: the next round reads the file again
        env.advance(61)
        assert MailSender(env.app).send_due() == 2
    finally:
        server.stop()


def test_implicit_tls(appliance_factory, sqlite_url, fake_clock, tmp_path):
    server = SmtpServer(tmp_path).start(security="tls")
    try:
        env = mail_env(appliance_factory, sqlite_url, fake_clock, server.config(security="tls"))
        env.file_ticket("olga")
        assert MailSender(env.app).send_due() == 2 and len(server.inbox.messages) == 2
    finally:
        server.stop()


def test_certificate_not_trusted_is_refused(appliance_factory, sqlite_url, fake_clock, tmp_path):
    server = SmtpServer(tmp_path).start(security="tls")
    try:
        cfg = server.config(security="tls")
        del cfg["ca_file"]  # the system's CAs do not know the self-signed certificate
        env = mail_env(appliance_factory, sqlite_url, fake_clock, cfg)
        env.file_ticket("olga")
        assert MailSender(env.app).send_due() == 0 and server.inbox.messages == []
        assert _errors(env) == {"SSLCertVerificationError"}
    finally:
        server.stop()


def test_starttls_required_but_not_offered(appliance_factory, sqlite_url, fake_clock, smtp_server):
    # the plain server offers no STARTTLS: nothing is sent in clear
    env = mail_env(appliance_factory, sqlite_url, fake_clock, smtp_server.config(security="starttls",
                                                                                host="localhost"))
    env.file_ticket("olga")
    assert MailSender(env.app).send_due() == 0 and smtp_server.inbox.messages == []
    errors = _errors(env)
    assert len(errors) == 1 and "does not offer STARTTLS" in errors.pop()
    with Session(env.app.engine) as s:
        assert {r.state for r in store.troubled(s)} == {"queued"}
