"""Alarms through a real Mosquitto broker: delivered, retained, de-duplicated, never
blocking the caller when the broker is down, delivered once it is back."""

from __future__ import annotations

import getpass
import json
import logging
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from tests.support.fixtures import missing_component
from vms.core.config import MqttConfig
from vms.ops.alarms import Alarms, CameraWatch, MqttPublisher, silent_for_us

BROKER = ("127.0.0.1", 1883)


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def broker():
    if not _listening(*BROKER):
        missing_component(f"Mosquitto is not listening on {BROKER[0]}:{BROKER[1]} (./deploy/dev.sh test starts it)")
    return BROKER


@pytest.fixture
def mosquitto_bin():
    path = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)), None)
    if path is None:
        missing_component("the mosquitto binary is not installed (Debian package mosquitto)")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Subscriber:
    """A real paho subscriber collecting (topic, payload, retain)."""

    def __init__(self, host: str, port: int, topic: str, **auth):
        self.messages: queue.Queue = queue.Queue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{uuid.uuid4().hex[:8]}")
        if auth:
            self.client.username_pw_set(auth["username"], auth["password"])
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect(host, port)
        self.client.loop_start()
        assert subscribed.wait(10), "subscriber did not get its SUBACK"

    def next(self, timeout_s: float = 10.0, *, skip_status: bool = True):
        deadline = time.monotonic() + timeout_s
        while True:
            topic, payload, retain = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if skip_status and topic.endswith("/status"):
                continue
            return topic, json.loads(payload), retain

    def nothing_more(self, wait_s: float = 0.7) -> bool:
        try:
            while True:
                topic, _payload, _retain = self.messages.get(timeout=wait_s)
                if not topic.endswith("/status"):
                    return False
        except queue.Empty:
            return True

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def prefix():
    return f"vmstest/{uuid.uuid4().hex[:10]}"


def _alarms(host: str, port: int, prefix: str, *, node: str = "node-a", audit=None, **kw):
    publisher = MqttPublisher(MqttConfig(host=host, port=port, topic_prefix=prefix, **kw), node_id=node,
                              backoff_max_s=1.0)
    publisher.start()
    return Alarms(node_id=node, publisher=publisher, audit_sink=audit)


def test_alarm_reaches_subscriber_as_retained_json(broker, prefix):
    sub = Subscriber(*broker, f"{prefix}/#")
    alarms = _alarms(*broker, prefix)
    try:
        assert alarms.raise_alarm("camera_offline", "camera entrance silent", camera="entrance") is True
        topic, body, _ = sub.next()
        assert topic == f"{prefix}/node-a/alarm/camera_offline/entrance"
        assert body["active"] is True and body["kind"] == "camera_offline" and body["camera"] == "entrance"
        assert body["severity"] == "warning" and body["node_id"] == "node-a"
        assert body["message"] == "camera entrance silent"

        alarms.raise_alarm("disk_low", "2 GiB free, floor 5 GiB", severity="critical")
        topic, body, _ = sub.next()
        assert topic == f"{prefix}/node-a/alarm/disk_low" and body["severity"] == "critical"

        # a subscriber arriving later gets the current state: the broker retained it
        late = Subscriber(*broker, f"{prefix}/node-a/alarm/camera_offline/#")
        topic, body, retain = late.next()
        assert retain is True and body["active"] is True
        late.close()

        assert alarms.clear("camera_offline", "entrance") is True
        topic, body, _ = sub.next()
        assert topic.endswith("/camera_offline/entrance") and body["active"] is False
    finally:
        alarms.close()
        sub.close()
    # the status topic says offline after a clean close, and is retained
    status = Subscriber(*broker, f"{prefix}/node-a/status")
    topic, payload, retain = status.messages.get(timeout=10)
    assert (payload, retain) == (b"offline", True)
    status.close()
    _clear_retained(broker, prefix)


def _clear_retained(broker, prefix):
    """Leave nothing behind on the shared broker (an empty retained message deletes one)."""
    sub = Subscriber(*broker, f"{prefix}/#")
    topics = set()
    try:
        while True:
            topics.add(sub.messages.get(timeout=0.5)[0])
    except queue.Empty:
        pass
    for topic in topics:
        sub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    sub.close()


def test_standing_alarm_is_sent_once_until_cleared_or_more_severe(broker, prefix):
    audit = []
    sub = Subscriber(*broker, f"{prefix}/#")
    alarms = _alarms(*broker, prefix, audit=lambda *a: audit.append(a))
    try:
        assert alarms.raise_alarm("tamper", "segment vanished", camera="hall") is True
        assert alarms.raise_alarm("tamper", "segment vanished again", camera="hall") is False
        assert alarms.raise_alarm("tamper", "another segment vanished", camera="hall", severity="info") is False
        sub.next()
        assert sub.nothing_more()
        assert alarms.raise_alarm("tamper", "many segments vanished", camera="hall", severity="critical") is True
        _topic, body, _ = sub.next()
        assert body["severity"] == "critical" and body["message"] == "many segments vanished"
        assert alarms.clear("tamper", "hall") is True
        assert alarms.clear("tamper", "hall") is False  # nothing standing: nothing sent
        assert sub.next()[1]["active"] is False
        assert sub.nothing_more()
        assert [a[0] for a in audit] == ["tamper", "tamper", "tamper.cleared"]
        assert audit[0][2] == "hall"
    finally:
        alarms.close()
        sub.close()
    _clear_retained(broker, prefix)


