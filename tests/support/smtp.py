"""A real SMTP server for the notification tests: aiosmtpd on 127.0.0.1, keeping every message it received.

``smtp_server`` (fixture) starts a plain server on a free port; ``SmtpServer.start(...)`` starts others:
STARTTLS or implicit TLS with a self-signed certificate (made with ``vms tls``'s own code) and a login.
``mail_config(server)`` gives the ``[mail]`` table that points the appliance at it.
"""

from __future__ import annotations

import email
import email.policy
import os
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.fixtures import missing_component

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
except ImportError:  # pragma: no cover - the test extra installs it
    Controller = None

PUBLIC_URL = "https://cctv.library.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    rcpt_tos: list[str]
    message: email.message.EmailMessage

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


@dataclass
class Inbox:
    """The aiosmtpd handler: keeps what it was given."""

    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(Received(list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


class SmtpServer:
    def __init__(self, tmp_path: Path):
        if Controller is None:
            missing_component("aiosmtpd is not installed (pip install -e '.[test]')")
        self.tmp_path = tmp_path
        self.inbox = Inbox()
        self.controller = None
        self.port = 0
        self.cert: Path | None = None

    def _tls_context(self) -> ssl.SSLContext:
        from vms.ops.tls import write_self_signed

        self.cert, key = self.tmp_path / "smtp-cert.pem", self.tmp_path / "smtp-key.pem"
        if not self.cert.exists():
            write_self_signed(self.cert, key, ["127.0.0.1"])
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, key)
        return ctx

    def start(self, *, port: int | None = None, security: str = "none", login: tuple[str, str] | None = None):
        self.port = port or free_port()
        kw: dict = {}
        if security == "starttls":
            kw.update(tls_context=self._tls_context(), require_starttls=True)
        elif security == "tls":
            kw.update(ssl_context=self._tls_context())
        if login is not None:
            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = (auth_data.login.decode(), auth_data.password.decode()) == login
                if ok:
                    self.inbox.logins.append(auth_data.login.decode())
                return AuthResult(success=ok, handled=False)

            kw.update(authenticator=authenticator, auth_required=True)
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def config(self, *, security: str | None = None, **more) -> dict:
        out = {"host": "127.0.0.1", "port": self.port, "security": security or "none", "sender":
               "Videoarkiv <cctv@library.example>", "public_url": PUBLIC_URL}
        if self.cert is not None and security in ("starttls", "tls"):
            out["ca_file"] = str(self.cert)
        return out | more


def write_secret(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


@pytest.fixture
def smtp_server(tmp_path):
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()
