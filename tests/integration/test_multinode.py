"""Two recorder nodes and one API node on one PostgreSQL (issue: operations, "More than one machine").

node-a and node-b each record one camera from the real RTSP server onto their
own disk (``vms serve --no-api``: recorder, janitor and the node endpoint);
api-1 records nothing and serves people (``vms serve --no-recorder --no-janitor``).
A ticket spanning both cameras is approved and played through api-1, which
fetches each segment, still encrypted, from the node that recorded it.  Killing
node-b leaves node-a recording and its footage playable.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import av
import httpx
import pytest
from sqlalchemy.orm import Session

from storage.keys.keyring import write_key_file
from storage.sql import index
from testkit.appliance import write_config
from testkit.recording import camera_state, segments, wait_for
from testkit.rtsp_server import Mount
from vms.access import users
from vms.appliance import Appliance
from vms.cli.setup import write_signing_key
from vms.core.clock import Clock
from vms.ops.cluster import sign, write_new_secret

VMS = Path(sys.executable).with_name("vms")
PASSWORD = "correct horse battery staple"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, UTC).isoformat().replace("+00:00", "Z")


class Node:
    def __init__(self, name: str, cfg: Path, port: int, log: Path, args: list[str]):
        self.name, self.cfg, self.port, self.log_path, self.args = name, cfg, port, log, args
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Node:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(VMS), "serve", "--config", str(self.cfg), *self.args], stdout=log,
                                         stderr=log, start_new_session=True)
        return self

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig=signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(10)


@pytest.fixture
def cluster(tmp_path, postgres_url, rtsp_server_factory, h264_clip):
    server = rtsp_server_factory({"/a": Mount(h264_clip.path, loop=True, shared=True),
                                  "/b": Mount(h264_clip.path, loop=True, shared=True)})
    master = tmp_path / "master.key"
    write_key_file(master)
    secret = tmp_path / "cluster.secret"
    write_new_secret(secret)
    ports = {n: _free_port() for n in ("node-a", "node-b", "api-1")}
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    cams = {"node-a": [{"id": "cam-a", "source": server.url("/a"), "retain_days": 7, "segment_seconds": 2}],
            "node-b": [{"id": "cam-b", "source": server.url("/b"), "retain_days": 7, "segment_seconds": 2}],
            "api-1": []}
    nodes = {}
    for name, port in ports.items():
        data = tmp_path / name
        cfg = write_config(data, cams[name], node_id=name, database_url=postgres_url,
                           api={"host": "127.0.0.1", "port": port}, recorder={"state_interval_s": 0.5},
                           cluster={"secret_file": "keys/cluster.secret",
                                    "peers": {n: u for n, u in urls.items() if n != name}})
        (data / "keys").mkdir(mode=0o700, exist_ok=True)
        for src, dst in ((master, "master.key"), (secret, "cluster.secret")):
            shutil.copy(src, data / "keys" / dst)
            os.chmod(data / "keys" / dst, 0o600)
        args = ["--no-recorder", "--no-janitor"] if name == "api-1" else ["--no-api"]
        nodes[name] = Node(name, cfg, port, tmp_path / f"{name}.log", args)
    # the API node's appliance (its config has no cameras) is how the test reads the shared index
    write_signing_key(tmp_path / "api-1" / "keys" / "signing.key")  # the API node makes the packages
    viewer = Appliance.open(nodes["api-1"].cfg, clock=Clock())
    with Session(viewer.engine) as s, s.begin():
        for name, role in (("olga", "operator"), ("mia", "manager")):
            index.add_user(s, name, role=role, password_hash=users.hash_password(PASSWORD),
                           now_us=viewer.clock.now_us(), must_change=False)
    for node in (nodes["node-a"], nodes["node-b"]):  # the recorders first: they register their cameras
        node.start()
    wait_for(lambda: all(camera_state(viewer, c) for c in ("cam-a", "cam-b")), 60, "both recorders running")
    nodes["api-1"].start()
    try:
        yield nodes, viewer
    finally:
        for node in nodes.values():
            node.stop()
        viewer.close()


def _client(base: str, name: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=60)
    r = c.post("/api/auth/signin", json={"name": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def _frames(mp4: bytes) -> int:
    with av.open(io.BytesIO(mp4)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_one_api_node_plays_footage_of_both_recorder_nodes(cluster):
    nodes, viewer = cluster
    wait_for(lambda: len(segments(viewer, "cam-a")) >= 2 and len(segments(viewer, "cam-b")) >= 2, 60,
             "sealed segments from both nodes")
    wait_for(nodes["api-1"].healthy, 60, "the API node")
    assert {r.node_id for r in segments(viewer, "cam-a")} == {"node-a"}
    assert {r.node_id for r in segments(viewer, "cam-b")} == {"node-b"}
    start = min(segments(viewer, c)[0].start_us for c in ("cam-a", "cam-b"))
    end = max(segments(viewer, c)[1].end_us for c in ("cam-a", "cam-b"))

    olga, mia = _client(nodes["api-1"].url, "olga"), _client(nodes["api-1"].url, "mia")
    # a ticket's window ends no later than its filing: wait until the padded end has passed
    wait_for(lambda: Clock().now_us() > end + 1_000_000, 10, "the end of the window to pass")
    r = olga.post("/api/tickets", json={
        "cameras": ["cam-a", "cam-b"], "start": _iso(start - 1_000_000), "end": _iso(end + 1_000_000),
        "description": "bicycle theft at the entrance", "purpose": "hand over to police",
        "legal_basis": "data protection act s. 8", "action": "view", "recipient": "internal"})
    assert r.status_code in (200, 201), r.text
    ticket = r.json()["id"]
    assert mia.post(f"/api/tickets/{ticket}/approve", json={"reason": "incident confirmed"}).status_code == 200

    for cam in ("cam-a", "cam-b"):
        seg = segments(viewer, cam)[0]
        r = olga.get(f"/api/tickets/{ticket}/cameras/{cam}/play",
                     params={"start": _iso(seg.start_us), "end": _iso(seg.end_us)})
        assert r.status_code == 200, (cam, r.status_code, r.text[:300])
        assert _frames(r.content) >= seg.packets - 1, cam

    # an export of both cameras through the API node holds both nodes' footage and verifies
    r = olga.post("/api/tickets", json={
        "cameras": ["cam-a", "cam-b"], "start": _iso(start), "end": _iso(end),
        "description": "bicycle theft at the entrance", "purpose": "hand over to police",
        "legal_basis": "data protection act s. 8", "action": "export", "recipient": "police"})
    assert r.status_code in (200, 201), r.text
    export_ticket = r.json()["id"]
    assert mia.post(f"/api/tickets/{export_ticket}/approve", json={"reason": "police asked"}).status_code == 200
    r = olga.post(f"/api/tickets/{export_ticket}/exports", json={})
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    status = wait_for(lambda: (j := olga.get(f"/api/exports/{job}").json())["state"] in ("succeeded", "failed")
                      and j, 60, "the export job")
    assert status["state"] == "succeeded", status
    r = mia.post(f"/api/packages/{status['package_id']}/deliveries", json={"recipient": "Politi", "max_downloads": 1})
    assert r.status_code == 201, r.text
    zip_bytes = httpx.post(nodes["api-1"].url + "/d/" + r.json()["token"], json={}, timeout=60).content
    package = nodes["api-1"].log_path.with_name("package.zip")
    package.write_bytes(zip_bytes)
    with zipfile.ZipFile(package) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert "cam-a" in json.dumps(manifest) and "cam-b" in json.dumps(manifest)
    clips = [n for n in zipfile.ZipFile(package).namelist() if n.startswith("clips/")]
    assert any("cam-a" in n for n in clips) and any("cam-b" in n for n in clips), clips
    verified = subprocess.run([str(VMS), "export", "verify", str(package)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # the node endpoint refuses unsigned and wrongly signed requests
    seg_b = segments(viewer, "cam-b")[0]
    path = f"/internal/segments/{seg_b.id}"
    assert httpx.get(nodes["node-b"].url + path).status_code == 401
    forged = sign(b"x" * 40, "GET", path, "api-1")
    assert httpx.get(nodes["node-b"].url + path, headers=forged).status_code == 401

    # node-b dies: node-a keeps recording, and its footage stays playable
    nodes["node-b"].stop(signal.SIGKILL)
    before = camera_state(viewer, "cam-a")["packets"]
    wait_for(lambda: camera_state(viewer, "cam-a")["packets"] > before + 15, 20, "node-a to go on recording")
    seg_a = segments(viewer, "cam-a")[-1]
    if seg_a.end_us > end + 1_000_000:
        seg_a = segments(viewer, "cam-a")[1]
    r = olga.get(f"/api/tickets/{ticket}/cameras/cam-a/play", params={"start": _iso(seg_a.start_us),
                                                                      "end": _iso(seg_a.end_us)})
    assert r.status_code == 200 and _frames(r.content) > 0
    # node-b's footage is unavailable, said in words (never a 500)
    r = olga.get(f"/api/tickets/{ticket}/cameras/cam-b/play", params={"start": _iso(seg_b.start_us),
                                                                      "end": _iso(seg_b.end_us)})
    assert r.status_code < 500, r.text
    for node in ("node-a", "api-1"):
        assert "Traceback" not in nodes[node].log_path.read_text(), node