def test_credentials_never_reach_any_sink(broker, prefix, caplog):
    audit = []
    sub = Subscriber(*broker, f"{prefix}/#")
    alarms = _alarms(*broker, prefix, audit=lambda *a: audit.append(a))
    try:
        with caplog.at_level(logging.INFO, logger="vms.ops.alarms"):
            alarms.raise_alarm("camera_offline", "rtsp://viewer:s3cret@10.0.0.9/stream1 refused", camera="door")
        _topic, body, _ = sub.next()
    finally:
        alarms.close()
        sub.close()
    for text in (body["message"], audit[0][1], caplog.text):
        assert "s3cret" not in text and "viewer" not in text
        assert "rtsp://***@10.0.0.9/stream1" in text
    _clear_retained(broker, prefix)


def test_failing_audit_sink_does_not_reach_the_caller(caplog):
    def broken(*_):
        raise RuntimeError("database gone")

    alarms = Alarms(node_id="n", audit_sink=broken)
    with caplog.at_level(logging.WARNING, logger="vms.ops.alarms"):
        assert alarms.raise_alarm("disk_low", "low") is True
    assert "could not be written to the audit trail" in caplog.text
    assert [a.kind for a in alarms.standing()] == ["disk_low"]


def test_unreachable_broker_never_blocks_and_queue_is_bounded(caplog):
    """A port where nothing listens, and one that accepts TCP but never answers MQTT
    (the worst case: a connect that hangs).  Either way the caller returns at once."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)  # accepts into the backlog, never speaks MQTT
    for port in (_free_port(), blackhole.getsockname()[1]):
        publisher = MqttPublisher(MqttConfig(host="127.0.0.1", port=port, queue_max=50), node_id="down")
        publisher.start()
        alarms = Alarms(node_id="down", publisher=publisher)
        with caplog.at_level(logging.WARNING, logger="vms.ops.alarms"):
            started = time.monotonic()
            for i in range(80):
                alarms.raise_alarm(f"kind_{i}", "broker is down")
            elapsed = time.monotonic() - started
            # the publisher's connect timeout is 5 s; a caller that waited on the network would take that long
            assert elapsed < 2.0, f"80 alarms took {elapsed:.1f} s with the broker down"
            assert publisher.queued() == 50 and publisher.dropped == 30
            assert not publisher.connected
            started = time.monotonic()
            alarms.close(timeout_s=0.5)
            assert time.monotonic() - started < 3.0
        assert "oldest alarm message(s) dropped" in caplog.text
        caplog.clear()
    blackhole.close()


def test_queued_alarms_are_delivered_when_the_broker_comes_back(mosquitto_bin, prefix, tmp_path):
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    alarms = _alarms("127.0.0.1", port, prefix)
    broker = None
    try:
        alarms.raise_alarm("retention_violation", "3 segments of hall are older than 30 days", camera="hall")
        alarms.raise_alarm("audit_chain_broken", "entry 17 does not match its hash", severity="critical")
        time.sleep(1.5)  # the publisher has failed to connect at least once
        assert not alarms.publisher.connected and alarms.publisher.queued() == 2
        broker = subprocess.Popen([mosquitto_bin, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _listening("127.0.0.1", port):
            assert time.monotonic() < deadline and broker.poll() is None, "mosquitto did not start"
            time.sleep(0.05)
        # retained: a subscriber connecting after delivery still sees both
        deadline = time.monotonic() + 15
        while alarms.publisher.published < 2:
            assert time.monotonic() < deadline, "queued alarms were not delivered after the broker came back"
            time.sleep(0.05)
        sub = Subscriber("127.0.0.1", port, f"{prefix}/#")
        got = {sub.next()[0]: None, sub.next()[0]: None}
        sub.close()
        assert set(got) == {f"{prefix}/node-a/alarm/retention_violation/hall",
                            f"{prefix}/node-a/alarm/audit_chain_broken"}
    finally:
        alarms.close()
        if broker is not None:
            broker.terminate()
            broker.wait(10)


def test_password_file_authenticates_and_bad_password_is_survived(mosquitto_bin, prefix, tmp_path, caplog):
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        missing_component("mosquitto_passwd is not installed (Debian package mosquitto)")
    port = _free_port()
    users = tmp_path / "users"
    subprocess.run([passwd, "-c", "-b", str(users), "vms", "right-pass"], check=True, capture_output=True)
    conf = tmp_path / "mosquitto.conf"
    # run as ourselves: as root, mosquitto would switch to its own user, which cannot read tmp_path
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {users}\n"
                    f"persistence false\nuser {getpass.getuser()}\n")
    secret = tmp_path / "mqtt.pass"
    secret.write_text("right-pass\n")
    secret.chmod(0o600)
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("wrong-pass\n")
    wrong.chmod(0o600)
    broker = subprocess.Popen([mosquitto_bin, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _listening("127.0.0.1", port):
            assert time.monotonic() < deadline and broker.poll() is None, "mosquitto did not start"
            time.sleep(0.05)
        sub = Subscriber("127.0.0.1", port, f"{prefix}/#", username="vms", password="right-pass")
        bad = _alarms("127.0.0.1", port, prefix, node="bad", username="vms", password_file=wrong)
        with caplog.at_level(logging.WARNING, logger="vms.ops.alarms"):
            assert bad.raise_alarm("tamper", "x") is True  # returns; the broker refuses the publisher
            deadline = time.monotonic() + 15
            while "unreachable" not in caplog.text:  # the publisher tried and was refused
                assert time.monotonic() < deadline, "the refused connection was never logged"
                time.sleep(0.05)
        assert not bad.publisher.connected and bad.publisher.queued() == 1
        assert "unreachable" in caplog.text and "right-pass" not in caplog.text and "wrong-pass" not in caplog.text
        bad.close(timeout_s=0.2)

        good = _alarms("127.0.0.1", port, prefix, node="good", username="vms", password_file=secret)
        good.raise_alarm("tamper", "segment changed", camera="hall")
        topic, body, _ = sub.next()
        assert topic == f"{prefix}/good/alarm/tamper/hall" and body["message"] == "segment changed"
        good.close()
        sub.close()
    finally:
        broker.terminate()
        broker.wait(10)


# ---------------------------------------------------------------- camera offline


def test_silent_for_counts_from_the_later_of_last_packet_and_watch_start():
    assert silent_for_us(None, watch_started_us=100, now_us=600) == 500
    assert silent_for_us(50, watch_started_us=100, now_us=600) == 500
    assert silent_for_us(400, watch_started_us=100, now_us=600) == 200
    assert silent_for_us(700, watch_started_us=100, now_us=600) == 0  # clock stepped back


def test_camera_watch_raises_and_clears_camera_offline(appliance_factory, database_url, fake_clock):
    from sqlalchemy.orm import Session

    from storage.sql import index

    app = appliance_factory(
        [{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14},
         {"id": "hall", "source": "rtsp://127.0.0.1:1/h", "retain_days": 30},
         {"id": "spare", "source": "rtsp://127.0.0.1:1/s", "retain_days": 30, "enabled": False}],
        database_url=database_url, alarms={"camera_offline_after_s": 60},
    )
    audit = []
    alarms = Alarms(node_id="test-node", clock=fake_clock, audit_sink=lambda *a: audit.append(a))
    watch = CameraWatch(app, alarms)

    def packet(camera_id):
        with Session(app.engine) as s, s.begin():
            index.save_camera_state(s, camera_id, node_id="test-node", now_us=fake_clock.now_us(), online=True,
                                    last_packet_us=fake_clock.now_us())

    packet("entrance")
    assert watch.check() == []
    fake_clock.advance(59)
    packet("hall")
    assert watch.check() == []
    fake_clock.advance(2)  # entrance silent 61 s, hall 2 s; spare is disabled
    assert watch.check() == ["entrance"]
    assert [(a.kind, a.camera) for a in alarms.standing()] == [("camera_offline", "entrance")]
    fake_clock.advance(60)
    assert watch.check() == ["entrance", "hall"]
    assert len(audit) == 2  # entrance not repeated
    packet("entrance")
    assert watch.check() == ["hall"]
    assert ("camera_offline.cleared", "entrance") in [(a[0], a[2]) for a in audit]
    assert "has delivered nothing for 61 s" in audit[0][1]


def test_camera_watch_reports_an_unreachable_database(appliance_factory, fake_clock):
    from storage.sql.db import make_engine

    app = appliance_factory([{"id": "entrance", "source": "rtsp://127.0.0.1:1/e", "retain_days": 14}])
    alarms = Alarms(node_id="test-node", clock=fake_clock)
    watch = CameraWatch(app, alarms)
    good = app.engine
    app.engine = make_engine(f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing")  # nobody listens
    try:
        assert watch.check() == []
        assert [(a.kind, a.severity) for a in alarms.standing()] == [("database_unreachable", "critical")]
    finally:
        app.engine.dispose()
        app.engine = good
    assert watch.check() == []
    assert alarms.standing() == []


def test_notify_sends_every_event_and_leaves_nothing_standing(broker, prefix):
    audit = []
    sub = Subscriber(*broker, f"{prefix}/#")
    alarms = _alarms(*broker, prefix, audit=lambda *a: audit.append(a))
    try:
        alarms.notify("tamper", "segments/hall/a.vseg vanished")
        alarms.notify("tamper", "segments/hall/b.vseg vanished")
        bodies = [sub.next()[1], sub.next()[1]]
    finally:
        alarms.close()
        sub.close()
    assert [b["message"] for b in bodies] == ["segments/hall/a.vseg vanished", "segments/hall/b.vseg vanished"]
    assert all(b["standing"] is False and b["active"] is True for b in bodies)
    assert [a[0] for a in audit] == ["tamper", "tamper"]
    assert alarms.standing() == []
    _clear_retained(broker, prefix)
