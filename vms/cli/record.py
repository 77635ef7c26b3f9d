"""``vms record``: run the recorder for every configured camera until SIGTERM/SIGINT.

The signal handlers are installed before the first camera starts, so a SIGTERM
that arrives while the recorder is still starting also seals and exits cleanly.
:meth:`Recorder.stop` seals every open segment within about 4 s; capture threads
still blocked in the network (a camera that never answers) are daemons and do
not hold up the exit, so the process ends within 5 s of the signal.

Imports of the appliance's parts happen inside each command, on purpose: ``vms --help`` and
``vms export verify`` (which recipients run) then start without loading SQLAlchemy, OpenCV and
PyAV (about 0.5 s instead of 1.5 s, ``python -X importtime``).
"""

from __future__ import annotations

import logging
import signal
import threading

from vms.cli.lang import say
from vms.core.i18n import N_

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 4.0


def install_stop_handlers() -> threading.Event:
    """SIGTERM and SIGINT set the returned event."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def cmd_record(args) -> int:
    from vms.appliance import Appliance
    from vms.recording.recorder import Recorder

    stop = install_stop_handlers()
    app = Appliance.open(args.config)
    from vms.core.service_lock import hold_shared

    hold_shared(app.config.data_dir)  # 'vms keys rotate' waits for the services to stop
    from vms.ops.alarms import Alarms, CameraWatch, audit_sink

    alarms = Alarms.from_config(app.config, audit_sink=audit_sink(app))  # log, audit trail, MQTT: as in 'vms serve'
    try:
        # Alone, the recorder cannot ask a janitor in another process for space on a full disk: it retries with
        # back-off and resumes once that janitor's watermark sweep has freed space ('vms serve' asks at once).
        recorder = Recorder(app)
        recorder.start()
        watch = CameraWatch(app, alarms)
        watch.start()
        log.info("recording %d camera(s); SIGTERM seals open segments and stops", len(recorder.cameras))
        try:
            while not stop.wait(1.0):
                pass
        finally:
            watch.stop()
            recorder.stop(timeout_s=STOP_TIMEOUT_S)
    finally:
        alarms.close()
        app.close()
    log.info("recorder stopped; every open segment sealed")
    return 0


def register(sub, add_config_arg) -> None:
    p = sub.add_parser("record", help=say(N_("cli.help.record")))
    add_config_arg(p)
    p.set_defaults(func=cmd_record)
