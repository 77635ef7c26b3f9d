"""``vms cluster new-secret FILE`` (the shared secret of several nodes, docs/design/multi-node.md) and
``vms tls self-signed`` (a certificate for a fresh install, docs/operations.md).

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_new_secret(args) -> int:
    from vms.ops.cluster import write_new_secret

    try:
        write_new_secret(Path(args.file))
    except FileExistsError:
        print(f"vms: {args.file} exists; refusing to overwrite a cluster secret", file=sys.stderr)
        return 5
    except OSError as exc:
        print(f"vms: cannot write {args.file} ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"wrote {args.file} (mode 0600); copy it to every node and set [cluster] secret_file")
    return 0


def cmd_tls_self_signed(args) -> int:
    from vms.ops.tls import write_self_signed

    target = Path(args.dir)
    try:
        fingerprint = write_self_signed(target / "cert.pem", target / "key.pem", args.host, days=args.days)
    except OSError as exc:
        print(f"vms: cannot write into {target} ({exc.strerror})", file=sys.stderr)
        return 2
    print(f"wrote {target / 'cert.pem'} (0644) and {target / 'key.pem'} (0600); SHA-256 fingerprint {fingerprint}")
    print(f'set in [api]: tls_cert = "{target / "cert.pem"}" and tls_key = "{target / "key.pem"}"')
    return 0


def register(sub, add_config_arg) -> None:
    cl = sub.add_parser("cluster", help="several nodes on one PostgreSQL").add_subparsers(dest="sub", required=True)
    p = cl.add_parser("new-secret", help="write a new random shared secret for the nodes (mode 0600)")
    p.add_argument("file")
    p.set_defaults(func=cmd_new_secret)

    tls = sub.add_parser("tls", help="certificates for the API").add_subparsers(dest="sub", required=True)
    p = tls.add_parser("self-signed", help="write a new self-signed key and certificate (cert.pem, key.pem) in DIR")
    p.add_argument("--dir", required=True, help="where to write cert.pem and key.pem (e.g. /etc/vms/tls)")
    p.add_argument("--host", action="append", default=[], help="a host name or address clients use (repeatable)")
    p.add_argument("--days", type=int, default=825, help="validity in days (1-3650)")
    p.set_defaults(func=cmd_tls_self_signed)
