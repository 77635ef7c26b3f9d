"""Footage that outlives its recording node: record on node A, archive to S3, lose node A, play and export on B.

node-a records one camera from the real RTSP server (``vms serve --no-api``) on PostgreSQL with
``[archive]`` pointing at a real S3 server (SeaweedFS); api-1 serves people (``vms serve --no-recorder
--no-janitor``) with the same ``[archive]`` and no ``[cluster]``: it has no way to reach node-a but the
bucket.  Once node-a's segments are archived, node-a is killed and its storage root deleted; api-1 then
plays the footage (decoded frame by frame) and exports it (the package verifies; ffprobe reads the clip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile

import httpx
from sqlalchemy.orm import Session

from storage.keys.keyring import write_key_file
from storage.sql import archive_queries as aq
from storage.sql import index
from testkit.appliance import write_config
from testkit.recording import camera_state, segments, wait_for
from testkit.rtsp_server import Mount
from tests.integration.test_multinode import PASSWORD, VMS, Node, _client, _frames, _free_port, _iso
from vms.access import users
from vms.appliance import Appliance
from vms.cli.setup import write_signing_key
from vms.core.clock import Clock


def _archived(viewer, ids) -> bool:
    with Session(viewer.engine) as s:
        return all((loc := aq.location(s, i)) is not None and loc.state == "archived" for i in ids)


def test_footage_of_a_lost_node_plays_and_exports_from_the_archive(tmp_path, postgres_url, rtsp_server_factory,
                                                                   h264_clip, s3_server):
    server = rtsp_server_factory({"/a": Mount(h264_clip.path, loop=True, shared=True)})
    bucket = s3_server.make_bucket("vms-site", object_lock=True)
    master = tmp_path / "master.key"
    write_key_file(master)
    nodes = {}
    for name, cams, args in (
            ("node-a", [{"id": "cam-a", "source": server.url("/a"), "retain_days": 7, "segment_seconds": 2}],
             ["--no-api"]),
            ("api-1", [], ["--no-recorder", "--no-janitor"])):
        data = tmp_path / name
        port = _free_port()
        cfg = write_config(data, cams, node_id=name, database_url=postgres_url, api={"host": "127.0.0.1", "port": port},
                           recorder={"state_interval_s": 0.5}, archive=s3_server.archive_config(bucket))
        (data / "keys").mkdir(mode=0o700, exist_ok=True)
        shutil.copy(master, data / "keys" / "master.key")
        os.chmod(data / "keys" / "master.key", 0o600)
        s3_server.write_credentials(data / "keys" / "archive.toml")
        nodes[name] = Node(name, cfg, port, tmp_path / f"{name}.log", args)
    write_signing_key(tmp_path / "api-1" / "keys" / "signing.key")
    viewer = Appliance.open(nodes["api-1"].cfg, clock=Clock())
    with Session(viewer.engine) as s, s.begin():
        for name, role in (("olga", "operator"), ("mia", "manager")):
            index.add_user(s, name, role=role, password_hash=users.hash_password(PASSWORD),
                           now_us=viewer.clock.now_us(), must_change=False)
    try:
        nodes["node-a"].start()
        wait_for(lambda: camera_state(viewer, "cam-a"), 60, "node-a recording")
        wait_for(lambda: len(segments(viewer, "cam-a")) >= 2, 60, "two sealed segments on node-a")
        refs = segments(viewer, "cam-a")[:2]
        wait_for(lambda: _archived(viewer, [r.id for r in refs]), 60, "node-a's segments in the bucket")

        nodes["node-a"].stop()  # kill -9: node-a is gone, and so is its disk
        shutil.rmtree(tmp_path / "node-a" / "segments")
        nodes["api-1"].start()
        wait_for(nodes["api-1"].healthy, 60, "the API node")

        olga, mia = _client(nodes["api-1"].url, "olga"), _client(nodes["api-1"].url, "mia")
        start, end = refs[0].start_us, refs[1].end_us
        tickets = {}
        for action, recipient in (("view", "internal"), ("export", "police")):
            r = olga.post("/api/tickets", json={
                "cameras": ["cam-a"], "start": _iso(start), "end": _iso(end),
                "description": "bicycle theft at the entrance", "purpose": "hand over to police",
                "legal_basis": "data protection act s. 8", "action": action, "recipient": recipient})
            assert r.status_code in (200, 201), r.text
            tickets[action] = r.json()["id"]
            assert mia.post(f"/api/tickets/{tickets[action]}/approve", json={"reason": "incident confirmed"}
                            ).status_code == 200

        for ref in refs:
            r = olga.get(f"/api/tickets/{tickets['view']}/cameras/cam-a/play",
                         params={"start": _iso(ref.start_us), "end": _iso(ref.end_us)})
            assert r.status_code == 200, (r.status_code, r.text[:300])
            assert _frames(r.content) >= ref.packets - 1

        r = olga.post(f"/api/tickets/{tickets['export']}/exports", json={})
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]
        status = wait_for(lambda: (j := olga.get(f"/api/exports/{job}").json())["state"] in ("succeeded", "failed")
                          and j, 90, "the export job")
        assert status["state"] == "succeeded", status
        r = mia.post(f"/api/packages/{status['package_id']}/deliveries", json={"recipient": "Politi",
                                                                              "max_downloads": 1})
        assert r.status_code == 201, r.text
        package = tmp_path / "package.zip"
        package.write_bytes(httpx.post(nodes["api-1"].url + "/d/" + r.json()["token"], json={}, timeout=60).content)
        verified = subprocess.run([str(VMS), "export", "verify", str(package)], capture_output=True, text=True)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        with zipfile.ZipFile(package) as z:
            clips = [n for n in z.namelist() if n.startswith("clips/") and n.endswith(".mp4")]
            assert clips, z.namelist()
            clip = tmp_path / "clip.mp4"
            clip.write_bytes(z.read(clips[0]))
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                "stream=codec_name,nb_read_frames", "-of", "json", str(clip)],
                               capture_output=True, text=True, check=True)
        stream = json.loads(probe.stdout)["streams"][0]
        assert stream["codec_name"] == "h264"
        assert int(stream["nb_read_frames"]) >= sum(r.packets for r in refs) - 2
    finally:
        for node in nodes.values():
            node.stop()
        viewer.close()
