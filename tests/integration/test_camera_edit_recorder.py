"""A camera added, edited and disabled in the web UI of a running ``vms serve`` is recorded, re-recorded from its
new source and stopped by the running recorder, without a restart; the other camera records on undisturbed.
Real parts: the GStreamer RTSP test server (two mounts with clips of different sizes, so the recorder's
"connected (h264 WxH)" names the source it opened), the installed ``vms serve``, HTTP to its web UI.  The
camera's RTSP password is in the config file the recorder reads and nowhere else: not in the serve log, the
pages, the API or the audit trail."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from storage.keys.keyring import write_key_file
from storage.sql import index
from testkit.appliance import write_config
from testkit.recording import camera_state, gaps, segments, wait_for
from testkit.rtsp_server import Mount
from vms.access import audit, users
from vms.appliance import Appliance
from vms.core.clock import Clock

VMS = Path(sys.executable).with_name("vms")
SECRET = "Kamera-Hemmelighed-93"
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serving(tmp_path, rtsp_server_factory, clip_factory):
    big = clip_factory.get(seconds=4, codec="h264")
    small = clip_factory.get(seconds=4, codec="h264", width=320, height=180)
    rtsp = rtsp_server_factory({"/hall": Mount(big.path, loop=True), "/a": Mount(big.path, loop=True),
                                "/b": Mount(small.path, loop=True)})
    port = _free_port()
    data = tmp_path / "data"
    cfg = write_config(data, [{"id": "hall", "name": "Hal", "source": rtsp.url("/hall"), "retain_days": 14,
                               "segment_seconds": 2}],
                       api={"host": "127.0.0.1", "port": port}, recorder={"state_interval_s": 0.5})
    write_key_file(data / "keys" / "master.key")
    app = Appliance.open(cfg, clock=Clock())
    with Session(app.engine) as s, s.begin():
        index.add_user(s, "adam", role="admin", password_hash=users.hash_password(PASSWORD),
                       now_us=app.clock.now_us(), must_change=False)
    log_path = tmp_path / "serve.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(VMS), "serve", "--config", str(cfg)], stdout=log, stderr=log,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 60, "the web UI to answer")
        client = httpx.Client(base_url=base, timeout=30)
        r = client.post("/api/auth/signin", json={"name": "adam", "password": PASSWORD})
        assert r.status_code == 200, r.text
        client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield app, client, rtsp, log_path
        client.close()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        app.close()


def _ready(base: str) -> bool:
    try:
        return httpx.get(base + "/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _log(path: Path) -> str:
    return path.read_text(errors="replace")


def _post(client, path: str, **form):
    r = client.post(path, data=form, follow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text[-2000:])
    return r


def test_camera_edits_in_the_ui_are_picked_up_by_the_running_recorder(serving):
    app, client, rtsp, log_path = serving
    wait_for(lambda: (camera_state(app, "hall") or {}).get("online"), 30, "the hall camera to record")

    # added in the UI: the running recorder connects to it (640x360 on /a)
    _post(client, "/admin/cameras/new", id="reading", name="Læsesal", place="1. sal",
          source=rtsp.url("/a"), username="viewer", password=SECRET, retain_days="14", transport="tcp",
          enabled="on", op="save")
    wait_for(lambda: (camera_state(app, "reading") or {}).get("online"), 30, "the added camera to record")
    assert "camera reading: connected (h264 640x360)" in _log(log_path)

    # its source changed in the UI: the recorder seals what it has and records the new source (320x180 on /b)
    first = camera_state(app, "reading")["packets"]
    wait_for(lambda: camera_state(app, "reading")["packets"] > first, 10, "packets from the first source")
    _post(client, "/admin/cameras/reading", name="Læsesal", place="1. sal", source=rtsp.url("/b"),
          retain_days="14", transport="tcp", enabled="on", op="save")
    wait_for(lambda: "camera reading: connected (h264 320x180)" in _log(log_path), 30,
             "the recorder to open the new source")
    wait_for(lambda: segments(app, "reading"), 10, "the first source's footage sealed and indexed")
    assert any(reason == "camera settings changed" for _s, _e, reason in gaps(app, "reading"))
    wait_for(lambda: (camera_state(app, "reading") or {}).get("online"), 30, "the new source to record")

    # disabled in the UI: the recorder seals and stops it; nothing more is stored
    _post(client, "/admin/cameras/reading", op="disable")
    wait_for(lambda: not camera_state(app, "reading")["online"], 15, "the disabled camera to stop")
    assert camera_state(app, "reading")["last_error"] == "camera disabled"
    stored = [ref.path for ref in segments(app, "reading")]
    packets = camera_state(app, "reading")["packets"]
    time.sleep(3)
    assert [ref.path for ref in segments(app, "reading")] == stored
    assert camera_state(app, "reading")["packets"] == packets
    overview = client.get("/api/cameras").json()
    reading = next(c for c in overview if c["id"] == "reading")
    assert (reading["name"], reading["enabled"], reading["recording"]) == ("Læsesal", False, False)
    assert reading["offline_since"] is not None

    # the other camera recorded all along, never reconnecting
    hall = camera_state(app, "hall")
    assert hall["online"] and hall["reconnects"] == 0
    assert "restart" not in _log(log_path).lower().replace("restarted", "")

    # the password: in the config file the recorder reads (owner-only), nowhere a person or a log sees
    assert SECRET in app.config_path.read_text()
    rows = [r for r in audit.search(app.engine) if r.action.startswith("camera.")]
    assert [r.action for r in rows] == ["camera.add", "camera.edit", "camera.disable"]
    assert json.loads(rows[1].detail)["changed"] == {"source": rtsp.url("/b")}  # the address, not the password
    texts = [_log(log_path), json.dumps(overview), client.get("/cameras").text,
             client.get("/admin/cameras/reading").text, json.dumps([(r.outcome, r.detail) for r in rows])]
    for text in texts:
        assert SECRET not in text
