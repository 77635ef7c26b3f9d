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


def cmd_adopt(args) -> int:
    from vms.appliance import Appliance
    from vms.ops import adopt
    from vms.retention.holds import cli_actor

    if not args.min_silence_minutes >= 0:
        print(f"error: --min-silence-minutes must be 0 or more (got {args.min_silence_minutes:g})", file=sys.stderr)
        return 2
    app = Appliance.open(args.config)
    try:
        if not args.yes:
            fp = adopt.plan(app, args.node)
            print(f"node {args.node} owns {len(fp.cameras)} camera(s) ({', '.join(fp.cameras) or 'none'}), "
                  f"{fp.segments} segment(s) ({fp.size_bytes / 1e9:.2f} GB): {fp.archived} in the archive, "
                  f"{fp.only_local} ({fp.only_local_bytes / 1e9:.2f} GB) only on its own disk")
            print(f"adopting makes {app.config.node_id} expire them under each camera's retention, shred their keys "
                  f"and delete their archived objects on time; the node must be gone for good")
            print(f"to adopt: vms cluster adopt {args.node} --yes")
            return 0
        done = adopt.adopt(app, args.node, cli_actor(), min_silence_s=args.min_silence_minutes * 60)
    finally:
        app.close()
    fp = done.footprint
    print(f"{done.into} now owns node {done.node_id}'s {len(fp.cameras)} camera(s) and {fp.segments} segment(s); "
          f"its janitor expires them from the next sweep")
    if fp.only_local:
        print(f"{fp.only_local} segment(s) were only on {done.node_id}'s disk: `vms check` reports them missing "
              f"until they expire (`vms check --repair` removes their rows)")
    return 0


def register(sub, add_config_arg) -> None:
    cl = sub.add_parser("cluster", help="several nodes on one PostgreSQL").add_subparsers(dest="sub", required=True)
    p = cl.add_parser("new-secret", help="write a new random shared secret for the nodes (mode 0600)")
    p.add_argument("file")
    p.set_defaults(func=cmd_new_secret)
    p = cl.add_parser("adopt", help="take over the retention of a node that is gone for good (its footage, keys "
                                    "and archived objects then expire here)")
    p.add_argument("node", help="the lost node's node_id")
    p.add_argument("--yes", action="store_true", help="do it (without: show what would move, change nothing)")
    p.add_argument("--min-silence-minutes", type=float, default=60.0,
                   help="refuse while the node showed a sign of life more recently than this (default 60)")
    add_config_arg(p)
    p.set_defaults(func=cmd_adopt)

    tls = sub.add_parser("tls", help="certificates for the API").add_subparsers(dest="sub", required=True)
    p = tls.add_parser("self-signed", help="write a new self-signed key and certificate (cert.pem, key.pem) in DIR")
    p.add_argument("--dir", required=True, help="where to write cert.pem and key.pem (e.g. /etc/vms/tls)")
    p.add_argument("--host", action="append", default=[], help="a host name or address clients use (repeatable)")
    p.add_argument("--days", type=int, default=825, help="validity in days (1-3650)")
    p.set_defaults(func=cmd_tls_self_signed)
