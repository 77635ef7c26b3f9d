"""The ``vms`` command.  Each subcommand lives in a small ``cmd_*`` function;
errors of any known kind become a one-line message on stderr and a non-zero
exit status (never a traceback, never key bytes or passwords).

Exit status: 0 ok, 1 check found problems, 2 invalid input/config,
3 not found, 4 permission, 5 conflict, 6 failed precondition,
7 integrity failure (segment/key authentication), 8 database unreachable.

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from storage.format.segment import SegmentError
from storage.keys.keyring import KeyError_, KeyFileError
from storage.sql.db import DatabaseError
from vms.access.policy import ROLES
from vms.cli.lang import LanguageError, choose, err, out, say, t
from vms.core.config import ConfigError
from vms.core.errors import EXIT_CODES, DomainError
from vms.core.i18n import N_
from vms.core.times import iso

DEFAULT_CONFIG = os.environ.get("VMS_CONFIG", "/etc/vms/vms.toml")


def error_text(exc: DomainError) -> str:
    """A domain error in the chosen language when the ``vms`` catalog has its key (the CLI's own errors), else its
    English message (the keys of the web's errors live in api/locale, which the domain does not read)."""
    tr = t()
    if exc.key and tr.has(exc.key):
        try:
            return tr(exc.key).format(**exc.params)
        except (KeyError, IndexError, ValueError):
            pass
    return exc.message


def _add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=say(N_("cli.help.config")))


# ---------------------------------------------------------------- init / config


def cmd_init(args: argparse.Namespace) -> int:
    from vms.cli.setup import initialise

    result = initialise(Path(args.data), demo=args.demo, node_id=args.node_id)
    out(N_("cli.init.done"), dir=result.data_dir)
    out(N_("cli.init.config"), path=result.config_path)
    out(N_("cli.init.master_key"), path=result.key_path)
    out(N_("cli.init.signing_key"), path=result.signing_key_path)
    out(N_("cli.init.database"), url=result.database)
    print()
    out(N_("cli.init.admin"), name=result.admin_name)
    out(N_("cli.init.password"), password=result.admin_password)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from vms.core.config import load_config

    cfg = load_config(args.file)
    out(N_("cli.config.ok"), file=args.file, cameras=len(cfg.cameras), days=cfg.legal_max_retain_days)
    for cam in cfg.cameras:
        note = t()(N_("cli.config.override")).format(reason=cam.legal_max_override.reason) \
            if cam.legal_max_override else ""
        out(N_("cli.config.camera"), camera=cam.id, days=cam.retain_days, seconds=cam.segment_seconds, note=note)
    return 0


# ---------------------------------------------------------------- segments


def cmd_segment_inspect(args: argparse.Namespace) -> int:
    from storage.format.segment_reader import inspect_chunks

    info = inspect_chunks(Path(args.file))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.file}")
    for key in ("version", "camera", "day", "hour", "key_id", "codec", "width", "height", "fps", "time_base",
                "extradata_bytes"):
        shown = "- (version 1: day key)" if key == "hour" and info[key] is None else info[key]
        print(f"  {key:16} {shown}")
    print(f"  {'start':16} {iso(info['start_us'])}")
    print(f"  {'chunks':16} {info['chunks']} ({info['ciphertext_bytes']} ciphertext bytes)")
    print(f"  {'state':16} {info['state']}")
    return 0


def cmd_segment_verify(args: argparse.Namespace) -> int:
    from vms.appliance import Appliance
    from vms.recording.segments import verify_file

    app = Appliance.open(args.config)
    try:
        summary = verify_file(app, Path(args.file))
    finally:
        app.close()
    out(N_("cli.segment.verified"), file=args.file, chunks=summary.chunks, packets=summary.packets,
        keyframes=summary.keyframes, start=iso(summary.start_us), end=iso(summary.end_us))
    return 0


# ---------------------------------------------------------------- keys, db, users


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from storage.keys.keystore import rotate_master_key
    from storage.sql.db import open_database
    from vms.access import audit_key
    from vms.core.clock import Clock
    from vms.core.config import load_config
    from vms.core.service_lock import exclusive
    from vms.evidence.export import EXPORTS_DIR
    from vms.evidence.packages import PackageStore

    cfg = load_config(args.config)
    with exclusive(cfg.data_dir, "rotating the master key"):
        engine = open_database(cfg.db_url)
        packages = PackageStore(cfg.data_dir / EXPORTS_DIR, None)

        def also(ring, new_key: bytes, new_id: str) -> int:  # keys kept outside the key tables
            return (packages.rewrap_keys(ring, new_key, new_id)
                    + audit_key.rewrap(engine, ring, new_key, new_id, Clock().now_us()))

        old, new, count = rotate_master_key(engine, cfg.key_path, also=also)
    out(N_("cli.keys.rotated"), old=old, new=new, count=count)
    out(N_("cli.keys.back_up"), path=cfg.key_path)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.sql.db import open_database, safe_url
    from vms.core.config import load_config

    cfg = load_config(args.config)
    open_database(cfg.db_url).dispose()
    out(N_("cli.db.upgraded"), url=safe_url(cfg.db_url))
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from vms.access.audit_key import open_trail
    from vms.access.users import CONSOLE, add_user
    from vms.core.clock import Clock
    from vms.core.config import load_config

    cfg = load_config(args.config)
    password = add_user(open_trail(cfg, Clock().now_us()), Clock(), CONSOLE, args.name, args.role)
    out(N_("cli.user.added"), name=args.name, role=args.role)
    out(N_("cli.user.password"), password=password)
    return 0


