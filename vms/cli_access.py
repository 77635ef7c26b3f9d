"""``vms audit verify``: check the audit trail's hash chain.

Exit status: 0 when the chain is intact and the append-only triggers are in
place; 7 (integrity failure) naming the first bad entry otherwise; 2/8 for a
bad config or an unreachable database (as every ``vms`` command).
"""

from __future__ import annotations

import time


def cmd_audit_verify(args) -> int:
    from storage.db import open_database
    from vms.audit import verify
    from vms.config import load_config

    cfg = load_config(args.config)
    engine = open_database(cfg.db_url)
    try:
        started = time.monotonic()
        result = verify(engine)
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
    print(f"audit trail intact: {result.entries} entries, last hash {result.last_hash} ({took_s:.2f} s)")
    return 0


def register(sub, add_config_arg) -> None:
    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="sub", required=True)
    p = audit.add_parser("verify", help="verify the audit trail's hash chain (exit 0 intact, 7 broken)")
    add_config_arg(p)
    p.set_defaults(func=cmd_audit_verify)
