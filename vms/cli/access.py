"""``vms audit verify``: check the audit trail's hash chain.

Exit status: 0 when the chain is intact, agrees with this node's anchor file and the
append-only triggers are in place; 7 (integrity failure) naming the first bad entry, or what
is wrong with the anchor file, otherwise; 2/8 for a bad config or an unreachable database
(as every ``vms`` command).  The findings are listed in docs/design/access.md, "Tampering".

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import time

from vms.cli.lang import err, out, say, t
from vms.core.i18n import N_


def cmd_audit_verify(args) -> int:
    from storage.keys.keyring import KeyError_, MasterKeyring
    from storage.sql.db import open_database
    from vms.access import audit_key
    from vms.access.audit import new_anchor, verify_against
    from vms.core.clock import Clock
    from vms.core.config import load_config

    cfg = load_config(args.config)
    try:
        keyring = MasterKeyring(cfg.key_path)
    except KeyError_ as exc:
        err(N_("cli.audit.no_key"), error=exc)
        return 2
    engine = open_database(cfg.db_url)
    try:
        audit_key.ensure(engine, keyring, Clock().now_us())
        started = time.monotonic()
        if args.new_anchor:
            result = new_anchor(engine, cfg.audit_anchor_path, cfg.node_id, Clock().now_us(), cfg.signing_key_path)
        else:
            result = verify_against(engine, cfg.audit_anchor_path, cfg.node_id, Clock(), cfg.signing_key_path)
        took_s = time.monotonic() - started
    finally:
        engine.dispose()
    if result.bad_seq is not None:
        out(N_("cli.audit.broken"), seq=result.bad_seq, problem=result.problem)
        out(N_("cli.audit.intact_before"), entries=result.entries) if result.entries else out(N_("cli.audit.none_intact"))
    elif result.problem:
        out(N_("cli.audit.not_verified"), problem=result.problem)
    if not result.triggers_present:
        if result.problem:
            out(N_("cli.audit.triggers_missing"))
        else:
            out(N_("cli.audit.intact_but_triggers_missing"), entries=result.entries)
    if not result.ok:
        return 7
    if args.new_anchor and not result.entries:
        out(N_("cli.audit.empty"))
        return 0
    key = N_("cli.audit.intact_new_anchor") if args.new_anchor else N_("cli.audit.intact")
    out(key, entries=result.entries, hash=result.last_hash, seconds=t().number(took_s, digits=2))
    return 0


def register(sub, add_config_arg) -> None:
    audit = sub.add_parser("audit", help=say(N_("cli.help.audit_group"))).add_subparsers(dest="sub", required=True)
    p = audit.add_parser("verify", help=say(N_("cli.help.audit_verify")))
    add_config_arg(p)
    p.add_argument("--new-anchor", action="store_true",
                   help=say(N_("cli.help.audit_new_anchor")))
    p.set_defaults(func=cmd_audit_verify)