def cmd_user_reset_password(args: argparse.Namespace) -> int:
    from vms.access.audit_key import open_trail
    from vms.access.users import CONSOLE, reset_password
    from vms.core.clock import Clock
    from vms.core.config import load_config

    cfg = load_config(args.config)
    password = reset_password(open_trail(cfg, Clock().now_us()), Clock(), CONSOLE, args.name)
    out(N_("cli.user.new_password"), name=args.name, password=password)
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    from vms.access.audit_key import open_trail
    from vms.access.users import CONSOLE, set_disabled
    from vms.core.clock import Clock
    from vms.core.config import load_config

    cfg = load_config(args.config)
    set_disabled(open_trail(cfg, Clock().now_us()), Clock(), CONSOLE, args.name, True)
    out(N_("cli.user.disabled"), name=args.name)
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vms", description=say(N_("cli.help.vms")))
    parser.add_argument("--verbose", "-v", action="store_true", help=say(N_("cli.help.verbose")))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help=say(N_("cli.help.init")))
    p.add_argument("--data", required=True, help=say(N_("cli.help.init_data")))
    p.add_argument("--demo", action="store_true", help=say(N_("cli.help.init_demo")))
    p.add_argument("--node-id", default=None, help=say(N_("cli.help.init_node")))
    p.set_defaults(func=cmd_init)

    cfg = sub.add_parser("config", help=say(N_("cli.help.config_group"))).add_subparsers(dest="sub", required=True)
    p = cfg.add_parser("check", help=say(N_("cli.help.config_check")))
    p.add_argument("file")
    p.set_defaults(func=cmd_config_check)

    seg = sub.add_parser("segment", help=say(N_("cli.help.segment_group"))).add_subparsers(dest="sub", required=True)
    p = seg.add_parser("inspect", help=say(N_("cli.help.segment_inspect")))
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_segment_inspect)
    p = seg.add_parser("verify", help=say(N_("cli.help.segment_verify")))
    p.add_argument("file")
    _add_config_arg(p)
    p.set_defaults(func=cmd_segment_verify)

    keys = sub.add_parser("keys", help=say(N_("cli.help.keys_group"))).add_subparsers(dest="sub", required=True)
    p = keys.add_parser("rotate", help=say(N_("cli.help.keys_rotate")))
    _add_config_arg(p)
    p.set_defaults(func=cmd_keys_rotate)

    db = sub.add_parser("db", help=say(N_("cli.help.db_group"))).add_subparsers(dest="sub", required=True)
    p = db.add_parser("upgrade", help=say(N_("cli.help.db_upgrade")))
    _add_config_arg(p)
    p.set_defaults(func=cmd_db_upgrade)

    users = sub.add_parser("user", help=say(N_("cli.help.user_group"))).add_subparsers(dest="sub", required=True)
    p = users.add_parser("add", help=say(N_("cli.help.user_add")))
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    _add_config_arg(p)
    p.set_defaults(func=cmd_user_add)
    p = users.add_parser("reset-password", help=say(N_("cli.help.user_reset")))
    p.add_argument("name")
    _add_config_arg(p)
    p.set_defaults(func=cmd_user_reset_password)
    p = users.add_parser("disable", help=say(N_("cli.help.user_disable")))
    p.add_argument("name")
    _add_config_arg(p)
    p.set_defaults(func=cmd_user_disable)

    from vms.cli import services as cli_services

    cli_services.register(sub, _add_config_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # databases, keys, segments and exports are for the service user only
    try:
        choose()  # a $VMS_LANG of no language of ours is refused before anything is done
    except LanguageError as exc:
        print(f"vms: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.func(args)
        sys.stdout.flush()  # a reader that went away (`vms ... | head -1`) shows up here, not at exit
        return code
    except BrokenPipeError:
        # the reader closed the pipe: say nothing more (no traceback), and keep Python's exit-time flush quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipe writer that was cut off
    except ConfigError as exc:
        err(N_("cli.error.config"), error=exc)
        return 2
    except KeyFileError as exc:
        err(N_("cli.error.key"), error=exc)
        return 2
    except SegmentError as exc:
        err(N_("cli.error.segment"), error=exc)
        return 7
    except KeyError_ as exc:
        err(N_("cli.error.key"), error=exc)
        return 7
    except DatabaseError as exc:
        err(N_("cli.error.database"), error=exc)
        return 8
    except DomainError as exc:
        err(N_("cli.error.other"), error=error_text(exc))
        return EXIT_CODES[exc.kind]
    except FileNotFoundError as exc:
        err(N_("cli.error.no_such_file"), file=exc.filename)
        return 3
    except PermissionError as exc:
        err(N_("cli.error.permission"), file=exc.filename)
        return 4
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
