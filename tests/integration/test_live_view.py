"""Live view with real parts: GStreamer's RTSP server plays a looping clip, the recorder records it, and
the API (under a real uvicorn) streams the recorder's own packets to a signed-in operator as fragmented MP4.

Checked: the stream starts with a keyframe, ffprobe decodes it without errors, no second RTSP connection is
made for it (the server counts one client), start and end are audited with the camera, administrators see
who is watching while it lasts, and everyone else is refused with a problem body: a camera without
``live_view`` (the default), administrators and auditors, a camera that does not exist."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from sqlalchemy.orm import Session

from api.app import create_app
from storage.sql import index
from testkit.recording import recording, wait_for
from testkit.rtsp_server import Mount
from tests.e2e.conftest import Served
from tests.support.api_env import PASSWORD, USERS, password_hash
from vms.access import audit
from vms.core.clock import Clock
from vms.recording.recorder import Recorder

pytestmark = pytest.mark.rtsp


@pytest.fixture
def live_env(database_url, appliance_factory, rtsp_server_factory, clip_factory):
    clip = clip_factory.get(seconds=8)
    server = rtsp_server_factory({"/cam": Mount(clip.path, loop=True), "/quiet": Mount(clip.path, loop=True)})
    app = appliance_factory(
        [{"id": "cam", "source": server.url("/cam"), "retain_days": 7, "live_view": True},
         {"id": "quiet", "source": server.url("/quiet"), "retain_days": 7}],
        database_url=database_url, clock=Clock())
    with Session(app.engine) as s, s.begin():
        for name, role in USERS.items():
            index.add_user(s, name, role=role, password_hash=password_hash(), now_us=app.clock.now_us(),
                           must_change=False)
    rec = Recorder(app)
    with recording(rec), Served(create_app(app, clock=app.clock)) as served:
        wait_for(lambda: app.live.last_packet_us("cam"), 30, "the recorder's first packets of camera cam")
        yield app, f"http://127.0.0.1:{served.port}", server


def _client(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=20)
    r = c.post("/api/auth/signin", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def _entries(app, action: str) -> list:
    return audit.search(app.engine, action=action)


def _connections_to(port: int) -> int:
    """Established TCP connections whose local port is ``port`` (the RTSP server's side), from /proc."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def test_an_operator_watches_the_recorder_s_packets_live(live_env, tmp_path):
    app, base, server = live_env
    olga, adam = _client(base, "olga"), _client(base, "adam")
    got = bytearray()
    with olga.stream("GET", "/api/cameras/cam/live") as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "video/mp4"
        assert r.headers["x-live-codecs"].startswith("avc1.")
        started, seen = time.monotonic(), None
        for chunk in r.iter_bytes():  # (leaving this loop closes the response: the viewer has gone)
            got += chunk
            if seen is None and time.monotonic() - started > 1:
                assert _connections_to(server.port) == 2  # while watching too
                seen = adam.get("/api/live/viewers")
            if time.monotonic() - started > 3:
                break
    assert seen.status_code == 200
    assert [(v["camera_id"], v["user"]) for v in seen.json()] == [("cam", "olga")]
    assert got[4:8] == b"ftyp"
    path = tmp_path / "live.mp4"
    path.write_bytes(bytes(got))
    probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                            "stream=codec_name,nb_read_frames", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True)
    assert probe.stderr == ""
    codec, frames = probe.stdout.strip().split(",")[:2]
    assert codec == "h264" and int(frames) >= 30  # about 3 s at 15 fps, from the cached GOP on
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True,
                            text=True)
    assert decode.returncode == 0 and decode.stderr == ""
    wait_for(lambda: _entries(app, "live.end"), 10, "the live.end audit entry")
    (start,), (end,) = _entries(app, "live.start"), _entries(app, "live.end")
    assert (start.actor, start.object, start.outcome) == ("olga", "camera:cam", "ok")
    assert (end.actor, end.object) == ("olga", "camera:cam") and end.detail.startswith("watched ")
    wait_for(lambda: adam.get("/api/live/viewers").json() == [], 10, "the viewer list to empty")
    # live view opened no connection of its own: the recorder's two (cam, quiet) are all the server has
    assert _connections_to(server.port) == 2


@pytest.mark.parametrize("who,camera,status", [
    ("olga", "quiet", 403),   # live view is off unless the site turns it on
    ("mia", "nosuch", 404),
    ("adam", "cam", 403),     # administrators and auditors never see pictures
    ("aud", "cam", 403),
])
def test_live_view_is_refused_with_a_reason(live_env, who, camera, status):
    app, base, _ = live_env
    r = _client(base, who).get(f"/api/cameras/{camera}/live")
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["detail"]
    if camera == "quiet":
        assert "live_view" in body["detail"]
        (entry,) = _entries(app, "live.start")
        assert entry.outcome.startswith("refused: live view is off")


def test_the_operator_sees_no_viewer_list(live_env):
    _, base, _ = live_env
    assert _client(base, "olga").get("/api/live/viewers").status_code == 403
