"""``vms record``: run the recorder for every configured camera until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


def wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


def cmd_record(args) -> int:
    from vms.appliance import Appliance
    from vms.recorder import Recorder

    app = Appliance.open(args.config)
    recorder = Recorder(app)
    recorder.start()
    log.info("recording %d camera(s); SIGTERM seals open segments and stops", len(recorder.cameras))
    try:
        wait_for_signal()
    finally:
        recorder.stop(timeout_s=4.0)
        app.close()
    log.info("recorder stopped; every open segment sealed")
    return 0


def register(sub, add_config_arg) -> None:
    p = sub.add_parser("record", help="record every configured camera (stream copy into encrypted segments)")
    add_config_arg(p)
    p.set_defaults(func=cmd_record)
