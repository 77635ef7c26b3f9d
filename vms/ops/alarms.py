"""Alarms: conditions a person must act on, sent to the log, the audit trail and MQTT.

:class:`Alarms` is the one dispatcher of a process.  ``raise_alarm(kind, message,
camera=..., severity=...)`` reports a condition; ``clear(kind, camera)`` ends it.
An alarm *stands* from the first ``raise_alarm`` until ``clear``: raising it again
while it stands sends nothing (a camera offline for an hour is one alarm, not
720), except when its severity rises, which is sent again.  Kinds in use
(docs/design/operations-internals.md): ``camera_offline``, ``camera_stream_order``, ``disk_low``,
``retention_violation``, ``audit_chain_broken``, ``tamper``, ``database_unreachable``;
any kind of 1-64 ``a-z 0-9 . - _`` is accepted.

``notify(kind, message, ...)`` is for one-off events that do not stand (the
janitor's tamper or failed-deletion reports, which it de-duplicates itself):
sent every time, ``"standing": false`` in the MQTT payload, nothing to clear.

Sinks, in order:

* the log, always (``critical`` as ERROR, ``warning`` as WARNING, ``info`` and
  clears as INFO);
* the audit sink, a ``Callable[[kind, message, camera], None]`` the composition
  root passes in (a clear arrives as kind ``<kind>.cleared``);
* MQTT when ``[mqtt]`` is configured: JSON, retained, QoS 1, on
  ``<prefix>/<node_id>/alarm/<kind>`` for node-wide alarms and
  ``<prefix>/<node_id>/alarm/<kind>/<camera>`` for a camera's, so that each
  retained topic holds the current state of exactly one alarm.  A clear
  publishes ``"active": false`` on the same topic.  ``<prefix>/<node_id>/status``
  is ``online`` while connected and ``offline`` (the broker's last will) after.

Contracts: ``raise_alarm`` and ``clear`` never block on the network and never
raise because a sink failed (the failure is logged).  MQTT messages wait in a
bounded queue (``mqtt.queue_max``; when full the oldest is dropped and counted)
for :class:`MqttPublisher`'s own thread, which alone touches the paho client,
connects, reconnects with back-off and publishes.  Messages are scrubbed of
URL credentials before any sink sees them.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import index
from vms.access import audit
from vms.core.clock import Clock
from vms.core.config import Config, MqttConfig
from vms.core.periodic import Periodic
from vms.core.times import iso

log = logging.getLogger(__name__)

AuditSink = Callable[[str, str, str | None], None]
Listener = Callable[[str, str | None, bool, str], None]
SEVERITIES = ("info", "warning", "critical")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_KIND_BAD = re.compile(r"[^a-z0-9_.-]")
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/]*@")
MAX_MESSAGE = 500


def scrub(message: str) -> str:
    """Hide URL credentials (``rtsp://user:pw@host`` -> ``rtsp://***@host``) and cap the length."""
    return _URL_USERINFO.sub(r"\1***@", message)[:MAX_MESSAGE]


def safe_kind(kind: str) -> str:
    out = _KIND_BAD.sub("_", kind.lower())[:64].strip("._-")
    return out or "alarm"


def _iso(t_us: int) -> str:
    return iso(t_us, "seconds")


@dataclass(frozen=True)
class Alarm:
    kind: str
    camera: str | None
    severity: str
    message: str
    since_us: int


class Alarms:
    """The alarm dispatcher of one process (thread-safe)."""

    def __init__(self, *, node_id: str, clock: Clock | None = None, audit_sink: AuditSink | None = None,
                 publisher: MqttPublisher | None = None):
        self.node_id = node_id
        self.clock = clock or Clock()
        self._audit_sink = audit_sink
        self.publisher = publisher
        self._standing: dict[tuple[str, str | None], Alarm] = {}
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    @classmethod
    def from_config(cls, config: Config, *, audit_sink: AuditSink | None = None, clock: Clock | None = None) -> Alarms:
        """Dispatcher for ``config``; starts the MQTT publisher when ``[mqtt]`` is present."""
        publisher = None
        if config.mqtt is not None:
            publisher = MqttPublisher(config.mqtt, node_id=config.node_id)
            publisher.start()
        return cls(node_id=config.node_id, clock=clock, audit_sink=audit_sink, publisher=publisher)

    def set_audit_sink(self, sink: AuditSink | None) -> None:
        self._audit_sink = sink

    def add_listener(self, listener: Listener) -> None:
        """``listener(kind, camera, active, message)`` hears every report: each ``raise_alarm`` (also of an alarm
        already standing) and each ``clear`` (also of one not standing), so it learns the outcome of every check;
        the mail notices (:mod:`vms.ops.problem_mail`) keep their own once-per-problem state."""
        self._listeners.append(listener)

    def _tell(self, kind: str, camera: str | None, active: bool, message: str) -> None:
        for listener in self._listeners:
            try:
                listener(kind, camera, active, message)
            except Exception as exc:  # an alarm must never take its caller down
                log.warning("alarm listener failed on %s (%s)", kind, exc.__class__.__name__)

    # -- reporting --------------------------------------------------------------------

    def raise_alarm(self, kind: str, message: str, *, camera: str | None = None, severity: str = "warning") -> bool:
        """Report a condition.  Returns True when it was sent (new, or more severe than
        the standing one), False when it was already standing."""
        kind, message = safe_kind(kind), scrub(str(message))
        if severity not in _RANK:
            severity = "warning"
        self._tell(kind, camera, True, message)
        with self._lock:
            old = self._standing.get((kind, camera))
            if old is not None and _RANK[severity] <= _RANK[old.severity]:
                return False
            alarm = Alarm(kind, camera, severity, message, old.since_us if old else self.clock.now_us())
            self._standing[(kind, camera)] = alarm
        where = f" (camera {camera})" if camera else ""
        level = {"critical": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
        log.log(level, "ALARM %s%s: %s", kind, where, message)
        self._to_audit(kind, message, camera)
        self._to_mqtt(alarm, active=True)
        return True

    def notify(self, kind: str, message: str, *, camera: str | None = None, severity: str = "warning") -> None:
        """Report a one-off event (a file that vanished, a deletion that failed): sent every
        time, never standing, nothing to clear.  For producers that de-duplicate themselves,
        like the janitor's ``on_alarm(kind, message)``."""
        kind, message = safe_kind(kind), scrub(str(message))
        if severity not in _RANK:
            severity = "warning"
        where = f" (camera {camera})" if camera else ""
        level = {"critical": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
        log.log(level, "ALARM %s%s: %s", kind, where, message)
        self._to_audit(kind, message, camera)
        self._to_mqtt(Alarm(kind, camera, severity, message, self.clock.now_us()), active=True, standing=False)

    def clear(self, kind: str, camera: str | None = None) -> bool:
        """End a standing alarm.  Returns False (and sends nothing) if none was standing."""
        kind = safe_kind(kind)
        self._tell(kind, camera, False, "")
        with self._lock:
            alarm = self._standing.pop((kind, camera), None)
        if alarm is None:
            return False
        lasted_s = max(0, self.clock.now_us() - alarm.since_us) // 1_000_000
        where = f" (camera {camera})" if camera else ""
        message = f"cleared after {lasted_s} s"
        log.info("ALARM %s%s %s", kind, where, message)
        self._to_audit(f"{kind}.cleared", message, camera)
        self._to_mqtt(alarm, active=False)
        return True

    def standing(self) -> list[Alarm]:
        with self._lock:
            return sorted(self._standing.values(), key=lambda a: (a.kind, a.camera or ""))

    def close(self, timeout_s: float = 2.0) -> None:
        if self.publisher is not None:
            self.publisher.close(timeout_s)

    # -- sinks --------------------------------------------------------------------------

    def _to_audit(self, kind: str, message: str, camera: str | None) -> None:
        sink = self._audit_sink
        if sink is None:
            return
        try:
            sink(kind, message, camera)
        except Exception as exc:  # an alarm must never take its caller down
            log.warning("alarm %s could not be written to the audit trail (%s)", kind, exc.__class__.__name__)

    def _to_mqtt(self, alarm: Alarm, *, active: bool, standing: bool = True) -> None:
        if self.publisher is None:
            return
        now_us = self.clock.now_us()
        payload = {
            "node_id": self.node_id, "kind": alarm.kind, "camera": alarm.camera, "active": active,
            "standing": standing,
            "severity": alarm.severity, "message": alarm.message if active else "cleared",
            "since_us": alarm.since_us, "time_us": now_us, "time": _iso(now_us),
        }
        self.publisher.publish(self.publisher.alarm_topic(alarm.kind, alarm.camera), payload)


class MqttPublisher:
    """Publishes JSON messages (retained, QoS 1) from a bounded queue on its own thread."""

    def __init__(self, cfg: MqttConfig, *, node_id: str, backoff_max_s: float = 30.0):
        self.cfg = cfg
        self.node_id = node_id
        self.backoff_max_s = backoff_max_s
        self.dropped = 0
        self.published = 0
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_reason: str | None = None
        self._refused: str | None = None
        self._unacked: set[int] = set()
        self._flush_deadline = 0.0

    @property
    def base_topic(self) -> str:
        return f"{self.cfg.topic_prefix}/{self.node_id}"

    @property
    def status_topic(self) -> str:
        return f"{self.base_topic}/status"

    def alarm_topic(self, kind: str, camera: str | None = None) -> str:
        return f"{self.base_topic}/alarm/{kind}" + (f"/{camera}" if camera else "")

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def publish(self, topic: str, payload: dict) -> bool:
        """Queue a message; never blocks.  Returns False when the queue was full and the
        oldest message was dropped to make room."""
        data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        with self._lock:
            full = len(self._queue) >= self.cfg.queue_max
            if full:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((topic, data))
        if full and self.dropped % 100 == 1:  # the first drop, then every hundredth
            log.warning("MQTT queue full (%d messages): %d oldest alarm message(s) dropped so far",
                        self.cfg.queue_max, self.dropped)
        return not full

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mqtt-alarms", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 2.0) -> None:
        """Flush what can be flushed within ``timeout_s``, say ``offline``, disconnect."""
        self._flush_deadline = time.monotonic() + timeout_s
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s + 1.0)

    # -- the publisher thread (the only code that touches the paho client) -------------

    def _client(self):
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vms-{self.node_id}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.connect_timeout = 5.0
        client.max_queued_messages_set(self.cfg.queue_max)
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        if self.cfg.username is not None:
            password = None
            if self.cfg.password_file is not None:
                password = self.cfg.password_file.read_text(encoding="utf-8").strip()
            client.username_pw_set(self.cfg.username, password)
        if self.cfg.tls or self.cfg.ca_file is not None:
            context = ssl.create_default_context(cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None)
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
            return
        self._refused = None
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        self._connected.set()
        if self._down_reason is not None:
            log.info("MQTT broker %s:%d reachable again; sending queued alarms", self.cfg.host, self.cfg.port)
        self._down_reason = None

    def _on_disconnect(self, _client, _userdata, _flags, _reason_code, _properties) -> None:
        self._connected.clear()

    def _on_publish(self, _client, _userdata, mid, _reason_code, _properties) -> None:
        if mid in self._unacked:
            self._unacked.discard(mid)
            self.published += 1

    def _note_down(self, reason: str) -> None:
        self._connected.clear()
        if self._down_reason is None:
            log.warning("MQTT broker %s:%d unreachable (%s); alarms are queued (at most %d) and sent when it is back",
                        self.cfg.host, self.cfg.port, reason, self.cfg.queue_max)
        self._down_reason = reason

    def _run(self) -> None:
        try:
            client = self._client()
        except Exception as exc:
            log.error("MQTT client cannot be set up (%s: %s); alarms go to the log and audit trail only",
                      exc.__class__.__name__, exc)
            return
        delay, sock_open, opened_at = 1.0, False, 0.0
        while not self._stop.is_set():
            if not sock_open:
                try:
                    client.connect(self.cfg.host, self.cfg.port, keepalive=30)
                    sock_open, opened_at = True, time.monotonic()
                except Exception as exc:  # refused, DNS, TLS, timeout: all mean "try again later"
                    self._note_down(exc.__class__.__name__)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff_max_s)
                    continue
            rc = client.loop(timeout=0.1)
            if rc != 0 or self._refused or (not client.is_connected() and time.monotonic() - opened_at > 10):
                self._note_down(self._refused or f"connection lost, code {rc}")
                client.disconnect()
                sock_open = False
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            if client.is_connected():
                delay = 1.0
                self._drain(client)
        self._finish(client, sock_open)

    def _drain(self, client) -> None:
        from paho.mqtt.client import MQTT_ERR_QUEUE_SIZE

        while client.is_connected():
            with self._lock:
                if not self._queue:
                    return
                topic, data = self._queue.popleft()
            info = client.publish(topic, data, qos=1, retain=True)
            if info.rc == MQTT_ERR_QUEUE_SIZE:  # paho's own in-flight store is full: wait for acks
                with self._lock:
                    self._queue.appendleft((topic, data))
                return
            self._unacked.add(info.mid)

    def _finish(self, client, sock_open: bool) -> None:
        deadline = self._flush_deadline
        try:
            while sock_open and client.is_connected() and time.monotonic() < deadline:
                self._drain(client)
                if not self.queued() and not self._unacked:
                    break
                client.loop(timeout=0.05)
            if sock_open and client.is_connected():
                client.publish(self.status_topic, b"offline", qos=1, retain=True)
                client.loop(timeout=0.1)
                client.disconnect()
                client.loop(timeout=0.1)
        except Exception as exc:
            log.debug("MQTT shutdown: %s", exc.__class__.__name__)
        left = self.queued()
        if left:
            log.warning("MQTT: %d alarm message(s) not delivered before shutdown", left)


# ---------------------------------------------------------------- camera offline


def silent_for_us(last_packet_us: int | None, *, watch_started_us: int, now_us: int) -> int:
    """How long a camera has been silent, counted from its last packet but never from
    before the watch started (a restarted service gives the recorder time to connect)."""
    return max(0, now_us - max(last_packet_us or 0, watch_started_us))


def audit_sink(app) -> AuditSink:
    """Alarms become audit entries (actor ``system``); a failure to write one is logged, never raised."""

    def sink(kind: str, message: str, camera: str | None) -> None:
        try:
            audit.record_system_event(app, action=f"alarm.{kind}", obj=camera or "", outcome=message)
        except Exception as exc:  # an alarm must never take the service down
            log.warning("alarm %s could not be written to the audit trail (%s)", kind, exc.__class__.__name__)

    return sink


class CameraWatch:
    """Raises ``camera_offline`` for each of this node's enabled cameras whose last
    packet (``camera_state.last_packet_us``, written by the recorder) is older than
    ``alarms.camera_offline_after_s``, and clears it when packets flow again.  A
    database error raises ``database_unreachable`` (critical) instead.

    ``check()`` is one pass (tests call it with a fake clock); ``start()`` runs it
    every ``interval_s`` on a daemon thread until ``stop()``."""

    def __init__(self, app, alarms: Alarms, *, interval_s: float = 5.0):
        self.app, self.alarms, self.interval_s = app, alarms, interval_s
        self.started_us = app.clock.now_us()
        self._timer = Periodic("camera-watch", interval_s, self.check)

    def check(self) -> list[str]:
        """One pass; returns the ids of the cameras now offline."""
        cfg = self.app.config
        after_us = int(cfg.alarms.camera_offline_after_s * 1_000_000)
        try:
            with Session(self.app.engine) as s:
                rows = [st for st in index.camera_states(s) if st.node_id == cfg.node_id]
                states = {st.camera_id: (st.last_packet_us, st.last_error) for st in rows}
                problems = {st.camera_id: st.stream_problem for st in rows if st.stream_problem}
        except Exception as exc:
            self.alarms.raise_alarm("database_unreachable", f"the index database cannot be read ({exc.__class__.__name__})",
                                    severity="critical")
            return []
        self.alarms.clear("database_unreachable")
        now_us, offline = self.app.clock.now_us(), []
        for cam in cfg.cameras:
            last_us, last_error = states.get(cam.id, (None, None))
            silent_us = silent_for_us(last_us, watch_started_us=self.started_us, now_us=now_us)
            if cam.enabled and silent_us >= after_us:
                offline.append(cam.id)
                why = f"; last error: {last_error}" if last_error else ""
                self.alarms.raise_alarm(
                    "camera_offline",
                    f"camera {cam.id} has delivered nothing for {silent_us // 1_000_000} s "
                    f"(threshold {cfg.alarms.camera_offline_after_s:g} s){why}",
                    camera=cam.id,
                )
            else:
                self.alarms.clear("camera_offline", cam.id)
            if cam.enabled and cam.id in problems:
                self.alarms.raise_alarm("camera_stream_order", f"camera {cam.id}: {problems[cam.id]}",
                                        camera=cam.id, severity="warning")
            else:
                self.alarms.clear("camera_stream_order", cam.id)
        configured = {cam.id for cam in cfg.cameras}
        for alarm in self.alarms.standing():  # a camera removed from the config is no longer watched
            if alarm.kind in ("camera_offline", "camera_stream_order") and alarm.camera not in configured:
                self.alarms.clear(alarm.kind, alarm.camera)
        return offline

    def start(self) -> None:
        self._timer.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._timer.stop(timeout_s)
