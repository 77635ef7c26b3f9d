"""``vms export verify PACKAGE.zip``: check an evidence package on its own.

Needs no configuration, database or key: police and SSP run it on the package
alone.  Exit 0 when every check passed, 1 when any failed (each failure names
its file), 3 when the package does not exist.  ``--public-key`` or
``--fingerprint`` also check that the package was signed by the expected key
(obtained from the sender separately).

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import re
from pathlib import Path

from vms.cli.lang import err, out, say, t
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_


def _said(line: str) -> str:
    """A report line in the reader's language (its English text where the catalog has no text for it)."""
    key = getattr(line, "key", None)
    return t().format(key, line.params, default=str(line)) if key else str(line)


def cmd_export_verify(args) -> int:
    from vms.evidence.verify import Line, verify_package

    path = Path(args.package)
    if not path.exists():
        raise DomainError(Kind.NOT_FOUND, f"{path}: no such package (a .zip file or an unpacked folder)",
                          key=N_("cli.export.no_package"), params={"path": path})
    expected = None
    if args.public_key:
        try:
            expected = Path(args.public_key).read_bytes()
        except OSError as exc:
            raise DomainError(Kind.INVALID, f"--public-key {args.public_key}: cannot be read ({exc.strerror})",
                              key=N_("cli.export.bad_public_key"),
                              params={"file": args.public_key, "error": exc.strerror}) from None
    fingerprint = (args.fingerprint or "").lower().replace(":", "")
    if fingerprint and not re.fullmatch(r"[0-9a-f]{64}", fingerprint):
        raise DomainError(Kind.INVALID, "--fingerprint must be 64 hex digits (SHA-256 of the public key, as README.txt "
                          "shows)", key=N_("cli.export.bad_fingerprint"))
    report = verify_package(path, expected_public_key=expected)
    if fingerprint and report.fingerprint and report.fingerprint != fingerprint:
        report.problems.append(Line(N_("verify.fingerprint_other"), f"appliance-public-key.pem: fingerprint "
                                    f"{report.fingerprint} is not the expected {fingerprint}",
                                    file="appliance-public-key.pem", found=report.fingerprint, expected=fingerprint))
    elif fingerprint and report.fingerprint:
        report.checked.append(Line(N_("verify.fingerprint_ok"), "appliance-public-key.pem: fingerprint is the expected one",
                                   file="appliance-public-key.pem"))
    if args.verbose_checks or report.ok:
        for line in report.checked:
            out(N_("cli.export.line_ok"), line=_said(line))
    for line in report.problems:
        err(N_("cli.export.line_fail"), line=_said(line))
    if not report.ok:
        err(N_("cli.export.failed"), path=path, problems=len(report.problems))
        return 1
    doc = report.manifest or {}
    ticket = doc.get("ticket", {})
    out(N_("cli.export.ok"), path=path)
    out(N_("cli.export.ticket"), ticket=ticket.get("id"), approver=ticket.get("approver"),
        recipient=ticket.get("recipient"))
    out(N_("cli.export.signed_by"), fingerprint=report.fingerprint)
    if not (expected or fingerprint):
        out(N_("cli.export.compare"))
    return 0


def register(sub, add_config_arg) -> None:
    export = sub.add_parser("export", help=say(N_("cli.help.export_group"))).add_subparsers(dest="sub", required=True)
    p = export.add_parser("verify", help=say(N_("cli.help.export_verify")))
    p.add_argument("package", help=say(N_("cli.help.export_package")))
    p.add_argument("--public-key", help=say(N_("cli.help.export_public_key")))
    p.add_argument("--fingerprint", help=say(N_("cli.help.export_fingerprint")))
    p.add_argument("--verbose-checks", action="store_true", help=say(N_("cli.help.export_verbose")))
    p.set_defaults(func=cmd_export_verify)
