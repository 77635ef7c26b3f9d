"""The mail worker: sends the outbox's due mails with smtplib, retries with growing pauses, gives up in the end.

:meth:`MailSender.send_due` is one round (tests call it; :meth:`start` runs it every ``interval_s`` on a
daemon thread, started by ``vms serve``).  A round claims each due row with a lease
(:func:`storage.sql.outbox.claim`), so two workers never send one mail twice at once, opens one SMTP
connection for the round's mails, and records each outcome:

* sent: ``state = sent``;
* failed: the attempt is counted, ``last_error`` says the error's class and the server's reply code (never the
  login, the password or the message), and the mail is due again after ``60 s x 2^(attempts-1)``, at most an
  hour; after ``mail.max_attempts`` it is given up (``state = failed``).  Failures are logged (no credentials)
  and shown to administrators and auditors on the health page.

Security: ``starttls`` refuses a server that does not offer STARTTLS (no silent fall-back to clear text);
``tls`` and ``starttls`` verify the server's certificate and host name against the system's CAs or
``mail.ca_file``.  The password is read from ``mail.password_file`` at each round (a changed file needs no
restart) and goes nowhere but the SMTP AUTH exchange.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr

from sqlalchemy.orm import Session

from storage.sql import outbox as store
from vms.core.periodic import Periodic

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 3600
KEEP_DAYS = 30  # sent and failed mails are forgotten after this many days (they name people)
US = 1_000_000


class MailError(Exception):
    """A failure to hand a mail to the server, worded without credentials or content."""


def backoff_s(attempts: int) -> int:
    """Pause after the ``attempts``-th failed attempt (1, 2, ...)."""
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1))


def describe(exc: BaseException) -> str:
    """An error in words safe to store and show: its class and, for SMTP replies, the code."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, MailError):
        return str(exc)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({c for c, _msg in exc.recipients.values()})
        return f"SMTPRecipientsRefused (server reply {', '.join(map(str, codes))})"
    return f"{exc.__class__.__name__}" + (f" (server reply {code})" if code else "")


def message_of(row: store.MailRow, sender: str) -> EmailMessage:
    msg = EmailMessage()
    name, address = parseaddr(sender)
    msg["From"] = formataddr((name, address)) if name else address
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    msg.set_content(row.body)
    msg["Content-Language"] = row.language  # after set_content, which drops Content-* headers
    return msg


class MailSender:
    def __init__(self, app, *, interval_s: float = 10.0, batch: int = 50):
        self.app, self.batch = app, batch
        self._timer = Periodic("mail-sender", interval_s, self.send_due, run_first=True)

    # -- SMTP ---------------------------------------------------------------------------

    def _context(self, cfg) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)

    def connect(self) -> smtplib.SMTP:
        """A connection, secured and logged in as configured; raises MailError or an SMTP/OS error."""
        cfg = self.app.config.mail
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=self._context(cfg))
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        try:
            smtp.ehlo()
            if cfg.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailError("the server does not offer STARTTLS (security = 'starttls'); "
                                    "nothing was sent in clear")
                smtp.starttls(context=self._context(cfg))
                smtp.ehlo()
            if cfg.username is not None:
                try:
                    password = cfg.password_file.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise MailError(f"mail.password_file cannot be read ({exc.__class__.__name__})") from None
                _login(smtp, cfg.username, password)
        except BaseException:
            _close(smtp)
            raise
        return smtp

    # -- a round ------------------------------------------------------------------------

    def send_due(self) -> int:
        """Send what is due; returns how many mails were sent."""
        if self.app.config.mail is None:
            return 0
        clock, cfg = self.app.clock, self.app.config.mail
        now = clock.now_us()
        lease_us = int((cfg.timeout_s * 4 + 60) * US)
        with Session(self.app.engine) as s, s.begin():
            rows = [r for r in store.due(s, now, limit=self.batch) if store.claim(s, r, until_us=now + lease_us)]
            store.purge(s, before_us=now - KEEP_DAYS * 86_400 * US)
        if not rows:
            return 0
        sent, smtp, failure = 0, None, None
        try:
            smtp = self.connect()
        except (OSError, smtplib.SMTPException, MailError, ssl.SSLError) as exc:
            failure = describe(exc)
        for row in rows:
            error = failure
            if error is None:
                try:
                    smtp.send_message(message_of(row, cfg.sender))
                except (OSError, smtplib.SMTPException) as exc:
                    error = describe(exc)
                    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
                        failure = error  # the connection is gone: the rest wait for the next round
            self._record(row, error)
            sent += error is None
        if smtp is not None:
            _close(smtp)
        return sent

    def _record(self, row: store.MailRow, error: str | None) -> None:
        cfg, now = self.app.config.mail, self.app.clock.now_us()
        attempts = row.attempts + 1
        with Session(self.app.engine) as s, s.begin():
            if error is None:
                store.mark_sent(s, row.id, now_us=now)
                return
            give_up = attempts >= cfg.max_attempts
            store.mark_failed(s, row.id, error=error,
                              next_attempt_us=None if give_up else now + backoff_s(attempts) * US)
        if give_up:
            log.error("mail %d (%s) given up after %d attempts: %s", row.id, row.event, attempts, error)
        else:
            log.warning("mail %d (%s) not sent, attempt %d of %d: %s; next try in %d s", row.id, row.event,
                        attempts, cfg.max_attempts, error, backoff_s(attempts))

    def start(self) -> None:
        self._timer.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._timer.stop(timeout_s)


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """One AUTH exchange, PLAIN or LOGIN (the connection is encrypted, or local), so a wrong password is one
    535 reply; smtplib's own ``login`` would try mechanism after mechanism, which some servers cut off."""
    smtp.user, smtp.password = username, password
    advertised = smtp.esmtp_features.get("auth", "").upper().split()
    for mechanism in ("PLAIN", "LOGIN"):
        if mechanism in advertised:
            smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
            return
    smtp.login(username, password)


def _close(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
