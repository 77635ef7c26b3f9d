"""``vms cluster new-secret FILE`` (the shared secret of several nodes, docs/design/multi-node.md) and
``vms tls self-signed`` (a certificate for a fresh install, docs/operations.md).

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

from pathlib import Path

from vms.cli.lang import err, out, say, t
from vms.core.i18n import N_


def cmd_new_secret(args) -> int:
    from vms.ops.cluster import write_new_secret

    try:
        write_new_secret(Path(args.file))
    except FileExistsError:
        err(N_("cli.cluster.exists"), file=args.file)
        return 5
    except OSError as exc:
        err(N_("cli.cannot_write"), file=args.file, error=exc.strerror)
        return 2
    out(N_("cli.cluster.written"), file=args.file)
    return 0


def cmd_tls_self_signed(args) -> int:
    from vms.ops.tls import write_self_signed

    target = Path(args.dir)
    try:
        fingerprint = write_self_signed(target / "cert.pem", target / "key.pem", args.host, days=args.days)
    except OSError as exc:
        err(N_("cli.cannot_write_into"), dir=target, error=exc.strerror)
        return 2
    out(N_("cli.tls.written"), cert=target / "cert.pem", key=target / "key.pem", fingerprint=fingerprint)
    out(N_("cli.tls.set"), cert=target / "cert.pem", key=target / "key.pem")
    return 0


def cmd_adopt(args) -> int:
    from vms.appliance import Appliance
    from vms.ops import adopt
    from vms.retention.holds import cli_actor

    if not args.min_silence_minutes >= 0:
        err(N_("cli.adopt.bad_silence"), minutes=f"{args.min_silence_minutes:g}")
        return 2
    app = Appliance.open(args.config)
    try:
        if not args.yes:
            fp = adopt.plan(app, args.node)
            gb = t().number
            out(N_("cli.adopt.plan"), node=args.node, cameras=len(fp.cameras),
                names=", ".join(fp.cameras) or "-", segments=fp.segments, gb=gb(fp.size_bytes / 1e9, digits=2),
                archived=fp.archived, local=fp.only_local, local_gb=gb(fp.only_local_bytes / 1e9, digits=2))
            out(N_("cli.adopt.means"), into=app.config.node_id)
            out(N_("cli.adopt.how"), node=args.node)
            return 0
        done = adopt.adopt(app, args.node, cli_actor(), min_silence_s=args.min_silence_minutes * 60)
    finally:
        app.close()
    fp = done.footprint
    out(N_("cli.adopt.done"), into=done.into, node=done.node_id, cameras=len(fp.cameras), segments=fp.segments)
    if fp.only_local:
        out(N_("cli.adopt.only_local"), segments=fp.only_local, node=done.node_id)
    return 0


def register(sub, add_config_arg) -> None:
    cl = sub.add_parser("cluster", help=say(N_("cli.help.cluster_group"))).add_subparsers(dest="sub", required=True)
    p = cl.add_parser("new-secret", help=say(N_("cli.help.cluster_secret")))
    p.add_argument("file")
    p.set_defaults(func=cmd_new_secret)
    p = cl.add_parser("adopt", help=say(N_("cli.help.cluster_adopt")))
    p.add_argument("node", help=say(N_("cli.help.cluster_adopt_node")))
    p.add_argument("--yes", action="store_true", help=say(N_("cli.help.cluster_adopt_yes")))
    p.add_argument("--min-silence-minutes", type=float, default=60.0,
                   help=say(N_("cli.help.cluster_adopt_silence")))
    add_config_arg(p)
    p.set_defaults(func=cmd_adopt)

    tls = sub.add_parser("tls", help=say(N_("cli.help.tls_group"))).add_subparsers(dest="sub", required=True)
    p = tls.add_parser("self-signed", help=say(N_("cli.help.tls_self_signed")))
    p.add_argument("--dir", required=True, help=say(N_("cli.help.tls_dir")))
    p.add_argument("--host", action="append", default=[], help=say(N_("cli.help.tls_host")))
    p.add_argument("--days", type=int, default=825, help=say(N_("cli.help.tls_days")))
    p.set_defaults(func=cmd_tls_self_signed)
