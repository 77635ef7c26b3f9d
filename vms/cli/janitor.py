"""``vms janitor``, ``vms check``, ``vms retention report`` and ``vms hold``.

Exit status (as vms/cli.py): 0 ok; 1 ``check`` found problems it did not repair,
or ``retention report`` found a violation; 2 invalid input or config; 3 not
found; 8 database unreachable.

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime

from vms.cli.lang import out, say, t
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso

log = logging.getLogger(__name__)


def _iso(t_us: int) -> str:
    return iso(t_us, "seconds")


def _parse_time(value: str, what: str) -> int:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DomainError(Kind.INVALID, f"{what}: {value!r} is not an ISO 8601 time (e.g. 2026-03-01T10:00:00Z)",
                          key=N_("cli.time.not_iso"), params={"what": what, "value": value}) from None
    if t.tzinfo is None:
        raise DomainError(Kind.INVALID, f"{what}: {value!r} has no time zone; add Z for UTC or an offset",
                          key=N_("cli.time.no_zone"), params={"what": what, "value": value})
    return int(t.timestamp() * 1_000_000)


def cmd_janitor(args) -> int:
    from vms.appliance import Appliance
    from vms.retention.janitor import Janitor

    stop = threading.Event()
    if not args.once:  # handlers first: a SIGTERM during start-up still stops cleanly
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    app = Appliance.open(args.config)
    if not args.once:
        from vms.core.service_lock import hold_shared

        hold_shared(app.config.data_dir)  # 'vms keys rotate' waits for the services to stop
    from vms.ops.alarms import Alarms, audit_sink
    from vms.retention.integrity_watch import IntegrityWatch

    alarms = Alarms.from_config(app.config, audit_sink=audit_sink(app))  # log, audit trail, MQTT: as in 'vms serve'
    try:
        janitor = Janitor(app, on_alarm=lambda kind, message: alarms.notify(kind, message))
        if args.once:
            res = janitor.sweep()
            print(json.dumps(res.summary(), sort_keys=True))
            return 1 if res.failed else 0
        janitor.start()
        watch = IntegrityWatch(app, alarms)  # violations, audit chain, disk floor
        watch.start()
        inbox = None
        if app.config.doorlog is not None:  # the door log's inbox is watched where the janitor runs
            from vms.doorlog.inbox import InboxWatch

            inbox = InboxWatch(app)
            inbox.start()
        log.info("janitor running: sweep every %g s, watching %s", app.config.janitor.sweep_interval_s,
                 app.store.root)
        try:
            while not stop.wait(1.0):
                pass
        finally:
            if inbox is not None:
                inbox.stop()
            watch.stop()
            janitor.stop()
    finally:
        alarms.close()
        app.close()
    return 0


def cmd_check(args) -> int:
    from vms.appliance import Appliance
    from vms.retention.check import REPAIR_KEYS, check

    app = Appliance.open(args.config)
    try:
        report = check(app, full=args.full, repair=args.repair)
    finally:
        app.close()
    if args.json:
        print(json.dumps({
            "segments": report.segments, "files": report.files, "open_files": report.open_files,
            "authenticated": report.authenticated, "problems": [p.to_dict() for p in report.problems],
            "repaired": len(report.repaired),
            "unrepaired": [dict(p.to_dict(), reason=why) for p, why in report.unrepaired],
        }, indent=2))
    else:
        level = say(N_("cli.check.full")) if args.full else say(N_("cli.check.quick"))
        out(N_("cli.check.summary"), level=level, segments=report.segments, files=report.files,
            open=report.open_files)
        for p in report.problems:
            would = "" if args.repair else say(N_("cli.check.would"), repair=t()(REPAIR_KEYS[p.kind]))
            print(f"  {p.kind:9} {p.to_dict()['path']}: {p.detail}{would}")
        if args.repair:
            out(N_("cli.check.repaired"), problems=len(report.repaired))
            for p, why in report.unrepaired:
                out(N_("cli.check.not_repaired"), kind=p.kind, path=p.to_dict()["path"], why=why)
        elif not report.problems:
            out(N_("cli.check.agree"))
    if args.repair:
        return 1 if report.unrepaired else 0
    return 1 if report.problems else 0


def cmd_retention_report(args) -> int:
    from vms.appliance import Appliance
    from vms.retention.rules import build_report, render_text

    app = Appliance.open(args.config)
    try:
        report = build_report(app.engine, app.config, app.clock.now_us())
    finally:
        app.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_text(report, t()))
    return 1 if report.violations else 0


def cmd_hold_add(args) -> int:
    from vms.appliance import Appliance
    from vms.retention import holds

    start_us, end_us = _parse_time(args.start, "--from"), _parse_time(args.end, "--to")
    app = Appliance.open(args.config)
    try:
        hold_id = holds.place(app, holds.cli_actor(), args.camera, start_us, end_us, args.reason)
    finally:
        app.close()
    out(N_("cli.hold.placed"), hold=hold_id, camera=args.camera, start=_iso(start_us), end=_iso(end_us))
    return 0


def cmd_hold_release(args) -> int:
    from vms.appliance import Appliance
    from vms.retention import holds

    app = Appliance.open(args.config)
    try:
        holds.release(app, holds.cli_actor(), args.hold_id, args.reason)
    finally:
        app.close()
    out(N_("cli.hold.released"), hold=args.hold_id)
    return 0


def cmd_hold_list(args) -> int:
    from vms.appliance import Appliance
    from vms.retention import holds

    app = Appliance.open(args.config)
    try:
        rows = holds.active(app)
    finally:
        app.close()
    for h in rows:
        print(f"{h.id:6} {h.camera_id:20} {_iso(h.start_us)} .. {_iso(h.end_us)}  {h.reason!r}")
    if not rows:
        out(N_("cli.hold.none"))
    return 0


def register(sub, add_config_arg) -> None:
    p = sub.add_parser("janitor", help=say(N_("cli.help.janitor")))
    p.add_argument("--once", action="store_true", help=say(N_("cli.help.janitor_once")))
    add_config_arg(p)
    p.set_defaults(func=cmd_janitor)

    p = sub.add_parser("check", help=say(N_("cli.help.check")))
    p.add_argument("--full", action="store_true", help=say(N_("cli.help.check_full")))
    p.add_argument("--repair", action="store_true", help=say(N_("cli.help.check_repair")))
    p.add_argument("--json", action="store_true")
    add_config_arg(p)
    p.set_defaults(func=cmd_check)

    ret = sub.add_parser("retention", help=say(N_("cli.help.retention_group"))).add_subparsers(dest="sub", required=True)
    p = ret.add_parser("report", help=say(N_("cli.help.retention_report")))
    p.add_argument("--json", action="store_true")
    add_config_arg(p)
    p.set_defaults(func=cmd_retention_report)

    hold = sub.add_parser("hold", help=say(N_("cli.help.hold_group"))).add_subparsers(
        dest="sub", required=True)
    p = hold.add_parser("add", help=say(N_("cli.help.hold_add")))
    p.add_argument("camera")
    p.add_argument("--from", dest="start", required=True, help=say(N_("cli.help.hold_from")))
    p.add_argument("--to", dest="end", required=True, help=say(N_("cli.help.hold_to")))
    p.add_argument("--reason", required=True, help=say(N_("cli.help.hold_reason")))
    add_config_arg(p)
    p.set_defaults(func=cmd_hold_add)
    p = hold.add_parser("release", help=say(N_("cli.help.hold_release")))
    p.add_argument("hold_id", type=int)
    p.add_argument("--reason", required=True, help=say(N_("cli.help.hold_release_reason")))
    add_config_arg(p)
    p.set_defaults(func=cmd_hold_release)
    p = hold.add_parser("list", help=say(N_("cli.help.hold_list")))
    add_config_arg(p)
    p.set_defaults(func=cmd_hold_list)
