"""The ``[mail]`` section: where notification e-mails go out, and when they are due (docs/configuration.md).

Absent means no e-mail at all (nothing is queued).  The SMTP password is never inline: ``password_file``
names a file readable by its owner only, checked with the other secret files by
:func:`vms.core.config.check_paths`.  Plain SMTP (``security = "none"``) is allowed only to a loopback host
(a local relay such as Postfix on the same machine), so that no password or message crosses a network in
clear.
"""

from __future__ import annotations

import ipaddress
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")
ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9]([A-Za-z0-9.-]{0,251})$")
PUBLIC_URL = re.compile(r"^https?://[A-Za-z0-9_.\[\]:-]+(/[A-Za-z0-9._~%!$&'()*+,;=:/-]*)?$")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address_problem(address: str) -> str | None:
    """Why ``address`` is not an e-mail address we send to (None: it is one)."""
    if not isinstance(address, str) or not 3 <= len(address) <= 254:
        return "an e-mail address is 3 to 254 characters"
    if not ADDRESS.match(address) or ".." in address or address.endswith("."):
        return "must look like name@example.dk (letters, digits and . _ + - before the @, a domain after it)"
    return None


class MailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Annotated[str, Field(min_length=1, max_length=253, description="SMTP server: host name or address")]
    port: Annotated[int, Field(ge=1, le=65535, description="SMTP port: 587 for STARTTLS, 465 for TLS, 25 plain")] = 587
    security: Annotated[Literal["starttls", "tls", "none"], Field(validate_default=True, description=(
        "starttls: plain connection upgraded with STARTTLS (refused if the server does not offer it); tls: TLS "
        "from the first byte (SMTPS); none: no encryption, allowed only to a loopback host"))] = "starttls"
    ca_file: Annotated[Path | None, Field(description="CA certificate (PEM) to verify the server with, instead of "
                                                      "the system's CAs")] = None
    username: Annotated[str | None, Field(min_length=1, max_length=254, description="Login at the SMTP server")] = None
    password_file: Annotated[Path | None, Field(validate_default=True,
                                                description="File holding the SMTP password (mode 0600)")] = None
    sender: Annotated[str, Field(min_length=3, max_length=300, description=(
        "From: of every mail, an address or 'Name <address>'"))]
    public_url: Annotated[str | None, Field(description=(
        "Base URL of the web UI that links in mails point to; default: delivery.public_url"))] = None
    reminder_hours: Annotated[float, Field(ge=0.25, le=720, description=(
        "A ticket still waiting this long after filing: one reminder to the managers who may decide it"))] = 4
    escalation_hours: Annotated[float, Field(ge=0.5, le=2160, validate_default=True, description=(
        "A ticket still waiting this long: one mail to every manager; longer than reminder_hours"))] = 24
    offline_minutes: Annotated[float, Field(ge=1, le=10_080, description=(
        "A camera silent this long is mailed to administrators and auditors as a problem"))] = 30
    timeout_s: Annotated[float, Field(ge=1, le=300, description="Longest wait for the SMTP server")] = 30
    max_attempts: Annotated[int, Field(ge=1, le=50, description=(
        "Tries per mail (with growing pauses, at most an hour) before it is given up and shown as failed"))] = 12

    @field_validator("host")
    @classmethod
    def _host_ok(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v.strip("[]"))
            return v
        except ValueError:
            pass
        if not HOST.match(v):
            raise ValueError(f"{v!r} is not a host name or IP address")
        return v

    @field_validator("sender")
    @classmethod
    def _sender_ok(cls, v: str) -> str:
        if any(ord(c) < 32 for c in v):
            raise ValueError("the sender holds control characters")
        _name, address = parseaddr(v)
        if problem := address_problem(address):
            raise ValueError(f"{v!r}: {problem}")
        return v

    @field_validator("public_url")
    @classmethod
    def _url_ok(cls, v: str | None) -> str | None:
        if v is not None and not PUBLIC_URL.match(v):
            shown = "the URL given" if "@" in v else repr(v)  # never echo credentials
            raise ValueError(f"{shown} must be http(s)://HOST[:PORT][/PATH] with no credentials, query or fragment")
        return v.rstrip("/") if v else v

    # cross-field rules as field validators (fields are validated in order), so an error names its key
    @field_validator("security")
    @classmethod
    def _clear_only_locally(cls, v: str, info: ValidationInfo) -> str:
        host = info.data.get("host")
        if v == "none" and host is not None and not is_loopback(host):
            raise ValueError(f"'none' sends the password and the mails in clear; it is allowed only to a loopback "
                             f"host (127.0.0.1, ::1, localhost), not {host!r}; use 'starttls' or 'tls'")
        return v

    @field_validator("password_file")
    @classmethod
    def _login_pair(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        if (info.data.get("username") is None) != (v is None) and "username" in info.data:
            raise ValueError("username and password_file go together: set both (SMTP login) or neither")
        return v

    @field_validator("escalation_hours")
    @classmethod
    def _escalation_later(cls, v: float, info: ValidationInfo) -> float:
        reminder = info.data.get("reminder_hours")
        if reminder is not None and v <= reminder:
            raise ValueError(f"{v:g} must be longer than reminder_hours ({reminder:g})")
        return v


def _links_need_an_address(mail: MailConfig | None, info: ValidationInfo) -> MailConfig | None:
    delivery = info.data.get("delivery")
    if mail is not None and mail.public_url is None and getattr(delivery, "public_url", None) is None:
        raise ValueError("public_url: mails link to the web UI and need its address, e.g. "
                         "https://cctv.library.example (delivery.public_url is used when this is not set)")
    return mail


#: the ``mail`` field of the config: absent, or a section whose links have a base URL (here or in [delivery])
MailSection = Annotated[MailConfig | None, AfterValidator(_links_need_an_address)]
