"""``vms serve``: recorder, janitor and the web API in one process (the composition root).

This module is the only place in ``vms`` that imports ``api``: it builds every
part from one :class:`~vms.appliance.Appliance` and connects them:

* the recorder's disk-full callback asks the janitor for space;
* alarms (janitor tamper/space/violation, camera offline) go to the log, the
  audit trail and, when configured, MQTT (:mod:`vms.ops.alarms`);
* with ``[mail]``: the mail worker sends the outbox, a timer queues reminders,
  escalations and expired links, and problems are mailed to administrators and
  auditors once each (:mod:`vms.notify`, :mod:`vms.ops.problem_mail`);
* the HTTP server (uvicorn; HTTPS when ``api.tls_cert``/``api.tls_key`` are set)
  runs in the main thread and owns SIGTERM/SIGINT; when it stops, the recorder
  seals every open segment and the janitor finishes its sweep;
* SIGHUP re-reads the config; an invalid file keeps the running config and
  says why; cameras added, changed or disabled are recorded accordingly at once
  (``Recorder.apply``).  The administrator's camera form (vms/ops/camera_admin.py)
  rewrites the file and reloads through the same reloader (``Appliance.reload_config``).

``--no-recorder`` / ``--no-janitor`` / ``--no-api`` run a subset: several
recorder nodes can share one PostgreSQL with one or more API nodes
(docs/operations.md, "More than one machine").

Each part is imported only when it is started (``--no-api`` never loads FastAPI, ``--no-recorder``
never loads OpenCV): the function-level imports below are that, not an accident.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Services:
    """The parts of one node, started and stopped together."""

    def __init__(self, app, *, recorder: bool = True, janitor: bool = True, api: bool = True):
        from vms.ops.alarms import Alarms, audit_sink

        self.app = app
        self.alarms = Alarms.from_config(app.config, audit_sink=audit_sink(app))
        self.janitor = None
        self.recorder = None
        self.api = None
        self.camera_watch = None
        self.integrity_watch = None
        if janitor:
            from vms.retention.janitor import Janitor

            self.janitor = Janitor(app, on_alarm=lambda kind, message: self.alarms.notify(kind, message))
            from vms.retention.integrity_watch import IntegrityWatch

            self.integrity_watch = IntegrityWatch(app, self.alarms)  # violations, audit chain, disk floor
        self.doorlog_inbox = None
        if janitor and app.config.doorlog is not None:  # the door log's inbox is watched where the janitor runs
            from vms.doorlog.inbox import InboxWatch

            self.doorlog_inbox = InboxWatch(app)
        if recorder:
            from vms.recording.recorder import Recorder

            on_disk_full = self.janitor.request_space if self.janitor else None
            self.recorder = Recorder(app, on_disk_full=on_disk_full)
            from vms.ops.alarms import CameraWatch

            self.camera_watch = CameraWatch(app, self.alarms)
        self.ticket_expiry = None
        if not api:  # the API's lifespan runs this timer; a node without the API runs its own
            from vms.access.tickets import ExpiryTimer

            self.ticket_expiry = ExpiryTimer(app)
        self.mail = self._mail_parts(app, recorder=recorder) if app.config.mail is not None else ()
        from vms.ops import cluster

        cluster.install(app)  # other nodes' footage is fetched from them ([cluster]); no-op on one node
        self.archive = None
        if app.config.archive is not None:
            from vms.archive import reading

            reading.install(app)  # archived footage is read from the bucket when no disk here has it
            if recorder or janitor:  # a node with footage of its own copies it to the bucket
                from vms.archive.worker import ArchiveWorker

                self.archive = ArchiveWorker(app, on_alarm=lambda kind, message: self.alarms.raise_alarm(kind, message),
                                             on_clear=lambda kind: self.alarms.clear(kind))
        if api:
            from api.app import create_app

            self.api = create_app(app)
            self.api.state.alarms = self.alarms  # /metrics shows standing alarms
        elif app.config.cluster is not None:  # a recording node still hands its segments to its peers
            from api.routes.internal import create_internal_app

            self.api = create_internal_app(app)

    def _mail_parts(self, app, *, recorder: bool) -> tuple:
        """[mail]: the mail worker, the clock's notices (reminders, expired links) and the problems mailed to
        administrators and auditors (alarms heard, disk forecast, cameras silent too long)."""
        from vms.notify.sender import MailSender
        from vms.notify.timers import NoticeTimer
        from vms.ops.problem_mail import ProblemNotices

        problems = ProblemNotices(app, cameras=recorder)
        self.alarms.add_listener(problems.on_alarm)
        return MailSender(app), NoticeTimer(app), problems

    def start(self) -> None:
        for part in self.mail:
            part.start()
        if self.ticket_expiry:
            self.ticket_expiry.start()
        if self.janitor:
            self.janitor.start()
            self.integrity_watch.start()
        if self.doorlog_inbox:
            self.doorlog_inbox.start()
        if self.recorder:
            self.recorder.start()
            self.camera_watch.start()
        if self.archive:
            self.archive.start()

    def stop(self) -> None:
        if self.archive:
            self.archive.stop()
        if self.recorder:
            self.camera_watch.stop()
            self.recorder.stop(timeout_s=4.0)
        if self.doorlog_inbox:
            self.doorlog_inbox.stop()
        if self.janitor:
            self.integrity_watch.stop()
            self.janitor.stop()
        if self.ticket_expiry:
            self.ticket_expiry.stop()
        for part in self.mail:
            part.stop()
        self.alarms.close()


def _uvicorn_server(services: Services):
    import uvicorn

    cfg = services.app.config.api
    tls = {}
    if cfg.tls_cert and cfg.tls_key:
        tls = {"ssl_certfile": str(cfg.tls_cert), "ssl_keyfile": str(cfg.tls_key)}
    # no access log: delivery links carry their token in the path
    proxies = {"proxy_headers": True, "forwarded_allow_ips": ",".join(cfg.trusted_proxies)} \
        if cfg.trusted_proxies else {"proxy_headers": False}
    config = uvicorn.Config(services.api, host=cfg.host, port=cfg.port, log_level="info", access_log=False,
                            server_header=False, **proxies, **tls)
    return uvicorn.Server(config), ("https" if tls else "http")


def _install_reload(services: Services, config_path) -> None:
    from vms.ops.reload import ConfigReloader

    def on_change(new_config) -> None:
        services.app.config = new_config
        services.app.sync_cameras()
        if services.recorder is not None:  # cameras added, changed, disabled: recorded from now on
            services.recorder.apply(new_config.cameras)
        log.info("config reloaded from %s", config_path)

    reloader = ConfigReloader(config_path, on_change, current=services.app.config).install()
    services.app.reload_config = reloader.reload  # the web UI's camera edits take the same path as SIGHUP


def cmd_serve(args) -> int:
    from vms.appliance import Appliance
    from vms.cli.lang import say
    from vms.cli.record import install_stop_handlers
    from vms.core.i18n import N_

    # first: a SIGTERM during start-up still stops cleanly.  uvicorn handles the signals
    # while it runs and re-raises them when it has stopped; they then land here
    # instead of killing the process before the recorder has sealed its segments.
    stop = install_stop_handlers()
    app = Appliance.open(args.config)
    from vms.core.service_lock import hold_shared

    hold_shared(app.config.data_dir)  # 'vms keys rotate' waits for the services to stop
    services = Services(app, recorder=not args.no_recorder, janitor=not args.no_janitor, api=not args.no_api)
    _install_reload(services, args.config)
    services.start()
    parts = [name for name, on in (("recorder", services.recorder), ("janitor", services.janitor),
                                   ("web UI/API" if not args.no_api else "node endpoint", services.api)) if on]
    log.info("running: %s", ", ".join(parts) or "nothing")
    try:
        if services.api is not None:
            server, scheme = _uvicorn_server(services)
            cfg = app.config.api
            what = say(N_("cli.serve.node_endpoint")) if args.no_api else say(N_("cli.serve.web_ui"))
            print(say(N_("cli.serve.listening"), what=what, url=f"{scheme}://{cfg.host}:{cfg.port}/"), flush=True)
            server.run()
        else:
            while not stop.wait(1.0):
                pass
    finally:
        services.stop()
        app.close()
    log.info("stopped; every open segment sealed")
    return 0


def register(sub, add_config_arg) -> None:
    from vms.cli.lang import say
    from vms.core.i18n import N_

    p = sub.add_parser("serve", help=say(N_("cli.help.serve")))
    add_config_arg(p)
    p.add_argument("--no-recorder", action="store_true", help=say(N_("cli.help.serve_no_recorder")))
    p.add_argument("--no-janitor", action="store_true", help=say(N_("cli.help.serve_no_janitor")))
    p.add_argument("--no-api", action="store_true", help=say(N_("cli.help.serve_no_api")))
    p.set_defaults(func=cmd_serve)
