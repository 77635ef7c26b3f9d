"""A self-signed certificate for the API, so that a fresh install can serve HTTPS at once.

Browsers warn about a self-signed certificate; replace it with one from the site's CA when there is one
(docs/operations.md, "TLS").  The key is ECDSA P-256, written 0600 and never overwritten; the certificate is
valid for ``days`` and names the host names and addresses given (``localhost`` and 127.0.0.1 always).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in dict.fromkeys([*hosts, "localhost", "127.0.0.1"]):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            if not host or any(c.isspace() or ord(c) < 32 for c in host) or len(host) > 253:
                raise DomainError(Kind.INVALID, f"--host {host!r} is not a host name or address",
                                  key=N_("tls.err.host"), params={"host": host}) from None
            out.append(x509.DNSName(host))
    return out


def write_self_signed(cert_path: Path, key_path: Path, hosts: list[str], *, days: int = 825,
                      now: dt.datetime | None = None) -> str:
    """Write a new key (0600) and certificate (0644); refuses to overwrite either.  Returns the certificate's
    SHA-256 fingerprint (to compare with what a browser shows)."""
    for path in (cert_path, key_path):
        if path.exists():
            raise DomainError(Kind.CONFLICT, f"{path} exists; remove it first if you mean to replace it",
                              key=N_("tls.err.exists"), params={"path": str(path)})
    if not 1 <= days <= 3650:
        raise DomainError(Kind.INVALID, "--days must be 1-3650", key=N_("tls.err.days"))
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (hosts or ["localhost"])[0][:64])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem_key)
    fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert.fingerprint(hashes.SHA256()).hex(":")
