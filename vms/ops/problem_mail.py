"""Problems mailed to administrators and auditors, once per problem until it clears.

A *problem* has a key (``disk_forecast``, ``camera_offline:<camera>``, ``retention_violation``,
``audit_chain_broken``, ``disk_low``).  :meth:`ProblemNotices.bad` opens it: the first time (or the first time
after it cleared) a row in ``notice_problems`` is opened and every administrator and auditor with an address
gets one mail, in one transaction; while it stays open nothing more is sent, however often a check finds it
again, on this node or another, before or after a restart.  :meth:`ProblemNotices.ok` clears it, so that it is
mailed again if it comes back.

Where problems come from:

* the integrity watch's alarms (``retention_violation`` from the retention report, ``audit_chain_broken`` from
  the chain's verification, ``disk_low``), heard through :meth:`vms.ops.alarms.Alarms.add_listener`: every check's
  outcome, raised or cleared;
* :meth:`ProblemNotices.check`, one round of its own (every minute under ``vms serve``): the disk forecast
  (:mod:`vms.ops.forecast`, the doctor's question "will the disk hold the retention?") and cameras silent longer
  than ``mail.offline_minutes`` (``camera_state``, written by the recorder).

The open keys are kept in memory too (reloaded every round), so a check that finds all well costs no query.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.sql import index
from storage.sql import outbox as store
from vms.core.i18n import N_
from vms.core.periodic import Periodic
from vms.notify import outbox, texts
from vms.ops import forecast

log = logging.getLogger(__name__)

#: alarm kinds that are mailed, with the key of what they mean in words (the ``vms`` catalog)
ALARM_WORDS = {
    "retention_violation": N_("mail.problem_text.retention_violation"),
    "audit_chain_broken": N_("mail.problem_text.audit_chain_broken"),
    "disk_low": N_("mail.problem_text.disk_low"),
}


def _technical(message: str) -> str:
    return f"\n\n({message})" if message else ""


class ProblemNotices:
    def __init__(self, app, *, cameras: bool = True, interval_s: float = 60.0):
        self.app, self.cameras = app, cameras
        self.started_us = app.clock.now_us()
        self._lock = threading.Lock()
        self._open: set[str] | None = None
        self._timer = Periodic("problem-mail", interval_s, self.check, run_first=True)

    # -- open and clear ----------------------------------------------------------------

    def _open_keys(self) -> set[str]:
        with self._lock:
            if self._open is None:
                with Session(self.app.engine) as s:
                    self._open = store.open_keys(s)
            return self._open

    def bad(self, key: str, kind: str, messages: dict[str, str]) -> bool:
        """Report a problem; True when this report opened it (and mailed)."""
        if not outbox.enabled(self.app.config) or key in self._open_keys():
            return False
        now = self.app.clock.now_us()
        try:
            with Session(self.app.engine) as s, s.begin():
                opened = store.open_problem(s, key, messages["en"][:500], now_us=now)
                mailed = outbox.problem(s, self.app.config, key=key, kind=kind, messages=messages,
                                        now_us=now) if opened else 0
        except IntegrityError:  # another node opened it at the same moment
            opened, mailed = False, 0
        with self._lock:
            self._open.add(key)
        if opened:
            log.warning("problem %s: %d mail(s) queued to administrators and auditors", key, mailed)
        return opened

    def ok(self, key: str) -> bool:
        """Report that a check found no problem; True when this cleared an open one."""
        if key not in self._open_keys():
            return False
        with Session(self.app.engine) as s, s.begin():
            cleared = store.clear_problem(s, key, now_us=self.app.clock.now_us())
        with self._lock:
            self._open.discard(key)
        if cleared:
            log.info("problem %s cleared", key)
        return cleared

    def on_alarm(self, kind: str, camera: str | None, active: bool, message: str) -> None:
        """The :class:`vms.ops.alarms.Alarms` listener."""
        if kind not in ALARM_WORDS or camera is not None:
            return
        if active:
            self.bad(kind, kind, {lang: texts.words(ALARM_WORDS[kind], lang) + _technical(message)
                                  for lang in texts.LANGUAGES})
        else:
            self.ok(kind)

    # -- the round ------------------------------------------------------------------------

    def check(self) -> None:
        """One round: the disk forecast and silent cameras (tests call it with a moved clock)."""
        if not outbox.enabled(self.app.config):
            return
        with self._lock:
            self._open = None  # another node may have opened or cleared problems: read them again
        f = forecast.measure(self.app)
        if f is not None and f.days_held is not None:
            if f.short:
                self.bad("disk_forecast", "disk_forecast", {lang: forecast.words(f, lang) for lang in texts.LANGUAGES})
            else:
                self.ok("disk_forecast")
        if self.cameras:
            self._check_cameras()

    def _check_cameras(self) -> None:
        cfg, now = self.app.config, self.app.clock.now_us()
        after_us = int(cfg.mail.offline_minutes * 60 * 1_000_000)
        with Session(self.app.engine) as s:
            last = {st.camera_id: st.last_packet_us for st in index.camera_states(s) if st.node_id == cfg.node_id}
        for cam in cfg.cameras:
            key = f"camera_offline:{cam.id}"
            silent_us = now - max(last.get(cam.id) or 0, self.started_us)
            if cam.enabled and silent_us >= after_us:
                minutes = silent_us // 60_000_000
                self.bad(key, "camera_offline", {
                    lang: texts.words(N_("mail.problem_text.camera_offline"), lang, camera=cam.id, minutes=minutes,
                                      threshold=cfg.mail.offline_minutes) for lang in texts.LANGUAGES})
            else:
                self.ok(key)

    def start(self) -> None:
        self._timer.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._timer.stop(timeout_s)
