"""``vms doctor``: operations commands (see :mod:`vms.ops.doctor`).

Exit status: 0 when no check failed (warnings and "unknown" are printed but do not
fail), 1 when at least one did; 2 when the arguments are wrong.

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json

from vms.cli.lang import out, say, t
from vms.core.i18n import N_
from vms.ops.doctor import CHECKS, problems, run

_LABEL = {"ok": N_("cli.doctor.ok"), "warn": N_("cli.doctor.warn"), "fail": N_("cli.doctor.fail"),
          "unknown": N_("cli.doctor.unknown")}


def _skip_list(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(CHECKS))
    if unknown:
        raise argparse.ArgumentTypeError(say(N_("cli.doctor.unknown_checks"), names=", ".join(unknown),
                                             checks=", ".join(CHECKS)))
    return names


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = run(args.config, camera_timeout_s=args.camera_timeout, skip=args.skip)
    bad = problems(findings)
    if args.json:
        print(json.dumps({"config": str(args.config), "ok": not bad,
                          "checks": [f.as_dict() for f in findings]}, indent=2))
        return 1 if bad else 0
    print(f"vms doctor: {args.config}")
    labels = {status: t()(key) for status, key in _LABEL.items()}
    width = max(5, *map(len, labels.values()))
    for f in findings:
        print(f"  {labels[f.status]:{width}} {f.check:13} {f.text(t().lang)}")
    if bad:
        out(N_("cli.doctor.problems"), problems=len(bad))
        return 1
    out(N_("cli.doctor.no_problems"))
    return 0


def register(sub, add_config_arg) -> None:
    p = sub.add_parser("doctor", help=say(N_("cli.help.doctor")))
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help=say(N_("cli.help.doctor_json")))
    p.add_argument("--camera-timeout", type=float, default=5.0, metavar="S",
                   help=say(N_("cli.help.doctor_camera_timeout")))
    p.add_argument("--skip", type=_skip_list, default=frozenset(), metavar="CHECK[,CHECK]",
                   help=say(N_("cli.help.doctor_skip"), checks=", ".join(CHECKS)))
    p.set_defaults(func=cmd_doctor)
