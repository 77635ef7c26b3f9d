"""``vms audit verify``: check the audit trail's hash chain.

Exit status: 0 when the chain is intact and the append-only triggers are in
place; 7 (integrity failure) naming the first bad entry otherwise; 2/8 for a
bad config or an unreachable database (as every ``vms`` command).

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import time


def cmd_audit_verify(args) -> int:
    from storage.format import audit_anchor as anchors
    from storage.sql.db import open_database
    from vms.access.audit import advance_anchor, verify
    from vms.core.clock import Clock
    from vms.core.config import load_config

    cfg = load_config(args.config)
    try:
        anchor = anchors.read(cfg.audit_anchor_path)
    except anchors.AnchorError as exc:
        print(f"audit trail NOT VERIFIED: the audit anchor {exc}; if the database was restored from a backup "
              "on purpose, remove that file (docs/operations.md, \"Restore\")")
        return 7
    engine = open_database(cfg.db_url)
    try:
        started = time.monotonic()
        result = verify(engine, anchor)
        took_s = time.monotonic() - started
    finally:
        engine.dispose()
    if result.bad_seq is not None:
        print(f"audit trail BROKEN at entry {result.bad_seq}: {result.problem}")
        print(f"  entries 1..{result.entries} are intact")
        return 7
    if not result.triggers_present:
        print(f"audit trail: {result.entries} entries intact, but the append-only triggers are MISSING "
              "(someone dropped them; see docs/design/access.md, \"Tampering\")")
        return 7
    if result.entries:
        advance_anchor(cfg.audit_anchor_path, result, Clock().now_us())
    print(f"audit trail intact: {result.entries} entries, last hash {result.last_hash} ({took_s:.2f} s)")
    return 0


def register(sub, add_config_arg) -> None:
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="sub", required=True)
    p = audit.add_parser("verify", help="verify the audit trail's hash chain (exit 0 intact, 7 broken)")
    add_config_arg(p)
    p.set_defaults(func=cmd_audit_verify)
